// A global limit's leased token pool for one key, as stored in shared data: pooled tokens with
// their expiry, the one-per-proxy in-flight lease marker, backoff after an empty grant or a
// failed lease, and the observed spend rate that sizes the next lease. Pure: (state, now) → outcome.

/** What a request should do after `spend`. */
export const enum PoolOutcome {
  /** A pooled token was taken. */
  Admit = 0,
  /** A token was taken and this caller claimed the in-flight marker: it must send the lease call. */
  AdmitAndLease = 1,
  /** Pool empty, a lease is in flight (another caller's): wait for it. */
  Wait = 2,
  /** Pool empty and this caller claimed the marker: send the lease call and wait. */
  WaitAndLease = 3,
  /** The quota service granted nothing recently: the key is over its global limit. */
  Over = 4,
  /** A lease failed recently: apply the failure mode. */
  Unavailable = 5,
}

export const enum BackoffKind { None = 0, Exhausted = 1, Failed = 2 }

/** Spend is measured over windows of this length to size the next lease. */
export const ADAPT_WINDOW_MS: i64 = 1000;
/** A lease aims to cover this much observed demand. */
export const LEASE_HORIZON_MS: i64 = 1000;
/** After a failed lease, no new attempt (and no waiting) for this long. */
export const FAILURE_BACKOFF_MS: i64 = 1000;
/** Upper bound on the wait after an empty grant, whatever the service's retry hint says (also used when it has none). */
export const MAX_EXHAUSTED_BACKOFF_MS: i64 = 1000;
export const POOL_BYTES: i32 = 72;

export class LeaseSpec {
  constructor(
    /** Largest lease (`global.lease`), also the first lease's size. */
    public maxLease: i64,
    /** Smallest lease (`global.minLease`). */
    public minLease: i64,
    /** How long a claimed in-flight marker holds before another caller may claim it. */
    public inflightTtlMs: i64,
  ) {}
}

export class PoolState {
  fingerprint: u64 = 0;
  tokens: i64 = 0;
  expiresAtMs: i64 = 0;
  inflightUntilMs: i64 = 0;
  backoffUntilMs: i64 = 0;
  backoffKind: i64 = BackoffKind.None;
  windowStartMs: i64 = 0;
  spentInWindow: i64 = 0;
  want: i64 = 0;

  /** An empty pool owned by `fingerprint` (a new key, or one taking over a colliding slot). */
  reset(fingerprint: u64, spec: LeaseSpec, nowMs: i64): void {
    this.fingerprint = fingerprint;
    this.tokens = 0;
    this.expiresAtMs = 0;
    this.inflightUntilMs = 0;
    this.backoffUntilMs = 0;
    this.backoffKind = BackoffKind.None;
    this.windowStartMs = nowMs;
    this.spentInWindow = 0;
    this.want = spec.maxLease;
  }

  encode(): ArrayBuffer {
    const buf = new ArrayBuffer(POOL_BYTES);
    const p = changetype<usize>(buf);
    store<u64>(p, this.fingerprint);
    store<i64>(p, this.tokens, 8);
    store<i64>(p, this.expiresAtMs, 16);
    store<i64>(p, this.inflightUntilMs, 24);
    store<i64>(p, this.backoffUntilMs, 32);
    store<i64>(p, this.backoffKind, 40);
    store<i64>(p, this.windowStartMs, 48);
    store<i64>(p, this.spentInWindow, 56);
    store<i64>(p, this.want, 64);
    return buf;
  }

  decode(buf: ArrayBuffer): bool {
    if (buf.byteLength != POOL_BYTES) return false;
    const p = changetype<usize>(buf);
    this.fingerprint = load<u64>(p);
    this.tokens = load<i64>(p, 8);
    this.expiresAtMs = load<i64>(p, 16);
    this.inflightUntilMs = load<i64>(p, 24);
    this.backoffUntilMs = load<i64>(p, 32);
    this.backoffKind = load<i64>(p, 40);
    this.windowStartMs = load<i64>(p, 48);
    this.spentInWindow = load<i64>(p, 56);
    this.want = load<i64>(p, 64);
    return this.tokens >= 0 && this.want > 0;
  }
}

/** Refill the pool when it falls below half a lease. */
export function lowWater(want: i64): i64 {
  return (want + 1) / 2;
}

function clamp(v: i64, lo: i64, hi: i64): i64 {
  return v < lo ? lo : v > hi ? hi : v;
}

/**
 * Brings the pool to `nowMs` (takeover of a slot held by another key, token expiry, stale
 * in-flight marker, lease sizing) and tries to take one token. The caller writes the state back
 * with CAS and redoes the whole call on a mismatch.
 */
