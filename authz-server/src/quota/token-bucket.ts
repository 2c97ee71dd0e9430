// Token-bucket arithmetic (continuous refill) as pure functions of (state, limits, now in ms); the
// in-memory store runs it directly and the Redis Lua script mirrors it line for line.

/** A bucket as stored: fractional tokens and the time they were counted. */
export interface BucketState {
  readonly tokens: number;
  readonly updatedAt: number;
}

export interface BucketLimits {
  readonly capacity: number;
  readonly refillPerSecond: number;
}

/** `partial` grants min(want, available) (leases); `all` grants want or nothing (Envoy RLS hits). */
export type TakeMode = "partial" | "all";

export interface TakeOutcome {
  readonly granted: number;
  /** Tokens left after the grant (fractional). */
  readonly tokens: number;
  readonly state: BucketState;
  /** Milliseconds until the bucket is full again; 0 when full, -1 when it never refills. */
  readonly resetInMs: number;
}

/** Absorbs binary rounding in tokens + elapsed × rate so that exact refills yield whole tokens. */
const EPSILON = 1e-9;

/** A missing bucket is a full one; time running backwards (another replica's clock) refills nothing. */
export function refillBucket(state: BucketState | undefined, limits: BucketLimits, now: number): BucketState {
  if (!state) return { tokens: limits.capacity, updatedAt: now };
  let tokens = Math.min(state.tokens, limits.capacity);
  if (now > state.updatedAt) tokens = Math.min(limits.capacity, tokens + ((now - state.updatedAt) * limits.refillPerSecond) / 1000);
  return { tokens, updatedAt: Math.max(now, state.updatedAt) };
}

export function takeTokens(state: BucketState | undefined, limits: BucketLimits, want: number, mode: TakeMode, now: number): TakeOutcome {
  const refilled = refillBucket(state, limits, now);
  const whole = Math.floor(refilled.tokens + EPSILON);
  const granted = mode === "all" ? (whole >= want ? want : 0) : Math.min(want, whole);
  const tokens = Math.max(0, refilled.tokens - granted);
  return {
    granted,
    tokens,
    state: { tokens, updatedAt: refilled.updatedAt },
    resetInMs: msUntilTokens(limits.capacity, tokens, limits.refillPerSecond),
  };
}

/** Milliseconds until a bucket holding `tokens` holds `target`: 0 if it already does, -1 if never. */
export function msUntilTokens(target: number, tokens: number, refillPerSecond: number): number {
  if (tokens + EPSILON >= target) return 0;
  if (refillPerSecond <= 0) return -1;
  return Math.ceil(((target - tokens) * 1000) / refillPerSecond);
}
