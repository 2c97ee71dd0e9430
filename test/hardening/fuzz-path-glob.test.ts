// Property: the AssemblyScript path glob (filters/lib, via the lib-test target and
// @assemblyscript/loader) and the policy's TypeScript glob (authz-server/src/policy/glob.ts) agree on
// random paths and whole-segment patterns, where docs/policy.md defines the same semantics:
// `*` = exactly one non-empty segment, `**` = zero or more segments.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { compilePathGlob } from "../../authz-server/src/policy/glob.js";
import { loadAsLib, type AsLib } from "../../tools/testing/as-lib.js";
import { fuzzRuns, fuzzSeed } from "./helpers/fuzz.js";

const literal = fc.constantFrom("a", "b", "ab", "api", "v1", "x.y", "%2F", "-");
const patternSegment = fc.oneof({ weight: 3, arbitrary: literal }, { weight: 2, arbitrary: fc.constant("*") }, { weight: 2, arbitrary: fc.constant("**") });
const pattern = fc.array(patternSegment, { minLength: 1, maxLength: 6 }).map((s) => `/${s.join("/")}`);
const pathSegment = fc.oneof({ weight: 6, arbitrary: literal }, { weight: 1, arbitrary: fc.constant("") });
const path = fc.array(pathSegment, { minLength: 0, maxLength: 8 }).map((s) => `/${s.join("/")}`);

const childScript = fileURLToPath(new URL("./helpers/glob-child.ts", import.meta.url));

describe("fuzz: AssemblyScript and TypeScript path globs agree", function () {
  this.timeout(120_000);
  let lib: AsLib;
  before(async () => {
    lib = await loadAsLib();
  });

  it("agree on random whole-segment patterns and paths (including empty segments and trailing slashes)", () => {
    fc.assert(
      fc.property(pattern, path, (p, target) => {
        assert.equal(lib.checkGlob(p), "", `AS rejects pattern ${p}`);
        const ts = compilePathGlob(p)(target);
        const as = lib.pathMatches("glob", p, target);
        assert.equal(as, ts, `pattern ${p} path ${target}: AS ${as}, TS ${ts}`);
      }),
      { numRuns: fuzzRuns(3000), ...fuzzSeed() },
    );
  });

  it("agree on the documented examples", () => {
    const cases: [string, string, boolean][] = [
      ["/a/*", "/a/b", true],
      ["/a/*", "/a/", false],
      ["/a/*", "/a/b/c", false],
      ["/a/**", "/a", true],
      ["/a/**", "/a/b/c", true],
      ["/**", "/", true],
      ["/a/**/z", "/a/z", true],
      ["/a/**/z", "/a/b/c/z", true],
      ["/a/*/z", "/a/z", false],
    ];
    for (const [p, target, want] of cases) {
      assert.equal(compilePathGlob(p)(target), want, `TS ${p} ${target}`);
      assert.equal(lib.pathMatches("glob", p, target), want, `AS ${p} ${target}`);
    }
  });

  // A policy pattern with several `**` against an attacker's path of thousands of segments (6 KB,
  // well inside the 64 KiB header limit). A backtracking regex takes minutes here; the matcher runs in
  // a child process that is killed after HANG_GUARD_MS, so a regression fails instead of hanging.
  const HANG_GUARD_MS = 10_000;
  for (const [pattern, segments] of [["/**/a/**/a/**/b", 3000], ["/**/a/**/b", 10_000], ["/**/*/**/*/**/*/**/b", 500]] as const) {
    it(`answers ${pattern} against a ${segments}-segment path without catastrophic backtracking (TS in a killable child; AS inline)`, () => {
      const target = `/${Array.from({ length: segments }, () => "a").join("/")}`;
      assert.equal(lib.pathMatches("glob", pattern, target), false);
      const child = spawnSync(process.execPath, ["--import", "tsx", childScript, pattern, "a", String(segments)], { timeout: HANG_GUARD_MS, encoding: "utf8" });
      assert.equal(child.signal, null, `the TypeScript glob was still matching after ${HANG_GUARD_MS} ms (killed)`);
      assert.equal(child.stdout, "false", child.stderr);
    });
  }
});
