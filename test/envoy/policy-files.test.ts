// check-config validates policy files with the server's own policy loader, and adds the warnings
// the loader leaves to it (a JWT provider without audiences).
import { strict as assert } from "node:assert";
import { fileURLToPath } from "node:url";
import { checkPaths } from "../../tools/check-config/check-files.js";
import { formatProblem } from "../../tools/check-config/problem.js";

const repo = (p: string): string => fileURLToPath(new URL(`../../${p}`, import.meta.url));
const lines = (path: string): string[] => checkPaths([repo(path)]).problems.map((p) => formatProblem({ ...p, file: p.file.slice(p.file.lastIndexOf("/") + 1) }));

describe("policy files in check-config", function () {
  it("accepts the shipped envoy/local/policy.yaml and examples/ without problems", function () {
    assert.deepEqual(lines("envoy/local/policy.yaml"), []);
    assert.deepEqual(lines("examples"), []);
  });

  it("warns when a JWT provider checks no audience", function () {
    assert.deepEqual(lines("test/envoy/fixtures/policy/no-audience.yaml"), [
      "no-audience.yaml: spec.providers.jwt[0].audiences: warning: JWT provider 'corp' has no audiences: tokens minted for any audience of this issuer are accepted",
    ]);
  });

  it("reports the policy loader's file, path and problem for an invalid policy", function () {
    assert.deepEqual(lines("test/envoy/fixtures/policy/unknown-key.yaml"), ["unknown-key.yaml: spec.rules[0].matches: unknown key"]);
  });
});
