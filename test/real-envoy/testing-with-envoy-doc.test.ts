// The complete mocha example in docs/testing-with-envoy.md runs as written: its code block is copied
// into a temporary test file at the path the page names (same folder depth) and run with mocha.
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { requireEnvoy } from "../../tools/envoy/harness.js";
import { ROOT } from "../../tools/envoy/resolve.js";

describe("real Envoy: the example in docs/testing-with-envoy.md", function () {
  this.timeout(120_000);
  let bin: string;
  before(function () {
    bin = requireEnvoy(this);
  });

  it("passes as written, three tests", function () {
    const doc = readFileSync(join(ROOT, "docs/testing-with-envoy.md"), "utf8");
    const m = /<!-- example: (test\/[\w-]+\/[\w.-]+\.test\.ts) -->\n```ts\n([\s\S]*?)\n```/.exec(doc);
    assert.ok(m, "the page has an example block with its path");
    const [, path, code] = m as unknown as [string, string, string];
    // A dot-folder of the same depth: mocha's default glob (test/**/*.test.ts) never picks it up.
    const dir = join(ROOT, "test", `.doc-example-${process.pid}`);
    const file = join(dir, path.split("/").pop() as string);
    assert.equal(dirname(path).split("/").length, 2, "the example sits two folders below the root, as the copy does");
    mkdirSync(dir, { recursive: true });
    try {
      writeFileSync(file, code);
      const r = spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "node_modules/mocha/bin/mocha.js"), "--no-config", "--extension", "ts", "--require", "tools/envoy/mocha-setup.ts", "--reporter", "dot", "--exit", file], {
        cwd: ROOT,
        encoding: "utf8",
        timeout: 110_000,
        env: { ...process.env, ENVOY_BIN: bin, CI: "true" },
      });
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /3 passing/);
      assert.doesNotMatch(r.stdout, /pending|failing/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
