// In-process bucket store for a server without Redis. Bounded: buckets are forgotten once full (a
// missing bucket is a full one), and beyond `maxBuckets` the least recently used bucket is evicted.
import { bucketTtlMs, type BucketStore, type TakeRequest, type TakeResult } from "./bucket-store.js";
import { takeTokens, type BucketState } from "./token-bucket.js";

export interface MemoryStoreOptions {
  /** Upper bound on live buckets (default 100,000). */
  readonly maxBuckets?: number;
  readonly clock?: () => number;
  /** Called when a bucket that was not yet full is evicted to respect the bound (it restarts full). */
  readonly onEvictActive?: () => void;
}

interface Entry {
  readonly key: string;
  state: BucketState;
  /** When the bucket is full again and can be dropped without changing any answer. */
  forgetAt: number;
  /** Neighbours in recency order (`older` is closer to the least recently used end). */
  older: Entry | undefined;
  newer: Entry | undefined;
}

/** Entries examined per call for lazy expiry, so idle full buckets leave without a timer. */
const SWEEP_PER_CALL = 2;
/** How far back the process clock may step without a forgotten bucket changing an answer. */
const CLOCK_STEP_BACK_GRACE_MS = 1000;

export class MemoryBucketStore implements BucketStore {
  readonly kind = "memory" as const;
  readonly maxBuckets: number;
  private readonly buckets = new Map<string, Entry>();
  /** Least and most recently used ends of an intrusive list: O(1) touch and eviction. */
  private oldest: Entry | undefined;
  private newest: Entry | undefined;
  private readonly clock: () => number;
  private readonly onEvictActive: (() => void) | undefined;

  constructor(opts: MemoryStoreOptions = {}) {
    this.maxBuckets = opts.maxBuckets ?? 100_000;
    if (!Number.isInteger(this.maxBuckets) || this.maxBuckets < 1) throw new RangeError("maxBuckets must be a positive integer");
    this.clock = opts.clock ?? Date.now;
    this.onEvictActive = opts.onEvictActive;
  }

  get size(): number {
    return this.buckets.size;
  }

  take(req: TakeRequest): Promise<TakeResult> {
    return Promise.resolve(this.takeNow(req));
  }

  /** Synchronous form of `take`, for callers (and tests) that need no promise per call. */
  takeNow(req: TakeRequest): TakeResult {
    const now = this.clock();
    let entry = this.buckets.get(req.key);
    if (entry && now >= entry.forgetAt) {
      this.remove(entry);
      entry = undefined;
    }
    this.sweep(now);
    const out = takeTokens(entry?.state, req, req.want, req.mode, now);
    if (out.resetInMs === 0) {
      if (entry) this.remove(entry);
    } else {
      // Kept a second past full: the process clock can step back (NTP), and a bucket forgotten at its
      // full time would then restart full too early. (Redis buckets use Redis TIME, one clock for all.)
      const forgetAt = out.state.updatedAt + bucketTtlMs(out.resetInMs) + CLOCK_STEP_BACK_GRACE_MS;
      if (entry) {
        entry.state = out.state;
        entry.forgetAt = forgetAt;
        this.unlink(entry);
        this.append(entry);
      } else {
        entry = { key: req.key, state: out.state, forgetAt, older: undefined, newer: undefined };
        this.buckets.set(req.key, entry);
        this.append(entry);
        if (this.buckets.size > this.maxBuckets) this.evictOldest(now);
      }
    }
    return { granted: out.granted, tokens: out.tokens, resetInMs: out.resetInMs };
  }

  ping(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.buckets.clear();
    this.oldest = this.newest = undefined;
    return Promise.resolve();
  }

  private sweep(now: number): void {
    for (let n = 0; n < SWEEP_PER_CALL && this.oldest && now >= this.oldest.forgetAt; n++) this.remove(this.oldest);
  }

  private evictOldest(now: number): void {
    const victim = this.oldest;
    if (!victim) return;
    this.remove(victim);
    if (now < victim.forgetAt) this.onEvictActive?.();
  }

  private remove(entry: Entry): void {
    this.buckets.delete(entry.key);
    this.unlink(entry);
  }

  private append(entry: Entry): void {
    entry.older = this.newest;
    entry.newer = undefined;
    if (this.newest) this.newest.newer = entry;
    else this.oldest = entry;
    this.newest = entry;
  }

  private unlink(entry: Entry): void {
    if (entry.older) entry.older.newer = entry.newer;
    else this.oldest = entry.newer;
    if (entry.newer) entry.newer.older = entry.older;
    else this.newest = entry.older;
    entry.older = entry.newer = undefined;
  }
}
