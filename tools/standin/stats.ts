// Process-wide stats store behind proxy_define/increment/record/get_metric (Envoy stats are shared by all workers).

export type MetricKind = "counter" | "gauge" | "histogram";

export interface Stat { readonly name: string; readonly kind: MetricKind; value: bigint; samples: bigint[] }

/** Histogram samples kept per stat (oldest dropped) so memory stays bounded under load. */
const MAX_SAMPLES = 10_000;

export class StatsStore {
  private readonly stats = new Map<string, Stat>();

  /** A name defined with another type is a distinct stat (Envoy keeps separate scopes per type). */
  define(name: string, kind: MetricKind): Stat {
    const key = `${kind}\u0000${name}`;
    let s = this.stats.get(key);
    if (!s) this.stats.set(key, (s = { name, kind, value: 0n, samples: [] }));
    return s;
  }

  record(stat: Stat, value: bigint): void {
    stat.samples.push(value);
    if (stat.samples.length > MAX_SAMPLES) stat.samples.shift();
  }

  /** Counter or gauge value by name (as a number; Envoy's "wasmcustom." prefix optional), or undefined. */
  value(name: string): number | undefined {
    if (name.startsWith("wasmcustom.")) name = name.slice("wasmcustom.".length);
    for (const kind of ["counter", "gauge"] as const) {
      const s = this.stats.get(`${kind}\u0000${name}`);
      if (s) return Number(s.value);
    }
    return undefined;
  }

  get(name: string, kind: MetricKind): Stat | undefined {
    return this.stats.get(`${kind}\u0000${name}`);
  }

  all(): Stat[] {
    return [...this.stats.values()];
  }
}
