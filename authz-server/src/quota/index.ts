// The quota service: global token buckets (Redis, or memory without Redis) served as the lease API
// (`POST /v1/quota/lease`) and as Envoy's RateLimitService; server.ts mounts both.
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { QuotaCode } from "../error-codes.js";
import type { BucketStore } from "./bucket-store.js";
import type { QuotaService, RateLimitSpec } from "./contract.js";
import { createCallerCheck } from "./caller-auth.js";
import { Grants } from "./grants.js";
import { createLeaseHandler } from "./lease-http.js";
import { compileLimits, type LimitTable } from "./limits.js";
import { MemoryBucketStore } from "./memory-store.js";
import { createQuotaMetrics } from "./metrics.js";
import { createRateLimitService } from "./rate-limit-service.js";
import { RedisBucketStore } from "./redis-store.js";
import type { RedisClient } from "../stores/redis-client.js";

export type { QuotaService, RateLimitSpec } from "./contract.js";

export interface QuotaServiceOptions {
  readonly limits: readonly RateLimitSpec[];
  /** `redis://…` or `redis+cluster://…`; absent (and no `redis`) = in-memory buckets (one process only). */
  readonly redisUrl?: string;
  /** A client from stores/redis-client.ts, shared with the rest of the process (takes precedence over `redisUrl`). */
  readonly redis?: RedisClient;
  readonly logger: Logger;
  readonly registry: Registry;
  /** Clock (ms) for the in-memory store; the Redis store uses Redis TIME so replicas agree. */
  readonly clock?: () => number;
  /** How long a filter may hold leased tokens (`expiresInMs`), default 10 s. */
  readonly leaseTtlMs?: number;
  /** Bound on in-memory buckets, default 100,000. */
  readonly memoryMaxBuckets?: number;
  /** Bound on one Redis command, default 300 ms. */
  readonly redisCommandTimeoutMs?: number;
  /**
   * Shared bearer token callers of the lease API and the RateLimitService must present (at least 16
   * characters). Absent: both are open to anyone who reaches the ports, and a warning is logged.
   */
  readonly token?: string;
}

export const DEFAULT_LEASE_TTL_MS = 10_000;

export function createQuotaService(opts: QuotaServiceOptions): QuotaService {
  const logger = opts.logger.child({ component: "quota" });
  let memory: MemoryBucketStore | undefined;
  const metrics = createQuotaMetrics(opts.registry, { memoryBuckets: () => memory?.size ?? 0 });
  let specs = opts.limits;
  let table: LimitTable = compileLimits(specs);
  const limits = (): LimitTable => table;

  let store: BucketStore;
  if (opts.redis || opts.redisUrl) {
    metrics.redisUp.set(0);
    store = new RedisBucketStore({
      ...(opts.redis ? { client: opts.redis } : { url: opts.redisUrl! }),
      ...(opts.redisCommandTimeoutMs !== undefined ? { commandTimeoutMs: opts.redisCommandTimeoutMs } : {}),
      onStatus: (up, detail) => {
        metrics.redisUp.set(up ? 1 : 0);
        if (up) logger.info("quota redis connection ready");
        else logger.warn({ code: "ERR_QUOTA_STORE_UNAVAILABLE" satisfies QuotaCode, detail }, "quota redis connection lost; leases answer 503 until it returns");
      },
    });
  } else {
    memory = new MemoryBucketStore({
      ...(opts.memoryMaxBuckets !== undefined ? { maxBuckets: opts.memoryMaxBuckets } : {}),
      ...(opts.clock ? { clock: opts.clock } : {}),
      onEvictActive: () => metrics.memoryEvictions.inc(),
    });
    store = memory;
  }

  const grants = new Grants(store, metrics, logger);
  const callers = createCallerCheck(opts.token);
  if (!callers) {
    logger.warn(
      { code: "ERR_QUOTA_UNAUTHENTICATED" satisfies QuotaCode },
      "quota endpoints are open: any client that reaches the HTTP or gRPC port can take quota (POST /v1/quota/lease, RateLimitService); set --quota-token-file or MESHWARD_QUOTA_TOKEN",
    );
  }
  const leaseTtlMs = opts.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
  return {
    handleHttp: createLeaseHandler({ limits, grants, metrics, leaseTtlMs, ...(callers ? { callers } : {}) }),
    rateLimitService: createRateLimitService({ limits, grants, metrics, logger, ...(callers ? { callers } : {}) }),
    setLimits(next) {
      // The same compiled policy's list (the server applies it at start too) is not compiled again.
      if (next === specs) return;
      specs = next;
      table = compileLimits(next);
    },
    async ready() {
      try {
        await store.ping();
        return { ok: true };
      } catch (err) {
        return { ok: false, detail: (err as Error).message };
      }
    },
    close: () => store.close(),
  };
}
