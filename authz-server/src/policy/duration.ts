// Durations in configuration ("30s", "250ms", "5m", "1h") to milliseconds.

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** Parses a schema-validated duration string; `fallbackMs` when absent. */
export function durationMs(value: string | undefined, fallbackMs: number): number {
  if (value === undefined) return fallbackMs;
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)$/.exec(value);
  if (!m) throw new Error(`invalid duration '${value}'`);
  return Math.round(Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS]);
}
