// Prometheus metrics of key sources (JWKS, OIDC discovery), one set per registry with a `provider`
// label, so several providers and several sources in one process share the same series names.
import { Counter, Gauge, type Registry } from "prom-client";

export interface KeyAgeReporter {
  readonly provider: string;
  /** Seconds since the keys were last fetched successfully, or undefined before the first fetch. */
  keyAgeSeconds(): number | undefined;
}

export interface JwksMetrics {
  readonly fetches: Counter<"provider" | "document" | "result">;
  readonly failures: Counter<"provider" | "document" | "reason">;
  readonly keys: Gauge<"provider">;
  readonly unknownKid: Counter<"provider" | "outcome">;
  /** Registers a source whose key age is reported by the age gauge at scrape time; returns the unregister function. */
  track(source: KeyAgeReporter): () => void;
}

const bundles = new WeakMap<Registry, JwksMetrics>();

export function jwksMetrics(registry: Registry): JwksMetrics {
  const existing = bundles.get(registry);
  if (existing) return existing;
  const tracked = new Set<KeyAgeReporter>();
  const registers = [registry];
  const bundle: JwksMetrics = {
    fetches: new Counter({
      name: "meshward_jwks_fetches_total",
      help: "Fetches of JWKS and OIDC discovery documents by provider, document and result (ok or a failure code).",
      labelNames: ["provider", "document", "result"] as const,
      registers,
    }),
    failures: new Counter({
      name: "meshward_jwks_fetch_failures_total",
      help: "Failed fetches of JWKS and OIDC discovery documents by provider, document and reason.",
      labelNames: ["provider", "document", "reason"] as const,
      registers,
    }),
    keys: new Gauge({
      name: "meshward_jwks_keys",
      help: "Usable verification keys held per provider.",
      labelNames: ["provider"] as const,
      aggregator: "max",
      registers,
    }),
    unknownKid: new Counter({
      name: "meshward_jwks_unknown_kid_total",
      help: "Lookups of a kid not in the cached keys, by outcome (refetched, cooldown, negative_cached, found_after_refetch).",
      labelNames: ["provider", "outcome"] as const,
      registers,
    }),
    track(source) {
      tracked.add(source);
      return () => { tracked.delete(source); age.remove({ provider: source.provider }); };
    },
  };
  const age = new Gauge({
    name: "meshward_jwks_keys_age_seconds",
    help: "Seconds since the provider's keys were last fetched successfully.",
    labelNames: ["provider"] as const,
    aggregator: "max",
    registers,
    collect() {
      for (const s of tracked) {
        const a = s.keyAgeSeconds();
        if (a !== undefined) this.set({ provider: s.provider }, a);
      }
    },
  });
  bundles.set(registry, bundle);
  return bundle;
}
