// `envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit` over the same buckets as the lease API,
// so Envoy's native ratelimit filter can use authz-server in place of envoyproxy/ratelimit.
import { status as GrpcStatus, type sendUnaryData, type ServerUnaryCall, type UntypedServiceImplementation } from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { QuotaCode } from "../error-codes.js";
import { mapDescriptor, type DescriptorEntry } from "./descriptor-mapping.js";
import { QuotaStoreUnavailable, RateLimitRequestInvalid } from "./errors.js";
import type { CallerCheck } from "./caller-auth.js";
import type { Grants } from "./grants.js";
import type { LimitTable } from "./limits.js";
import type { QuotaMetrics } from "./metrics.js";
import { rateLimitHeaders, unitForRate, type LimitView } from "./rate-limit-headers.js";
import { msUntilTokens } from "./token-bucket.js";

export const MAX_DESCRIPTORS = 64;
export const MAX_ENTRIES = 16;
/** Unknown domains are logged once each, for at most this many distinct domains. */
const MAX_LOGGED_DOMAINS = 64;

export interface RateLimitServiceDeps {
  readonly limits: () => LimitTable;
  readonly grants: Grants;
  readonly metrics: QuotaMetrics;
  readonly logger: Logger;
  /** Absent: open (no token configured). Envoy's ratelimit filter sends it as `initial_metadata`. */
  readonly callers?: CallerCheck;
}

// Field names follow grpc/protos.ts (keepCase: false, enums: String); snake_case is read as well.
interface WireRequest {
  domain?: string;
  descriptors?: { entries?: DescriptorEntry[] }[];
  hitsAddend?: number;
  hits_addend?: number;
}

interface WireStatus {
  code: "OK" | "OVER_LIMIT";
  currentLimit?: { name: string; requestsPerUnit: number; unit: string };
  limitRemaining?: number;
  durationUntilReset?: { seconds: number; nanos: number };
}

interface WireResponse {
  overallCode: "OK" | "OVER_LIMIT";
  statuses: WireStatus[];
  responseHeadersToAdd: { key: string; value: string }[];
}

export function createRateLimitService(deps: RateLimitServiceDeps): UntypedServiceImplementation {
  const loggedDomains = new Set<string>();

  const shouldRateLimit = async (req: WireRequest): Promise<WireResponse> => {
    const domain = String(req.domain ?? "");
    const descriptors = req.descriptors ?? [];
    if (descriptors.length > MAX_DESCRIPTORS) throw new RateLimitRequestInvalid(`more than ${MAX_DESCRIPTORS} descriptors`);
    if (descriptors.some((d) => (d.entries?.length ?? 0) > MAX_ENTRIES)) throw new RateLimitRequestInvalid(`a descriptor has more than ${MAX_ENTRIES} entries`);
    const hits = Number(req.hitsAddend ?? req.hits_addend ?? 0) || 1;
    const table = deps.limits();
    if (!table.hasDomain(domain)) {
      // As envoyproxy/ratelimit does: a domain without limits is not limited.
      deps.metrics.rejected.inc({ api: "grpc", reason: "unknown_domain" });
      if (!loggedDomains.has(domain) && loggedDomains.size < MAX_LOGGED_DOMAINS) {
        loggedDomains.add(domain);
        deps.logger.warn({ domain: domain.slice(0, 128) }, "ShouldRateLimit for a domain without spec.rateLimits entries; answering OK");
      }
      return { overallCode: "OK", statuses: descriptors.map(() => ({ code: "OK" })), responseHeadersToAdd: [] };
    }
    const results = await Promise.all(
      descriptors.map(async (d) => {
        const entries = d.entries ?? [];
        const mapped = mapDescriptor(entries.map((e) => ({ key: String(e.key ?? ""), value: String(e.value ?? "") })));
        const spec = mapped && table.find(domain, mapped.limit);
        if (!mapped || !spec) {
          deps.metrics.rejected.inc({ api: "grpc", reason: "unknown_limit" });
          return { status: { code: "OK" } as WireStatus };
        }
        const out = await deps.grants.take("grpc", spec, mapped.key, hits, "all");
        const over = out.granted < hits;
        const remaining = Math.floor(out.tokens + 1e-9);
        const status: WireStatus = {
          code: over ? "OVER_LIMIT" : "OK",
          currentLimit: { name: spec.name, ...unitForRate(spec.refillPerSecond, spec.capacity) },
          limitRemaining: Math.min(remaining, 0xffffffff),
        };
        if (out.resetInMs >= 0) status.durationUntilReset = { seconds: Math.floor(out.resetInMs / 1000), nanos: (out.resetInMs % 1000) * 1e6 };
        const view: LimitView = { name: spec.name, capacity: spec.capacity, refillPerSecond: spec.refillPerSecond, remaining, resetInMs: out.resetInMs };
        const retryAfterMs = over ? (hits > spec.capacity ? -1 : msUntilTokens(hits, out.tokens, spec.refillPerSecond)) : undefined;
        return { status, view, retryAfterMs };
      }),
    );
    const overLimit = results.some((r) => r.status.code === "OVER_LIMIT");
    let responseHeadersToAdd: { key: string; value: string }[] = [];
    if (overLimit) {
      const retries = results.flatMap((r) => (r.retryAfterMs === undefined ? [] : [r.retryAfterMs]));
      const retryAfterMs = retries.includes(-1) ? undefined : Math.max(...retries);
      responseHeadersToAdd = rateLimitHeaders(results.flatMap((r) => (r.view ? [r.view] : [])), retryAfterMs);
    }
    return { overallCode: overLimit ? "OVER_LIMIT" : "OK", statuses: results.map((r) => r.status), responseHeadersToAdd };
  };

  return {
    ShouldRateLimit(call: ServerUnaryCall<WireRequest, WireResponse>, callback: sendUnaryData<WireResponse>): void {
      if (deps.callers && !deps.callers(String(call.metadata.get("authorization")[0] ?? ""))) {
        deps.metrics.rejected.inc({ api: "grpc", reason: "unauthenticated" });
        callback({ code: GrpcStatus.UNAUTHENTICATED, details: `${"ERR_QUOTA_UNAUTHENTICATED" satisfies QuotaCode}: the RateLimitService needs the quota bearer token` });
        return;
      }
      shouldRateLimit(call.request).then(
        (res) => callback(null, res),
        (err: unknown) => {
          if (err instanceof QuotaStoreUnavailable) callback({ code: GrpcStatus.UNAVAILABLE, details: `${err.code}: ${err.message}` });
          else if (err instanceof RateLimitRequestInvalid) callback({ code: GrpcStatus.INVALID_ARGUMENT, details: `${err.code}: ${err.message}` });
          else {
            deps.logger.error({ err }, "ShouldRateLimit failed");
            callback({ code: GrpcStatus.INTERNAL, details: "internal error" });
          }
        },
      );
    },
  };
}
