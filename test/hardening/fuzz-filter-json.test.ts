// Differential property: the filters' strict JSON reader (filters/lib/json.ts, which parses every
// plugin configuration inside Envoy) against JSON.parse, on random JSON texts and on random byte-level
// edits of them. It must never trap, accept exactly what JSON.parse accepts (except its documented
// extra refusals: duplicate keys, nesting deeper than 64), and read the same value. Numbers are
// compared exactly up to 1e21 (configuration values are far smaller); beyond, the reader's f64 parsing
// and AssemblyScript 0.17's number printing are not exact (9.077473970503561e+39 reads back as …e+37),
// so there only "a number" is checked.
import assert from "node:assert/strict";
import fc from "fast-check";
import { loadAsLib, type AsLib } from "../../tools/testing/as-lib.js";
import { fuzzRuns, fuzzSeed } from "./helpers/fuzz.js";

const DOCUMENTED_REFUSALS = /duplicate key|nesting deeper than 64|configuration is empty/;

describe("fuzz: the filters' JSON reader agrees with JSON.parse", function () {
  this.timeout(120_000);
  let lib: AsLib;
  before(async () => {
    lib = await loadAsLib();
  });

  function compare(text: string): void {
    let expected: unknown;
    let jsOk = true;
    try {
      expected = JSON.parse(text);
    } catch {
      jsOk = false;
    }
    const out = lib.jsonRoundTrip(text); // a trap would throw a WebAssembly.RuntimeError here
    const asOk = !out.startsWith("error: ");
    if (asOk) {
      assert.ok(jsOk, `the filter accepts text JSON.parse rejects: ${JSON.stringify(text)} → ${out}`);
      const read: unknown = JSON.parse(out === "Infinity" || out === "-Infinity" ? `"${out}"` : out.replace(/(?<=[[:,])-?Infinity(?=[\],}])/g, '"$&"'));
      sameValue(read, expected, JSON.stringify(text));
    } else if (jsOk) {
      assert.match(out, DOCUMENTED_REFUSALS, `the filter rejects valid JSON ${JSON.stringify(text)}: ${out}`);
    }
  }

  function sameValue(got: unknown, want: unknown, where: string): void {
    if (typeof want === "number") {
      if (!Number.isFinite(want)) return assert.equal(got, String(want), `${where}: non-finite number`);
      assert.equal(typeof got, "number", `${where}: expected a number`);
      if (Math.abs(want) >= 1e21) return;
      assert.ok(got === want || Math.abs((got as number) - want) <= Math.abs(want) * 1e-15, `${where}: ${got} ≠ ${want}`);
    } else if (Array.isArray(want)) {
      assert.ok(Array.isArray(got) && got.length === want.length, `${where}: array shape`);
      want.forEach((w, i) => sameValue((got as unknown[])[i], w, where));
    } else if (want !== null && typeof want === "object") {
      assert.ok(got !== null && typeof got === "object" && !Array.isArray(got), `${where}: object`);
      assert.deepEqual(Object.keys(got as object), Object.keys(want), `${where}: keys`);
      for (const [k, w] of Object.entries(want)) sameValue((got as Record<string, unknown>)[k], w, where);
    } else {
      assert.equal(got, want, where);
    }
  }

  const finite = fc.letrec((tie) => ({
    v: fc.oneof(
      { depthSize: "small" },
      fc.constantFrom<unknown>(null, true, false, 0, -1, 0.5, 1e21, 1e-7, -2.5e-3, 123456789012, ""),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.string({ maxLength: 8, unit: "binary" }),
      fc.array(tie("v"), { maxLength: 4 }),
      fc.dictionary(fc.string({ maxLength: 4 }), tie("v"), { maxKeys: 4 }),
    ),
  })).v;

  it("reads random JSON values exactly as JSON.parse does", () => {
    fc.assert(fc.property(finite, fc.boolean(), (v, pretty) => compare(JSON.stringify(v, null, pretty ? 2 : undefined) ?? "null")), { numRuns: fuzzRuns(1500), ...fuzzSeed() });
  });

  it("accepts and rejects random edits of JSON texts exactly as JSON.parse does (never traps)", () => {
    const edit = fc.record({ at: fc.nat(), del: fc.nat({ max: 3 }), insert: fc.oneof(fc.string({ maxLength: 3 }), fc.constantFrom("\\", '"', "\\u", "\\ud800", "e", "-", ".", "0", "1e999", ",", ":", "]", "}", "[", "{", "\u0000", " ", "\t", "\n", "\u00a0", "\u2028", "tru", "nul")) });
    fc.assert(
      fc.property(finite, fc.array(edit, { minLength: 1, maxLength: 3 }), (v, edits) => {
        let text = JSON.stringify(v) ?? "null";
        for (const e of edits) {
          const at = e.at % (text.length + 1);
          text = text.slice(0, at) + e.insert + text.slice(at + e.del);
        }
        compare(text);
      }),
      { numRuns: fuzzRuns(3000), ...fuzzSeed() },
    );
  });
});
