// Reference model of header-router's sticky split (filters/lib/hash.ts + weighted.ts), used to
// check the real filter against it and to compute split distributions without running streams.
const M64 = (1n << 64n) - 1n;

/** FNV-1a 64 over UTF-8, then the MurmurHash3 fmix64 finalizer. */
export function stableHash(key: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.from(key, "utf8")) h = ((h ^ BigInt(b)) * 0x100000001b3n) & M64;
  h ^= h >> 33n;
  h = (h * 0xff51afd7ed558ccdn) & M64;
  h ^= h >> 33n;
  h = (h * 0xc4ceb9fe1a85ec53n) & M64;
  return h ^ (h >> 33n);
}

/** Index of the target that `key` sticks to for these relative weights. */
export function stickyIndex(key: string, weights: readonly number[]): number {
  const total = BigInt(weights.reduce((a, b) => a + b, 0));
  const ticket = stableHash(key) % total;
  let cumulative = 0n;
  for (let i = 0; i < weights.length; i++) {
    cumulative += BigInt(weights[i]!);
    if (ticket < cumulative) return i;
  }
  return weights.length - 1;
}
