// The one Envoy resolver: ENVOY_BIN, then PATH, then the pinned wheel in .envoy/; the version must be
// 1.40.x; a missing Envoy is a skip with the reason, except under CI=true where it is a failure.
import { strict as assert } from "node:assert";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireEnvoy } from "../../tools/envoy/harness.js";
import { EnvoyUnavailable, ENVOY_VERSION, envoyVersion, resolveEnvoy } from "../../tools/envoy/resolve.js";

describe("Envoy resolver (tools/envoy/resolve.ts)", function () {
  this.timeout(30_000);
  let dir: string;
  const fake = (name: string, version: string): string => {
    const file = join(dir, name);
    writeFileSync(file, `#!/bin/sh\necho "${file}  version: 0123456789abcdef0123456789abcdef01234567/${version}/Clean/RELEASE/BoringSSL"\n`);
    chmodSync(file, 0o755);
    return file;
  };
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "meshward-resolve-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("pins 1.40.0", function () {
    assert.equal(ENVOY_VERSION, "1.40.0");
  });

  it("takes ENVOY_BIN first and reads the version from envoy --version", function () {
    const bin = fake("envoy-a", "1.40.3");
    const onPath = fake("envoy", "1.40.1");
    assert.deepEqual(resolveEnvoy({ env: { ENVOY_BIN: bin, PATH: dir } }), { bin, version: "1.40.3", source: "ENVOY_BIN" });
    assert.deepEqual(resolveEnvoy({ env: { PATH: `/nonexistent:${dir}` } }), { bin: onPath, version: "1.40.1", source: "PATH" });
  });

  it("refuses another Envoy version instead of falling back", function () {
    const bin = fake("envoy-old", "1.39.2");
    assert.throws(() => resolveEnvoy({ env: { ENVOY_BIN: bin } }), (e: Error) => e instanceof EnvoyUnavailable && /is Envoy 1\.39\.2; meshward is proven against 1\.40\.0/.test(e.message));
  });

  it("says why when ENVOY_BIN is not executable or prints no version", function () {
    assert.throws(() => resolveEnvoy({ env: { ENVOY_BIN: join(dir, "missing") } }), /ENVOY_BIN=.*missing is not an executable file/);
    const mute = join(dir, "mute");
    writeFileSync(mute, "#!/bin/sh\nexit 3\n");
    chmodSync(mute, 0o755);
    assert.throws(() => envoyVersion(mute), /did not print an Envoy version \(exit 3\)/);
  });

  it("resolves the Envoy this test run uses to 1.40.x", function () {
    const bin = requireEnvoy(this);
    assert.match(envoyVersion(bin), /^1\.40\.\d+$/);
  });

  it("requireEnvoy: a skip with the reason normally, a failure under CI=true", function () {
    const saved = { ci: process.env["CI"], missing: process.env["MESHWARD_ENVOY_UNAVAILABLE"] };
    let skipped = false;
    const ctx = { skip: () => { skipped = true; throw new Error("skipped"); } } as unknown as Mocha.Context;
    try {
      process.env["MESHWARD_ENVOY_UNAVAILABLE"] = "no python3 with pip";
      delete process.env["CI"];
      assert.throws(() => requireEnvoy(ctx), /skipped/);
      assert.ok(skipped);
      process.env["CI"] = "true";
      assert.throws(() => requireEnvoy(ctx), /real Envoy required under CI=true: no python3 with pip/);
    } finally {
      if (saved.ci === undefined) delete process.env["CI"];
      else process.env["CI"] = saved.ci;
      if (saved.missing === undefined) delete process.env["MESHWARD_ENVOY_UNAVAILABLE"];
      else process.env["MESHWARD_ENVOY_UNAVAILABLE"] = saved.missing;
    }
  });
});
