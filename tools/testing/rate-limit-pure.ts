// The rate-limit filter's pure modules as the `rate-limit-test` build target exports them
// (test/fixtures/wasm/rate-limit-exports.ts), instantiated through @assemblyscript/loader.
import { existsSync, readFileSync } from "node:fs";
import { instantiateSync, type ASUtil } from "@assemblyscript/loader";

export interface PureExports {
  [key: string]: unknown;
  bucketInit(capacityMilli: bigint, refillMilli: bigint, nowNs: bigint): void;
  bucketTake(nowNs: bigint): number;
  bucketRefill(nowNs: bigint): void;
  bucketTokensMilli(): bigint;
  bucketCarry(): bigint;
  bucketSecondsUntilToken(): bigint;
  bucketSecondsUntilFull(): bigint;
  bucketWindowSeconds(): bigint;
  bucketRoundTrip(): number;
  fingerprintOf(domain: number, limit: number, value: number): bigint;
  slotOfKey(domain: number, limit: number, value: number, slots: number): number;
  distinctSlotsForIps(n: number, slots: number): number;
  clientIp(address: number): number;
  poolInit(maxLease: bigint, minLease: bigint, ttlMs: bigint): void;
  poolSpend(fp: bigint, nowMs: bigint): number;
  poolGrant(fp: bigint, granted: bigint, asked: bigint, expiresInMs: bigint, retryHintMs: bigint, nowMs: bigint): number;
  poolFail(fp: bigint, nowMs: bigint): number;
  poolTokens(): bigint;
  poolWant(): bigint;
  poolInflight(): number;
  poolBackoff(): number;
  poolRetrySeconds(nowMs: bigint): bigint;
  poolRoundTrip(): number;
  policyHeader(name: number, q: bigint, w: bigint): number;
  rateLimitHeader(name: number, r: bigint, t: bigint): number;
  body429(name: number, retryAfter: bigint): number;
  isNearLimit(remaining: bigint, capacity: bigint): number;
  leaseBody(domain: number, limit: number, key: number, want: bigint): number;
  jsonQuote(s: number): number;
  wireKey2(a: number, b: number): number;
  leaseAnswer(body: number): number;
  configError(text: number): number;
}

/** Instantiates filters/build/rate-limit-test.wasm (built by `npm run build`); throws, saying how to build it, when missing. */
export function loadRateLimitPure(): ASUtil & PureExports {
  const wasmUrl = new URL("../../filters/build/rate-limit-test.wasm", import.meta.url);
  if (!existsSync(wasmUrl)) throw new Error(`${wasmUrl.pathname} is missing: run \`node filters/build.mjs rate-limit-test\` (or npm run build)`);
  return instantiateSync<PureExports>(readFileSync(wasmUrl), {}).exports;
}
