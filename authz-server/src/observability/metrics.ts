// Prometheus metrics of the authz server (named meshward_authz_*, plus meshward_build_info), registered on an
// injected registry. Gauges that every worker of a --workers group reports alike aggregate by max, not sum.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

export interface AuthzMetrics {
  readonly decisions: Counter<"result" | "reason">;
  readonly latency: Histogram<"result">;
  readonly dryRunDisagreements: Counter<"rule" | "would">;
  readonly tokenCache: Counter<"result">;
  readonly policyInfo: Gauge<"version">;
  readonly policyReloads: Counter<"result">;
  readonly buildInfo: Gauge<"version">;
}

const bundles = new WeakMap<Registry, AuthzMetrics>();

export function authzMetrics(registry: Registry): AuthzMetrics {
  const existing = bundles.get(registry);
  if (existing) return existing;
  const registers = [registry];
  const m: AuthzMetrics = {
    decisions: new Counter({
      name: "meshward_authz_decisions_total",
      help: "Check decisions by result (allow, deny, unavailable, error) and reason.",
      labelNames: ["result", "reason"] as const,
      registers,
    }),
    latency: new Histogram({
      name: "meshward_authz_check_duration_seconds",
      help: "Time spent in the authz pipeline per Check.",
      labelNames: ["result"] as const,
      buckets: [0.00002, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1],
      registers,
    }),
    dryRunDisagreements: new Counter({
      name: "meshward_authz_dry_run_disagreements_total",
      help: "Checks where a dryRun rule would have changed the outcome, by rule and the outcome it would have produced.",
      labelNames: ["rule", "would"] as const,
      registers,
    }),
    tokenCache: new Counter({
      name: "meshward_authz_token_cache_lookups_total",
      help: "Lookups in the verified-token cache by result (hit, miss).",
      labelNames: ["result"] as const,
      registers,
    }),
    policyInfo: new Gauge({
      name: "meshward_authz_policy_info",
      help: "The policy being served: 1 for its version (a content hash of the file).",
      labelNames: ["version"] as const,
      aggregator: "max",
      registers,
    }),
    policyReloads: new Counter({
      name: "meshward_authz_policy_reloads_total",
      help: "Policy reload attempts by result (ok, rejected).",
      labelNames: ["result"] as const,
      registers,
    }),
    buildInfo: new Gauge({
      name: "meshward_build_info",
      help: "The running build: 1 for its version.",
      labelNames: ["version"] as const,
      aggregator: "max",
      registers,
    }),
  };
  bundles.set(registry, m);
  return m;
}
