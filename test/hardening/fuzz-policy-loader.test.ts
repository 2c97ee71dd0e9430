// Property: the policy loader never crashes. Random mutations of the example policy (deleted keys,
// wrong types, unknown keys, hostile globs/CIDRs/CEL, odd numbers) and random edits of its YAML text
// either compile or throw PolicyInvalid naming the file — and, for a well-formed mapping, the path
// inside it. Never a TypeError, RangeError or a CEL/YAML library error escaping.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { parse as parseYaml, stringify as toYaml } from "yaml";
import { PolicyInvalid } from "../../authz-server/src/errors.js";
import { compilePolicyText } from "../../authz-server/src/policy/load-policy.js";
import { fuzzRuns, fuzzSeed } from "./helpers/fuzz.js";

const EXAMPLE_TEXT = readFileSync(new URL("../../examples/policy.yaml", import.meta.url), "utf8");
const EXAMPLE = parseYaml(EXAMPLE_TEXT) as Record<string, unknown>;
const FILE = "fuzz-policy.yaml";

const hostileStrings = [
  "", " ", "*", "**", "/**", "/a/**/b/**", "/a*b*c", "a/b", "/\u0000", "\uFFFF", "x".repeat(300),
  "10.0.0.0/33", "::/129", "10.0.0.0/8", "fd00::/8", "999.1.1.1/8", "1.2.3.4", "/8",
  "1 +", "request.headers[", "identity.claims.x == 1", "now > 0", "true", "''", '"a" in request.headers', "size(request.path) > 0", "a.b.c.d.e", "1/0 == 1", "[1,2,3].all(x, x > 0)",
  "none", "HS256", "RS256", "nOnE", "0s", "-1s", "1e309s", "30s", "1h", "999999999999h",
  "meshward.io/v1", "AuthzPolicy", "deny", "allow", "dryRun", "anonymous", "__proto__", "constructor",
  "https://idp.example.com/", "http://127.0.0.1:1/", "spiffe://cluster.local/ns/a/sa/b", "spiffe://", "orders:*", "*:*",
];
const scalar = fc.oneof(
  fc.constantFrom<unknown>(null, true, false, 0, -1, 1, 1.5, 1e308, -1e308, Number.MAX_SAFE_INTEGER, 2 ** 53 + 1),
  fc.constantFrom(...hostileStrings),
  fc.string({ maxLength: 12 }),
);
const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: "small", withCrossShrink: true }, scalar, fc.array(tie("v"), { maxLength: 3 }), fc.dictionary(fc.constantFrom("name", "match", "paths", "require", "roles", "x", "__proto__", "effect", "when", "allow"), tie("v"), { maxKeys: 3 })),
})).v;

type Mutation = { kind: "delete" | "set" | "unknownKey" | "duplicate"; pick: number; value: unknown };
const mutation: fc.Arbitrary<Mutation> = fc.record({ kind: fc.constantFrom("delete", "set", "set", "unknownKey", "duplicate"), pick: fc.nat(), value });

/** All [container, key] slots of a JSON tree. */
function slots(node: unknown, out: [Record<string, unknown> | unknown[], string | number][] = []): typeof out {
  if (Array.isArray(node)) node.forEach((v, i) => (out.push([node, i]), slots(v, out)));
  else if (node && typeof node === "object") for (const [k, v] of Object.entries(node)) (out.push([node as Record<string, unknown>, k]), slots(v, out));
  return out;
}

function mutate(doc: unknown, muts: readonly Mutation[]): unknown {
  const copy = structuredClone(doc);
  for (const m of muts) {
    const all = slots(copy);
    if (all.length === 0) break;
    const [container, key] = all[m.pick % all.length]!;
    if (m.kind === "delete") {
      if (Array.isArray(container)) container.splice(key as number, 1);
      else delete container[key as string];
    } else if (m.kind === "set") {
      (container as Record<string | number, unknown>)[key] = m.value;
    } else if (m.kind === "unknownKey") {
      const target = (container as Record<string | number, unknown>)[key];
      if (target && typeof target === "object" && !Array.isArray(target)) (target as Record<string, unknown>).bogusKey = m.value;
      else (container as Record<string | number, unknown>)[key] = { bogusKey: m.value };
    } else if (Array.isArray(container)) {
      container.push(structuredClone(container[key as number]));
    }
  }
  return copy;
}

/** Compiles `text`; returns "ok" or the PolicyInvalid, and fails the property on anything else. */
function load(text: string, file = FILE): "ok" | PolicyInvalid {
  try {
    const policy = compilePolicyText(text, file);
    assert.ok(Array.isArray(policy.rules), "a compiled policy has rules");
    return "ok";
  } catch (err) {
    if (!(err instanceof PolicyInvalid)) throw new Error(`loader threw ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`, { cause: err });
    assert.equal(err.file, file);
    assert.ok(err.message.startsWith(`${file}: `), err.message);
    assert.ok(err.problem.length > 0, "names a problem");
    return err;
  }
}

describe("fuzz: the policy loader compiles or names file + path + problem, never crashes", function () {
  this.timeout(120_000);

  it("the unmodified example compiles (baseline)", () => {
    assert.equal(load(EXAMPLE_TEXT), "ok");
  });

  it("structural mutations of the example policy (YAML and JSON) are compiled or rejected with a path", () => {
    let rejected = 0;
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.boolean(), (muts, asJson) => {
        const doc = mutate(EXAMPLE, muts);
        const text = asJson ? JSON.stringify(doc) : toYaml(doc);
        const out = load(text, asJson ? FILE.replace(".yaml", ".json") : FILE);
        if (out !== "ok") {
          rejected++;
          const isMapping = doc !== null && typeof doc === "object" && !Array.isArray(doc);
          if (isMapping) assert.ok(out.path.length > 0 || /apiVersion|kind|spec/.test(out.problem), `no path for a mapping document: ${out.message}`);
        }
      }),
      { numRuns: fuzzRuns(250), ...fuzzSeed() },
    );
    assert.ok(rejected > 0, "the mutations produced invalid documents");
  });

  it("random text edits of the example YAML never crash the loader", () => {
    const edit = fc.record({ at: fc.nat(), del: fc.nat({ max: 8 }), insert: fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom(":", "- ", "\n  ", "{", "[", "&a", "*a", "!!binary", "<<: *a", "\t", "'", '"', "#", "? ", "|")) });
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 5 }), (edits) => {
        let text = EXAMPLE_TEXT;
        for (const e of edits) {
          const at = e.at % (text.length + 1);
          text = text.slice(0, at) + e.insert + text.slice(at + e.del);
        }
        load(text);
      }),
      { numRuns: fuzzRuns(100), ...fuzzSeed() },
    );
  });

  it("arbitrary strings and JSON values never crash the loader", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), value.map((v) => JSON.stringify(v) ?? "null")), (text) => {
        load(text);
        load(text, FILE.replace(".yaml", ".json"));
      }),
      { numRuns: fuzzRuns(400), ...fuzzSeed() },
    );
  });

  it("YAML alias bombs are refused, not expanded without bound", () => {
    const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]", ...Array.from({ length: 9 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}]`)].join("\n");
    const out = load(bomb);
    assert.notEqual(out, "ok");
  });
});
