// One benchmark result row: our figure beside a baseline measured in the same run.
export interface BenchRow {
  /** Group, e.g. "filter", "authz", "quota". */
  readonly area: string;
  /** What was measured, e.g. "header-router, 20 rules". */
  readonly name: string;
  /** Unit of `ours`/`baseline`, e.g. "ns/req", "req/s", "µs", "bytes". */
  readonly unit: string;
  readonly ours: number;
  /** The baseline's figure from the same run, when the row has one. */
  readonly baseline?: number;
  readonly baselineName?: string;
  /** ours / baseline (or baseline / ours for throughput: always "ours relative to baseline" as the row says). */
  readonly ratio?: number;
  /** The budget the ratio or figure is held to, e.g. "≤ 2.0×", and whether this run met it. */
  readonly budget?: string;
  readonly met?: boolean;
  /** Latency percentiles in ms where latency applies. */
  readonly p50?: number;
  readonly p99?: number;
  readonly p999?: number;
  readonly note?: string;
}

/** Each bench module exports `bench(opts)` returning its rows. */
export type BenchModule = (opts: { readonly quick: boolean; readonly progress: (msg: string) => void }) => Promise<BenchRow[]>;
