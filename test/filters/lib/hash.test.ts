// Stable hash and weighted choice (filters/lib/hash.ts, weighted.ts, random.ts) via the loader.
import assert from "node:assert/strict";
import { AsLib, loadAsLib } from "../../../tools/testing/as-lib.js";

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const M64 = (1n << 64n) - 1n;

/** Reference implementation: FNV-1a 64 over UTF-8, then MurmurHash3 fmix64. */
function referenceHash(s: string): bigint {
  let h = FNV_OFFSET;
  for (const b of Buffer.from(s, "utf8")) h = ((h ^ BigInt(b)) * FNV_PRIME) & M64;
  h ^= h >> 33n;
  h = (h * 0xff51afd7ed558ccdn) & M64;
  h ^= h >> 33n;
  h = (h * 0xc4ceb9fe1a85ec53n) & M64;
  h ^= h >> 33n;
  return h;
}

describe("filters/lib stable hash and weighted choice", function () {
  this.timeout(120_000);
  let lib: AsLib;
  before(async () => {
    lib = await loadAsLib();
  });

  it("is FNV-1a 64 over UTF-8 followed by fmix64, matching a reference implementation", () => {
    for (const key of ["", "a", "user-42", "Jürgen", "😀 emoji", "x".repeat(300)]) {
      assert.equal(lib.hashString(key), referenceHash(key), key);
      assert.equal(lib.hashUtf8(key), referenceHash(key), key);
    }
  });

  it("has fixed values (stable across releases, VMs and proxies)", () => {
    assert.equal(lib.hashString("user-42"), 0xa39532c7ab051e8dn);
    assert.equal(lib.hashString(""), 0xefd01f60ba992926n);
  });

  it("picks targets by cumulative weight", () => {
    assert.equal(lib.pick([10, 90], 0n), 0);
    assert.equal(lib.pick([10, 90], 9n), 0);
    assert.equal(lib.pick([10, 90], 10n), 1);
    assert.equal(lib.pick([10, 90], 99n), 1);
    assert.equal(lib.pick([10, 90], 100n), 0);
    assert.equal(lib.pick([1, 1, 1], 5n), 2);
    assert.equal(lib.pick([5], 123456789n), 0);
  });

  it("spreads 100k sticky keys within ±1% of the weights", () => {
    const n = 100_000;
    for (const weights of [[10, 90], [1, 1, 1], [70, 20, 10]]) {
      const counts = lib.stickyCounts(weights, "user-", n);
      const total = weights.reduce((a, b) => a + b, 0);
      weights.forEach((w, i) => {
        const share = counts[i]! / n;
        assert.ok(Math.abs(share - w / total) < 0.01, `weights ${weights}: target ${i} got ${share}`);
      });
    }
  });

  it("spreads PRNG draws within ±1% of the weights", () => {
    const counts = lib.randomCounts([25, 75], 12345, 100_000);
    assert.ok(Math.abs(counts[0]! / 100_000 - 0.25) < 0.01, String(counts));
  });
});
