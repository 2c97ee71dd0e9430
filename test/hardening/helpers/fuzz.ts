// Run counts for property tests: small and bounded in `npm test`; `npm run fuzz` raises them via
// FUZZ_RUNS (a multiplier-free absolute count applied to every property).
export function fuzzRuns(defaultRuns: number): number {
  const env = Number(process.env.FUZZ_RUNS);
  return Number.isInteger(env) && env > 0 ? env : defaultRuns;
}

/** Seed for reproduction: FUZZ_SEED, else fast-check's own (printed on failure). */
export function fuzzSeed(): { seed?: number } {
  const s = Number(process.env.FUZZ_SEED);
  return Number.isInteger(s) ? { seed: s } : {};
}