export function spend(pool: PoolState, fingerprint: u64, spec: LeaseSpec, nowMs: i64): PoolOutcome {
  if (pool.fingerprint != fingerprint) pool.reset(fingerprint, spec, nowMs);
  if (pool.tokens > 0 && nowMs >= pool.expiresAtMs) pool.tokens = 0;
  if (pool.inflightUntilMs != 0 && nowMs >= pool.inflightUntilMs) pool.inflightUntilMs = 0;
  if (pool.backoffKind != BackoffKind.None && nowMs >= pool.backoffUntilMs) pool.backoffKind = BackoffKind.None;
  adapt(pool, spec, nowMs);

  const canLease = pool.inflightUntilMs == 0 && pool.backoffKind == BackoffKind.None;
  if (pool.tokens > 0) {
    pool.tokens--;
    pool.spentInWindow++;
    if (canLease && pool.tokens < lowWater(pool.want)) {
      pool.inflightUntilMs = nowMs + spec.inflightTtlMs;
      return PoolOutcome.AdmitAndLease;
    }
    return PoolOutcome.Admit;
  }
  if (pool.backoffKind == BackoffKind.Exhausted) return PoolOutcome.Over;
  if (pool.backoffKind == BackoffKind.Failed) return PoolOutcome.Unavailable;
  if (canLease) {
    pool.inflightUntilMs = nowMs + spec.inflightTtlMs;
    return PoolOutcome.WaitAndLease;
  }
  return PoolOutcome.Wait;
}

/** Lease size: the spend observed over the last window scaled to LEASE_HORIZON_MS, within [minLease, maxLease]. */
function adapt(pool: PoolState, spec: LeaseSpec, nowMs: i64): void {
  const elapsed = nowMs - pool.windowStartMs;
  if (elapsed < ADAPT_WINDOW_MS) {
    if (elapsed < 0) pool.windowStartMs = nowMs;
    return;
  }
  const demand = (pool.spentInWindow * LEASE_HORIZON_MS + elapsed - 1) / elapsed;
  pool.want = clamp(demand, spec.minLease, spec.maxLease);
  pool.windowStartMs = nowMs;
  pool.spentInWindow = 0;
}

/**
 * Applies a lease answer to a request for `asked` tokens. False (state untouched) when the slot
 * now belongs to another key: the grant is dropped, which can only under-admit. Pooled tokens keep
 * the earlier of their expiry and the new one, so no token outlives the expiry it was granted
 * with. A grant smaller than asked means the global bucket is empty: pooled tokens are still
 * spent, but no new lease is asked for, and an empty pool answers 429, until the retry hint.
 */
export function applyGrant(pool: PoolState, fingerprint: u64, granted: i64, asked: i64, expiresInMs: i64, retryHintMs: i64, nowMs: i64): bool {
  if (pool.fingerprint != fingerprint) return false;
  pool.inflightUntilMs = 0;
  if (pool.tokens > 0 && nowMs >= pool.expiresAtMs) pool.tokens = 0;
  pool.backoffKind = BackoffKind.None;
  if (granted > 0 && expiresInMs > 0) {
    const expiry = nowMs + expiresInMs;
    pool.expiresAtMs = pool.tokens > 0 && pool.expiresAtMs < expiry ? pool.expiresAtMs : expiry;
    pool.tokens += granted;
  }
  if (granted < asked || expiresInMs <= 0) {
    let wait = MAX_EXHAUSTED_BACKOFF_MS;
    if (retryHintMs >= 0) wait = clamp(retryHintMs, 1, MAX_EXHAUSTED_BACKOFF_MS);
    pool.backoffKind = BackoffKind.Exhausted;
    pool.backoffUntilMs = nowMs + wait;
  }
  return true;
}

/** Records a failed lease (transport error, non-200, malformed answer). False when the slot changed owner. */
export function applyFailure(pool: PoolState, fingerprint: u64, nowMs: i64): bool {
  if (pool.fingerprint != fingerprint) return false;
  pool.inflightUntilMs = 0;
  if (pool.tokens > 0 && nowMs >= pool.expiresAtMs) pool.tokens = 0;
  pool.backoffKind = BackoffKind.Failed;
  pool.backoffUntilMs = nowMs + FAILURE_BACKOFF_MS;
  return true;
}

/** Whole seconds until the pool may have tokens again (for Retry-After on Over); at least 1. */
export function secondsUntilRetry(pool: PoolState, nowMs: i64): i64 {
  const ms = pool.backoffUntilMs - nowMs;
  return ms <= 1000 ? 1 : (ms + 999) / 1000;
}
