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
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) => new Counter({ name, help, labelNames, registers });
  /** A gauge every worker reports alike: aggregated by max across a --workers group. */
  const info = (name: string, help: string) => new Gauge({ name, help, labelNames: ["version"] as const, aggregator: "max", registers });
  const m: AuthzMetrics = {
    decisions: counter("meshward_authz_decisions_total", "Check decisions by result (allow, deny, unavailable, error) and reason.", ["result", "reason"]),
    latency: new Histogram({
      name: "meshward_authz_check_duration_seconds",
      help: "Time spent in the authz pipeline per Check.",
      labelNames: ["result"] as const,
      buckets: [0.00002, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1],
      registers,
    }),
    dryRunDisagreements: counter(
      "meshward_authz_dry_run_disagreements_total",
      "Checks where a dryRun rule would have changed the outcome, by rule and the outcome it would have produced.",
      ["rule", "would"],
    ),
    tokenCache: counter("meshward_authz_token_cache_lookups_total", "Lookups in the verified-token cache by result (hit, miss).", ["result"]),
    policyInfo: info("meshward_authz_policy_info", "The policy being served: 1 for its version (a content hash of the file)."),
    policyReloads: counter("meshward_authz_policy_reloads_total", "Policy reload attempts by result (ok, rejected).", ["result"]),
    buildInfo: info("meshward_build_info", "The running build: 1 for its version."),
  };
  bundles.set(registry, m);
  return m;
}
