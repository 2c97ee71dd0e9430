// The real proxy-runtime 0.1.8 SDK (filters/build/noop.wasm) under the stand-in: loads unchanged, runs on several
// VMs in Envoy's callback order, and shows the SDK defects of docs/proxy-wasm-host.md §8 exactly as Envoy would.
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { PluginLoadError, REPO_ROOT, StandIn } from "../../tools/standin/stand-in.js";

const NOOP = "filters/build/noop.wasm";

describe("stand-in with the proxy-runtime SDK (noop.wasm)", function () {
  this.timeout(120_000);
  before(() => {
    if (!existsSync(join(REPO_ROOT, NOOP))) execFileSync(process.execPath, ["filters/build.mjs", "noop"], { cwd: REPO_ROOT, stdio: "ignore" });
  });

  it("loads the artifact unchanged into 4 VMs and serves streams on each, logging on_log before on_done and on_delete", async () => {
    const host = new StandIn();
    const p = await host.loadPlugin({ wasm: NOOP, rootId: "noop", configuration: "{}", workers: 4 });
    for (let i = 0; i < 4; i++) {
      const res = await p.worker(i).runStream({ path: `/w${i}`, upstream: (req) => ({ status: 200, body: req.headers.get(":path") }) });
      assert.equal(res.responseBodyText, `/w${i}`);
      const order = res.logs.map((l) => l.message).filter((m) => /: on(Log|Done|Delete)\(\)$/.test(m)).map((m) => m.replace(/^.*: /, ""));
      assert.deepEqual(order, ["onLog()", "onDone()", "onDelete()"]);
    }
    assert.ok(host.logsMatching("Updating this.configuration={}").length >= 4);
  });

  it("reproduces the onConfigure size-pointer defect: an empty configuration traps, rejecting the plugin (kept transparent with fail_open only in the old profile)", async () => {
    await assert.rejects(new StandIn().loadPlugin({ wasm: NOOP, rootId: "noop", configuration: "" }),
      (e: unknown) => e instanceof PluginLoadError && e.code === "ERR_WASM_START" && /proxy_on_configure trapped/.test(e.message));
    // Envoy 1.40 refuses it with fail_open too (conformance corpus, suite fx-trap-configure-open).
    await assert.rejects(new StandIn().loadPlugin({ wasm: NOOP, rootId: "noop", configuration: "", failOpen: true }),
      (e: unknown) => e instanceof PluginLoadError && e.code === "ERR_WASM_START" && /Unable to create Wasm plugin noop/.test(e.message));
    const open = await new StandIn({ profile: "old" }).loadPlugin({ wasm: NOOP, rootId: "noop", configuration: "", failOpen: true });
    assert.match(open.loadError ?? "", /proxy_on_configure trapped/);
    assert.equal((await open.worker(0).runStream({ upstream: () => ({ status: 204 }) })).responseStatus, 204);
  });

  it("reproduces the onConfigure defect's stray write: the host writes the length at address = configuration size", async () => {
    const config = JSON.stringify({ pad: "x".repeat(300) });
    const p = await new StandIn().loadPlugin({ wasm: NOOP, rootId: "noop", configuration: config, canary: false });
    assert.equal(p.worker(0).vm.readU32(config.length), config.length);
  });

  it("needs plugin_root_id to match the SDK's registered root id, as in Envoy", async () => {
    await assert.rejects(new StandIn().loadPlugin({ wasm: NOOP, rootId: "other", configuration: "{}" }),
      (e: unknown) => e instanceof PluginLoadError && /proxy_on_context_create trapped/.test(e.message));
  });
});
