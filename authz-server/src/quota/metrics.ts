// Prometheus metrics of the quota service. Labels carry only policy-defined domain and limit names,
// never client keys (attacker-chosen, unbounded).
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

export type QuotaApi = "http" | "grpc";
export type LeaseOutcome = "granted" | "denied" | "error";

export interface QuotaMetrics {
  readonly leases: Counter<"api" | "domain" | "limit" | "outcome">;
  readonly tokensGranted: Counter<"domain" | "limit">;
  readonly rejected: Counter<"api" | "reason">;
  readonly storeSeconds: Histogram<"store" | "outcome">;
  readonly redisUp: Gauge;
  readonly memoryBuckets: Gauge;
  readonly memoryEvictions: Counter;
}

function reuse<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

/** `memoryBuckets` reports the in-memory store's size at scrape time. */
export function createQuotaMetrics(registry: Registry, sources: { memoryBuckets?: () => number } = {}): QuotaMetrics {
  const registers = [registry];
  const memoryBuckets = sources.memoryBuckets;
  return {
    leases: reuse(registry, "meshward_quota_leases_total", () => new Counter({
      name: "meshward_quota_leases_total",
      help: "Quota takes by API (http lease, grpc ShouldRateLimit descriptor), domain, limit and outcome (granted: ≥ 1 token).",
      labelNames: ["api", "domain", "limit", "outcome"] as const,
      registers,
    })),
    tokensGranted: reuse(registry, "meshward_quota_tokens_granted_total", () => new Counter({
      name: "meshward_quota_tokens_granted_total",
      help: "Tokens granted (debited from global buckets) by domain and limit.",
      labelNames: ["domain", "limit"] as const,
      registers,
    })),
    rejected: reuse(registry, "meshward_quota_rejected_requests_total", () => new Counter({
      name: "meshward_quota_rejected_requests_total",
      help: "Quota requests answered without touching a bucket, by API and reason (invalid, unknown_limit, unknown_domain).",
      labelNames: ["api", "reason"] as const,
      registers,
    })),
    storeSeconds: reuse(registry, "meshward_quota_store_duration_seconds", () => new Histogram({
      name: "meshward_quota_store_duration_seconds",
      help: "Latency of one bucket take in the store (memory or redis).",
      labelNames: ["store", "outcome"] as const,
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    })),
    redisUp: reuse(registry, "meshward_quota_redis_up", () => new Gauge({
      name: "meshward_quota_redis_up",
      help: "1 while the quota service's Redis connection is ready, else 0 (absent without Redis); the lowest worker's value with --workers.",
      aggregator: "min",
      registers,
    })),
    memoryBuckets: reuse(registry, "meshward_quota_memory_buckets", () => new Gauge({
      name: "meshward_quota_memory_buckets",
      help: "Live buckets in the in-memory store (bounded by its maxBuckets).",
      registers,
      collect() {
        if (memoryBuckets) this.set(memoryBuckets());
      },
    })),
    memoryEvictions: reuse(registry, "meshward_quota_memory_evictions_total", () => new Counter({
      name: "meshward_quota_memory_evictions_total",
      help: "Not-yet-full buckets evicted from the in-memory store to stay within its bound (each restarts full).",
      registers,
    })),
  };
}
