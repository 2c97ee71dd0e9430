// Entry of the `rate-limit-test` build target: the filter's pure modules (bucket arithmetic,
// slot scheme, lease pool, headers, configuration) exported flat for unit tests through
// @assemblyscript/loader. Not loaded by any proxy.
import { ConfigParser } from "./config";
import { limitedBody, nearLimit, policyField, rateLimitField } from "./headers";
import { addressIp, appendComponent, keyScope } from "./key";
import { LeaseSpec, PoolState, applyFailure, applyGrant, secondsUntilRetry, spend } from "./lease-pool";
import { jsonString, leaseRequestBody, parseLeaseAnswer, wireKey } from "./lease-protocol";
import { keyFingerprint, slotOf } from "./slot";
import {
  BucketSpec, BucketState, refill, secondsUntilFull, secondsUntilToken, takeToken, windowSeconds,
} from "./token-bucket";

// ---- token bucket (one bucket under test) ----
const bucket = new BucketState();
let bucketSpec = new BucketSpec(0, 0);

export function bucketInit(capacityMilli: i64, refillMilliPerSecond: i64, nowNs: i64): void {
  bucketSpec = new BucketSpec(capacityMilli, refillMilliPerSecond);
  bucket.reset(7, bucketSpec, nowNs);
}
export function bucketTake(nowNs: i64): bool {
  return takeToken(bucket, bucketSpec, nowNs);
}
export function bucketRefill(nowNs: i64): void {
  refill(bucket, bucketSpec, nowNs);
}
export function bucketTokensMilli(): i64 {
  return bucket.tokensMilli;
}
export function bucketCarry(): i64 {
  return bucket.carry;
}
export function bucketSecondsUntilToken(): i64 {
  return secondsUntilToken(bucket, bucketSpec);
}
export function bucketSecondsUntilFull(): i64 {
  return secondsUntilFull(bucket, bucketSpec);
}
export function bucketWindowSeconds(): i64 {
  return windowSeconds(bucketSpec);
}
/** Encodes and decodes the bucket; true when every field survives. */
export function bucketRoundTrip(): bool {
  const copy = new BucketState();
  if (!copy.decode(bucket.encode())) return false;
  return copy.fingerprint == bucket.fingerprint && copy.tokensMilli == bucket.tokensMilli &&
    copy.lastNs == bucket.lastNs && copy.carry == bucket.carry;
}

// ---- slot scheme ----
export function fingerprintOf(domain: string, limit: string, value: string): u64 {
  return keyFingerprint(appendComponent(keyScope(domain, limit), value));
}
export function slotOfKey(domain: string, limit: string, value: string, slots: u32): u32 {
  return slotOf(fingerprintOf(domain, limit, value), slots);
}
/**
 * Feeds `n` distinct client IPs (10.a.b.c / fd00::n, as the filter keys them) through the slot
 * function; returns how many distinct slots they occupy, or -1 if any slot is out of range.
 */
export function distinctSlotsForIps(n: u32, slots: u32): i32 {
  const used = new Uint8Array(slots);
  let distinct = 0;
  const scope = keyScope("edge", "per-ip");
  for (let i: u32 = 0; i < n; i++) {
    let ip = "fd00::" + i.toString(16);
    if ((i & 1) == 0) ip = "10." + ((i >> 16) & 0xff).toString() + "." + ((i >> 8) & 0xff).toString() + "." + (i & 0xff).toString();
    const s = slotOf(keyFingerprint(appendComponent(scope, ip)), slots);
    if (s >= slots) return -1;
    if (used[s] == 0) {
      used[s] = 1;
      distinct++;
    }
  }
  return distinct;
}
export function clientIp(address: string): string | null {
  return addressIp(address);
}

// ---- lease pool (one pool under test) ----
const pool = new PoolState();
let leaseSpec = new LeaseSpec(1, 1, 100);

export function poolInit(maxLease: i64, minLease: i64, inflightTtlMs: i64): void {
  leaseSpec = new LeaseSpec(maxLease, minLease, inflightTtlMs);
  pool.fingerprint = 0;
}
export function poolSpend(fingerprint: u64, nowMs: i64): i32 {
  return spend(pool, fingerprint, leaseSpec, nowMs);
}
export function poolGrant(fingerprint: u64, granted: i64, asked: i64, expiresInMs: i64, retryHintMs: i64, nowMs: i64): bool {
  return applyGrant(pool, fingerprint, granted, asked, expiresInMs, retryHintMs, nowMs);
}
export function poolFail(fingerprint: u64, nowMs: i64): bool {
  return applyFailure(pool, fingerprint, nowMs);
}
export function poolTokens(): i64 {
  return pool.tokens;
}
export function poolWant(): i64 {
  return pool.want;
}
export function poolInflight(): bool {
  return pool.inflightUntilMs != 0;
}
export function poolBackoff(): i32 {
  return <i32>pool.backoffKind;
}
export function poolRetrySeconds(nowMs: i64): i64 {
  return secondsUntilRetry(pool, nowMs);
}
export function poolRoundTrip(): bool {
  const copy = new PoolState();
  if (!copy.decode(pool.encode())) return false;
  return copy.fingerprint == pool.fingerprint && copy.tokens == pool.tokens && copy.expiresAtMs == pool.expiresAtMs &&
    copy.inflightUntilMs == pool.inflightUntilMs && copy.backoffUntilMs == pool.backoffUntilMs &&
    copy.backoffKind == pool.backoffKind && copy.windowStartMs == pool.windowStartMs &&
    copy.spentInWindow == pool.spentInWindow && copy.want == pool.want;
}

// ---- headers and lease protocol ----
export function policyHeader(name: string, quota: i64, windowSeconds: i64): string {
  return policyField(name, quota, windowSeconds);
}
export function rateLimitHeader(name: string, remaining: i64, resetSeconds: i64): string {
  return rateLimitField(name, remaining, resetSeconds);
}
export function body429(name: string, retryAfter: i64): string {
  return limitedBody(name, retryAfter);
}
export function isNearLimit(remaining: i64, capacity: i64): bool {
  return nearLimit(remaining, capacity);
}
export function leaseBody(domain: string, limit: string, key: string, want: i64): string {
  return leaseRequestBody(domain, limit, key, want);
}
export function jsonQuote(s: string): string {
  return jsonString(s);
}
/** Two-component wire key (tests the escaping). */
export function wireKey2(a: string, b: string): string {
  return wireKey([a, b]);
}
/** "granted,expiresInMs,resetInMs,retryHint" or "error: …". */
export function leaseAnswer(body: string): string {
  const a = parseLeaseAnswer(body);
  if (a.error !== null) return "error: " + changetype<string>(a.error);
  return a.granted.toString() + "," + a.expiresInMs.toString() + "," + a.resetInMs.toString() + "," + a.retryHintMs.toString();
}

// ---- configuration ----
/** null when valid, else the error message onConfigure logs. */
export function configError(text: string): string | null {
  const parser = new ConfigParser();
  if (parser.parse(text) !== null) return null;
  return parser.error;
}
