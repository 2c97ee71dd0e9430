// Token bucket with continuous refill in exact integer arithmetic: tokens are counted in
// millitokens and the sub-millitoken refill remainder is carried, so refill never drifts.
// Pure: a function of (state, now); the host module stores the state in shared data.

export const MILLI: i64 = 1000;
export const NS_PER_SECOND: i64 = 1000000000;
/** Largest accepted capacity / refillPerSecond: keeps every product below 2^63. */
export const MAX_TOKENS: i64 = 1000000;
/** Serialized size of a bucket slot: fingerprint, millitokens, last refill (ns), carry. */
export const BUCKET_BYTES: i32 = 32;

/** One limit's bucket parameters, in millitokens. */
export class BucketSpec {
  constructor(public capacityMilli: i64, public refillMilliPerSecond: i64) {}
}

/** Bucket state as stored in one shared-data slot. `fingerprint` 0 means "never written". */
export class BucketState {
  fingerprint: u64 = 0;
  tokensMilli: i64 = 0;
  lastNs: i64 = 0;
  /** Refill remainder in millitoken-nanoseconds (< 1e9): elapsedNs × rate not yet turned into a millitoken. */
  carry: i64 = 0;

  /** A full bucket, as for a key never seen before. */
  reset(fingerprint: u64, spec: BucketSpec, nowNs: i64): void {
    this.fingerprint = fingerprint;
    this.tokensMilli = spec.capacityMilli;
    this.lastNs = nowNs;
    this.carry = 0;
  }

  encode(): ArrayBuffer {
    const buf = new ArrayBuffer(BUCKET_BYTES);
    const p = changetype<usize>(buf);
    store<u64>(p, this.fingerprint);
    store<i64>(p, this.tokensMilli, 8);
    store<i64>(p, this.lastNs, 16);
    store<i64>(p, this.carry, 24);
    return buf;
  }

  /** Reads a slot value; false when it is not a bucket record (then the caller resets it). */
  decode(buf: ArrayBuffer): bool {
    if (buf.byteLength != BUCKET_BYTES) return false;
    const p = changetype<usize>(buf);
    this.fingerprint = load<u64>(p);
    this.tokensMilli = load<i64>(p, 8);
    this.lastNs = load<i64>(p, 16);
    this.carry = load<i64>(p, 24);
    return this.tokensMilli >= 0 && this.carry >= 0 && this.carry < NS_PER_SECOND;
  }
}

/** Adds the tokens earned since `lastNs`. A clock that goes backwards earns nothing. */
export function refill(state: BucketState, spec: BucketSpec, nowNs: i64): void {
  if (nowNs <= state.lastNs) return;
  const elapsed = nowNs - state.lastNs;
  state.lastNs = nowNs;
  if (state.tokensMilli >= spec.capacityMilli) {
    state.tokensMilli = spec.capacityMilli;
    state.carry = 0;
    return;
  }
  const rate = spec.refillMilliPerSecond;
  if (rate == 0) return;
  const missing = spec.capacityMilli - state.tokensMilli;
  if (elapsed >= nsUntil(state, rate, missing)) {
    state.tokensMilli = spec.capacityMilli;
    state.carry = 0;
    return;
  }
  const numer = elapsed * rate + state.carry;
  state.tokensMilli += numer / NS_PER_SECOND;
  state.carry = numer % NS_PER_SECOND;
}

/** Refills, then takes one token when there is one. True = admitted. */
export function takeToken(state: BucketState, spec: BucketSpec, nowNs: i64): bool {
  refill(state, spec, nowNs);
  if (state.tokensMilli < MILLI) return false;
  state.tokensMilli -= MILLI;
  return true;
}

/** Whole tokens left. */
export function remainingTokens(state: BucketState): i64 {
  return state.tokensMilli / MILLI;
}

/** Nanoseconds until `wantMilli` more millitokens have accrued (rate > 0). */
function nsUntil(state: BucketState, rate: i64, wantMilli: i64): i64 {
  const needed = wantMilli * NS_PER_SECOND - state.carry;
  if (needed <= 0) return 0;
  return (needed + rate - 1) / rate;
}

function ceilSeconds(ns: i64): i64 {
  return (ns + NS_PER_SECOND - 1) / NS_PER_SECOND;
}

/** Whole seconds until one token is available (0 when one is); -1 when the bucket never refills. */
export function secondsUntilToken(state: BucketState, spec: BucketSpec): i64 {
  if (state.tokensMilli >= MILLI) return 0;
  if (spec.refillMilliPerSecond == 0) return -1;
  return ceilSeconds(nsUntil(state, spec.refillMilliPerSecond, MILLI - state.tokensMilli));
}

/** Whole seconds until the bucket is full again; -1 when it never refills and is not full. */
export function secondsUntilFull(state: BucketState, spec: BucketSpec): i64 {
  if (state.tokensMilli >= spec.capacityMilli) return 0;
  if (spec.refillMilliPerSecond == 0) return -1;
  return ceilSeconds(nsUntil(state, spec.refillMilliPerSecond, spec.capacityMilli - state.tokensMilli));
}

/** The policy window advertised in RateLimit-Policy: seconds to refill an empty bucket (-1: never). */
export function windowSeconds(spec: BucketSpec): i64 {
  if (spec.refillMilliPerSecond == 0) return -1;
  return (spec.capacityMilli + spec.refillMilliPerSecond - 1) / spec.refillMilliPerSecond;
}
