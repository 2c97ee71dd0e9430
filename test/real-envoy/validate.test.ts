// Every shipped Envoy bootstrap (envoy/local/*.yaml and the gateway bootstrap embedded in the envoy/k8s
// ConfigMap) passes `envoy --mode validate` of Envoy 1.40 without a warning, and check-config runs
// Envoy's validation itself when Envoy is installed.
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { requireEnvoy } from "../../tools/envoy/harness.js";
import { ROOT } from "../../tools/envoy/resolve.js";
import { localiseWasmPaths, validateBootstrap } from "../../tools/envoy/validate.js";

function shippedBootstraps(): { name: string; value: unknown }[] {
  const out: { name: string; value: unknown }[] = [];
  for (const f of readdirSync(join(ROOT, "envoy/local")).filter((n) => n.endsWith(".yaml")).sort()) {
    const doc = parseYaml(readFileSync(join(ROOT, "envoy/local", f), "utf8")) as Record<string, unknown>;
    if ("static_resources" in doc) out.push({ name: `envoy/local/${f}`, value: doc });
  }
  const cm = parseYaml(readFileSync(join(ROOT, "envoy/k8s/gateway/envoy-configmap.yaml"), "utf8")) as { data: Record<string, string> };
  out.push({ name: "envoy/k8s/gateway/envoy-configmap.yaml data.envoy.yaml", value: parseYaml(cm.data["envoy.yaml"] as string) });
  return out;
}

describe("real Envoy: every shipped bootstrap passes envoy --mode validate", function () {
  this.timeout(120_000);
  let bin: string;
  before(function () {
    bin = requireEnvoy(this);
  });

  const bootstraps = shippedBootstraps();
  it("finds the edge and sidecar bootstraps and the gateway ConfigMap", function () {
    assert.deepEqual(bootstraps.map((b) => b.name), ["envoy/local/edge.yaml", "envoy/local/sidecar.yaml", "envoy/k8s/gateway/envoy-configmap.yaml data.envoy.yaml"]);
  });

  for (const b of bootstraps) {
    it(`${b.name}: OK, with no error and no deprecation warning`, async function () {
      const v = await validateBootstrap(bin, localiseWasmPaths(b.value));
      assert.deepEqual(v.errors, []);
      assert.ok(v.ok);
      assert.deepEqual(v.warnings, []);
    });
  }

  it("rejects a bootstrap whose plugin configuration the filter refuses (Envoy loads and configures the Wasm VM)", async function () {
    const bad = parseYaml(readFileSync(join(ROOT, "test/envoy/fixtures/envoy/plugin-config-invalid.yaml"), "utf8"));
    const v = await validateBootstrap(bin, bad);
    assert.equal(v.ok, false);
    assert.ok(v.errors.some((l) => /Unable to create Wasm plugin rate-limit-edge/.test(l)), v.errors.join("\n"));
  });

  it("npm run check-config validates the shipped bootstraps with Envoy too", function () {
    const r = spawnSync(process.execPath, ["--import", "tsx", "tools/check-config/cli.ts", "envoy/"], { cwd: ROOT, encoding: "utf8", timeout: 90_000, env: { ...process.env, ENVOY_BIN: bin } });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^check-config: 3 Envoy bootstraps validated by Envoy 1\.40\.\d+ \(envoy --mode validate\)$/m);
    assert.doesNotMatch(r.stderr, /envoy --mode validate/);
  });

  it("check-config reports Envoy's own error for a bootstrap the offline checks accept", function () {
    // The offline proto check knows field names and types, not Envoy's constraint annotations
    // (protoc-gen-validate): a health check interval of 0s passes it, Envoy refuses it.
    const doc = parseYaml(readFileSync(join(ROOT, "envoy/local/edge.yaml"), "utf8")) as { static_resources: { clusters: { health_checks: { interval: string }[] }[] } };
    doc.static_resources.clusters[0]!.health_checks[0]!.interval = "0s";
    const dir = mkdtempSync(join(tmpdir(), "meshward-check-config-"));
    try {
      const file = join(dir, "edge-interval-0s.yaml");
      writeFileSync(file, stringifyYaml(doc));
      const r = spawnSync(process.execPath, ["--import", "tsx", "tools/check-config/cli.ts", file], { cwd: ROOT, encoding: "utf8", timeout: 90_000, env: { ...process.env, ENVOY_BIN: bin } });
      assert.equal(r.status, 1, r.stdout);
      assert.match(r.stderr, /edge-interval-0s\.yaml: envoy --mode validate: error initializing configuration '<bootstrap>': Proto constraint validation failed \(.*HealthCheckValidationError\.Interval: value must be greater than 0s\)/);
      assert.match(r.stderr, /1 error/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
