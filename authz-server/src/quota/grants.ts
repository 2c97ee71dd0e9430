// The one path from a resolved limit to a bucket take, shared by the lease API and ShouldRateLimit:
// builds the storage key, times the store, counts outcomes and logs store failures (at most 1/s).
import type { Logger } from "pino";
import { bucketKey } from "./bucket-key.js";
import type { BucketStore, TakeResult } from "./bucket-store.js";
import type { RateLimitSpec } from "./contract.js";
import { QuotaStoreUnavailable } from "./errors.js";
import type { QuotaApi, QuotaMetrics } from "./metrics.js";
import type { TakeMode } from "./token-bucket.js";

const ERROR_LOG_INTERVAL_MS = 1000;

type CounterChild = ReturnType<QuotaMetrics["leases"]["labels"]>;
type HistogramChild = ReturnType<QuotaMetrics["storeSeconds"]["labels"]>;

/** Pre-bound metric children of one (api, domain, limit): prom-client hashes a label object on every call otherwise. */
interface Bound {
  readonly granted: CounterChild;
  readonly denied: CounterChild;
  readonly error: CounterChild;
  readonly tokens: CounterChild;
}

export class Grants {
  private lastErrorLog = -Infinity;
  /** Keyed by configured limits only (unknown ones are refused before a take), so bounded. */
  private readonly bound = new Map<string, Bound>();
  private readonly storeOk: HistogramChild;
  private readonly storeError: HistogramChild;

  constructor(
    private readonly store: BucketStore,
    private readonly metrics: QuotaMetrics,
    private readonly logger: Logger,
  ) {
    this.storeOk = metrics.storeSeconds.labels(store.kind, "ok");
    this.storeError = metrics.storeSeconds.labels(store.kind, "error");
  }

  private children(api: QuotaApi, spec: RateLimitSpec): Bound {
    const k = `${api}\u0000${spec.domain}\u0000${spec.name}`;
    let b = this.bound.get(k);
    if (!b) {
      const { leases, tokensGranted } = this.metrics;
      b = {
        granted: leases.labels({ api, domain: spec.domain, limit: spec.name, outcome: "granted" }),
        denied: leases.labels({ api, domain: spec.domain, limit: spec.name, outcome: "denied" }),
        error: leases.labels({ api, domain: spec.domain, limit: spec.name, outcome: "error" }),
        tokens: tokensGranted.labels({ domain: spec.domain, limit: spec.name }),
      };
      this.bound.set(k, b);
    }
    return b;
  }

  /** Rejects only with QuotaStoreUnavailable. */
  async take(api: QuotaApi, spec: RateLimitSpec, key: string, want: number, mode: TakeMode): Promise<TakeResult> {
    const m = this.children(api, spec);
    const started = process.hrtime.bigint();
    let out: TakeResult;
    try {
      out = await this.store.take({ key: bucketKey(spec.domain, spec.name, key), capacity: spec.capacity, refillPerSecond: spec.refillPerSecond, want, mode });
    } catch (err) {
      this.storeError.observe(Number(process.hrtime.bigint() - started) / 1e9);
      m.error.inc();
      const unavailable = err instanceof QuotaStoreUnavailable ? err : new QuotaStoreUnavailable(`${this.store.kind}: ${String(err)}`, { cause: err });
      const now = Date.now();
      if (now - this.lastErrorLog >= ERROR_LOG_INTERVAL_MS) {
        this.lastErrorLog = now;
        this.logger.warn({ code: unavailable.code, store: this.store.kind, domain: spec.domain, limit: spec.name, err: unavailable.message }, "quota store unavailable; answering 503 / UNAVAILABLE");
      }
      throw unavailable;
    }
    this.storeOk.observe(Number(process.hrtime.bigint() - started) / 1e9);
    if (out.granted > 0) {
      m.granted.inc();
      m.tokens.inc(out.granted);
    } else {
      m.denied.inc();
    }
    return out;
  }
}
