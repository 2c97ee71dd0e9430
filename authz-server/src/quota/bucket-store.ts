// The storage seam of the quota service: one atomic "refill, then take" per bucket, implemented in
// memory (memory-store.ts) and in Redis with a Lua script (redis-store.ts).
import type { BucketLimits, TakeMode } from "./token-bucket.js";

export interface TakeRequest extends BucketLimits {
  /** Storage key from `bucketKey()` (bounded length, Redis Cluster hash-tagged). */
  readonly key: string;
  readonly want: number;
  readonly mode: TakeMode;
}

export interface TakeResult {
  readonly granted: number;
  /** Tokens left after the grant (fractional). */
  readonly tokens: number;
  /** Milliseconds until the bucket is full again; 0 when full, -1 when it never refills. */
  readonly resetInMs: number;
}

export interface BucketStore {
  readonly kind: "memory" | "redis";
  /** Refills by elapsed time, grants and debits atomically; rejects with QuotaStoreUnavailable. */
  take(req: TakeRequest): Promise<TakeResult>;
  /** Resolves when the store answers; rejects with the reason otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** How long a bucket of a limit that never refills is kept after its last use (it cannot expire "full"). */
export const NO_REFILL_IDLE_MS = 24 * 60 * 60 * 1000;

/** When a bucket left with `resetInMs` may be forgotten: once full, since a missing bucket is a full one. */
export function bucketTtlMs(resetInMs: number): number {
  return resetInMs < 0 ? NO_REFILL_IDLE_MS : Math.max(1, resetInMs);
}
