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

export class Grants {
  private lastErrorLog = -Infinity;

  constructor(
    private readonly store: BucketStore,
    private readonly metrics: QuotaMetrics,
    private readonly logger: Logger,
  ) {}

  /** Rejects only with QuotaStoreUnavailable. */
  async take(api: QuotaApi, spec: RateLimitSpec, key: string, want: number, mode: TakeMode): Promise<TakeResult> {
    const labels = { api, domain: spec.domain, limit: spec.name };
    const end = this.metrics.storeSeconds.startTimer({ store: this.store.kind });
    let out: TakeResult;
    try {
      out = await this.store.take({ key: bucketKey(spec.domain, spec.name, key), capacity: spec.capacity, refillPerSecond: spec.refillPerSecond, want, mode });
    } catch (err) {
      end({ outcome: "error" });
      this.metrics.leases.inc({ ...labels, outcome: "error" });
      const unavailable = err instanceof QuotaStoreUnavailable ? err : new QuotaStoreUnavailable(`${this.store.kind}: ${String(err)}`, { cause: err });
      const now = Date.now();
      if (now - this.lastErrorLog >= ERROR_LOG_INTERVAL_MS) {
        this.lastErrorLog = now;
        this.logger.warn({ code: unavailable.code, store: this.store.kind, domain: spec.domain, limit: spec.name, err: unavailable.message }, "quota store unavailable; answering 503 / UNAVAILABLE");
      }
      throw unavailable;
    }
    end({ outcome: "ok" });
    this.metrics.leases.inc({ ...labels, outcome: out.granted > 0 ? "granted" : "denied" });
    if (out.granted > 0) this.metrics.tokensGranted.inc({ domain: spec.domain, limit: spec.name }, out.granted);
    return out;
  }
}
