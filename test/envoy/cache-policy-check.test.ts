// check-config on a policy's decision cache: a rule kept out of the cache says why, a cache without
// its HMAC secret is refused by the policy loader.
import { strict as assert } from "node:assert";
import { fileURLToPath } from "node:url";
import { checkPaths } from "../../tools/check-config/check-files.js";
import { formatProblem } from "../../tools/check-config/problem.js";

const repo = (p: string): string => fileURLToPath(new URL(`../../${p}`, import.meta.url));
const lines = (path: string): string[] => checkPaths([repo(path)]).problems.map((p) => formatProblem({ ...p, file: p.file.slice(p.file.lastIndexOf("/") + 1) }));

describe("check-config: the decision cache of a policy", function () {
  it("explains which rules are not cacheable and why", function () {
    assert.deepEqual(lines("test/envoy/fixtures/policy/cache.yaml"), [
      "cache.yaml: spec.cache.secret: warning: secret not readable here: /policy: spec.cache.secret.env: environment variable MESHWARD_CHECK_CONFIG_CACHE_SECRET_UNSET is not set".replace("/policy", repo("test/envoy/fixtures/policy/cache.yaml")),
      "cache.yaml: spec.rules[1]: warning: rule 'office-hours' is not cacheable (CEL reads `now` (time-dependent)): requests it matches always go to authz-server",
      "cache.yaml: spec.rules[2]: warning: rule 'volatile' is not cacheable (the rule says cache: false): requests it matches always go to authz-server",
    ]);
  });

  it("refuses spec.cache.enabled without a secret", function () {
    assert.deepEqual(lines("test/envoy/fixtures/policy/cache-no-secret.yaml"), [
      "cache-no-secret.yaml: spec.cache: 'enabled: true' needs 'secret' ({ file } or { env }), the HMAC key shared with the authz-cache filter",
    ]);
  });
});
