// Pair serialization (docs/proxy-wasm-host.md §2.2): byte-exact layout, round trips, and cpp-host's invalid-input → empty-list rule.
import { strict as assert } from "node:assert";
import fc from "fast-check";
import { MAX_PAIRS_BYTES, keyValuesSize, pairsSize, parsePairs, serializePairs, writeKeyValues, type Pair } from "../../tools/standin/pairs.js";
import { HeaderMap } from "../../tools/standin/header-map.js";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

describe("stand-in pair serialization", () => {
  it("serializes {a:1, b:22} to the spec's 29-byte example", () => {
    const bytes = serializePairs([["a", "1"], ["b", "22"]]);
    assert.equal(bytes.byteLength, 29);
    assert.equal(hex(bytes), "02000000" + "01000000" + "01000000" + "01000000" + "02000000" + "6100" + "3100" + "6200" + "323200");
  });

  it("sizes as 4 + Σ(10 + key + value) and an empty list as a bare count", () => {
    assert.equal(pairsSize([["abc", "de"]]), 4 + 10 + 5);
    assert.equal(hex(serializePairs([])), "00000000");
  });

  it("round-trips any byte strings exactly, including NUL-free binary and empty values", () => {
    const byteString = fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString("latin1"));
    fc.assert(fc.property(fc.array(fc.tuple(byteString, byteString), { maxLength: 30 }), (pairs) => {
      const parsed = parsePairs(serializePairs(pairs as Pair[]));
      assert.deepEqual(parsed, pairs);
    }), { numRuns: 200 });
  });

  it("writes a header map's parallel key/value arrays to the same bytes as the pair serializer", () => {
    const byteString = fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b).toString("latin1"));
    fc.assert(fc.property(fc.array(fc.tuple(byteString, byteString), { maxLength: 20 }), (pairs) => {
      const keys = pairs.map(([k]) => k);
      const values = pairs.map(([, v]) => v);
      const buf = Buffer.alloc(keyValuesSize(keys, values) + 3);
      writeKeyValues(buf, 3, keys, values);
      assert.deepEqual(new Uint8Array(buf.subarray(3)), serializePairs(pairs as Pair[]));
    }), { numRuns: 200 });
  });

  it("treats truncated input as an empty list", () => {
    const ok = serializePairs([["key", "value"]]);
    for (let n = 0; n < ok.byteLength; n++) assert.deepEqual(parsePairs(ok.subarray(0, n)), [], `truncated to ${n}`);
  });

  it("treats a missing NUL terminator as an empty list", () => {
    const b = Buffer.from(serializePairs([["k", "v"]]));
    b[b.length - 1] = 0x41;
    assert.deepEqual(parsePairs(b), []);
    const c = Buffer.from(serializePairs([["k", "v"]]));
    c[4 + 8 + 1] = 0x41; // terminator after the key
    assert.deepEqual(parsePairs(c), []);
  });

  it("treats trailing bytes as an empty list", () => {
    const b = Buffer.concat([serializePairs([["k", "v"]]), Buffer.from([0])]);
    assert.deepEqual(parsePairs(b), []);
  });

  it("treats more than 1024 pairs or more than 1 MiB as an empty list", () => {
    const many: Pair[] = Array.from({ length: 1025 }, (_, i) => [`k${i}`, "v"]);
    assert.deepEqual(parsePairs(serializePairs(many)), []);
    assert.equal(parsePairs(serializePairs(many.slice(0, 1024))).length, 1024);
    const big: Pair[] = [["k", "x".repeat(MAX_PAIRS_BYTES)]];
    assert.deepEqual(parsePairs(serializePairs(big)), []);
  });
});

describe("stand-in header map", () => {
  it("lower-cases keys, keeps pseudo-headers first and merges inline headers on add", () => {
    const h = HeaderMap.from({ "X-A": "1" });
    h.add(":path", "/p");
    h.add("user-agent", "a");
    h.add("User-Agent", "b");
    h.add("x-a", "2");
    assert.deepEqual(h.pairs(), [[":path", "/p"], ["x-a", "1"], ["user-agent", "a,b"], ["x-a", "2"]]);
  });

  it("replace leaves exactly one value in the first entry's place; byteSize sums keys and values", () => {
    const h = HeaderMap.from([["a", "1"], ["b", "2"], ["a", "3"]]);
    h.set("A", "9");
    assert.deepEqual(h.pairs(), [["a", "9"], ["b", "2"]]);
    assert.equal(h.byteSize, 4);
  });
});
