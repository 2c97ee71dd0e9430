// `check-config` as a command: exit codes, one line per problem naming file and path, and the
// default paths (examples/ and envoy/) when none are given.
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", "tools/check-config/cli.ts", ...args], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("check-config command", function () {
  it("exits 0 on the shipped examples/ and envoy/ (the default paths), printing a summary", function () {
    const r = run();
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^check-config: \d+ files, 0 errors, \d+ warnings$/m);
  });

  it("exits 1 and prints each problem as `file: path: message` on stderr, including paths that do not exist", function () {
    const r = run("test/envoy/fixtures/envoy/bad-enum.yaml", "no/such/dir", "test/envoy/fixtures/cross/provider-unknown");
    assert.equal(r.status, 1);
    assert.deepEqual(r.stderr.trim().split("\n"), [
      "no/such/dir: no such file or directory",
      'test/envoy/fixtures/envoy/bad-enum.yaml: static_resources.clusters[0].lb_policy: invalid enum value "LEAST_REQUESTS" for envoy.config.cluster.v3.Cluster.LbPolicy (expected one of ROUND_ROBIN, LEAST_REQUEST, RING_HASH, RANDOM, MAGLEV, CLUSTER_PROVIDED, LOAD_BALANCING_POLICY_CONFIG)',
      'test/envoy/fixtures/cross/provider-unknown/policy.yaml: spec.provider.name: provider "meshward-authn" is not in meshConfig.extensionProviders (known: meshward-authz)',
      "check-config: 3 files, 3 errors, 0 warnings",
    ]);
  });

  it("exits 2 with usage on an unknown flag", function () {
    const r = run("--strictest");
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown flag --strictest/);
    assert.match(r.stderr, /usage: check-config/);
  });
});
