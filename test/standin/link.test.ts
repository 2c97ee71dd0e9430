// Link check (docs/proxy-wasm-host.md §4, §7.5): imports Envoy does not provide, or provides with another signature, fail the load.
import { strict as assert } from "node:assert";
import { watModule } from "./fixtures/wat-module.js";
import { PluginLoadError, StandIn } from "../../tools/standin/stand-in.js";
import { inspectModule } from "../../tools/standin/wasm-module.js";

async function loadError(bytes: Uint8Array, host = new StandIn()): Promise<PluginLoadError> {
  try {
    await host.loadPlugin({ wasm: bytes, rootId: "t" });
  } catch (err) {
    assert.ok(err instanceof PluginLoadError, String(err));
    return err;
  }
  assert.fail("the plugin loaded");
}

describe("stand-in link check", () => {
  it("rejects a module importing proxy_clear_route_cache (ABI 0.1.0 only) as a missing import", async () => {
    const bytes = await watModule({ rawImports: `(import "env" "proxy_clear_route_cache" (func $crc (result i32)))`,
      body: `(func (export "use_crc") (result i32) (call $crc))` });
    assert.ok(inspectModule(bytes).imports.some((i) => i.name === "proxy_clear_route_cache"));
    const err = await loadError(bytes);
    assert.equal(err.code, "ERR_WASM_LINK");
    assert.match(err.message, /missing import: env\.proxy_clear_route_cache/);
    assert.match(err.message, /fail closed/);
  });

  it("rejects the old 10-argument proxy_grpc_call under current Envoy but accepts it under the old profile", async () => {
    const bytes = await watModule({
      rawImports: `(import "env" "proxy_grpc_call" (func $g (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))`,
      body: `(func (export "use_g") (result i32) (call $g (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))`,
    });
    const err = await loadError(bytes);
    assert.match(err.message, /import type mismatch: env\.proxy_grpc_call/);
    const old = await new StandIn({ profile: "old" }).loadPlugin({ wasm: bytes, rootId: "t" });
    assert.equal(old.worker(0).failed, false);
  });

  it("rejects an import with a different signature and imports Envoy never provides (env.abort)", async () => {
    const mismatch = await watModule({ env: [], rawImports: `(import "env" "proxy_done" (func $d (param i32) (result i32)))`,
      body: `(func (export "use_d") (result i32) (call $d (i32.const 1)))` });
    assert.match((await loadError(mismatch)).message, /import type mismatch: env\.proxy_done/);
    const abort = await watModule({ rawImports: `(import "env" "abort" (func $a (param i32 i32 i32 i32)))`,
      body: `(func (export "use_a") (call $a (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))` });
    assert.match((await loadError(abort)).message, /missing import: env\.abort/);
  });

  it("offers proxy_get_log_level only to ABI 0.2.1 modules", async () => {
    const body = `(func (export "use_l") (result i32) (call $proxy_get_log_level (i32.const 64)))`;
    const v020 = await watModule({ abi: "0_2_0", rawImports: `(import "env" "proxy_get_log_level" (func $proxy_get_log_level (param i32) (result i32)))`, body });
    assert.match((await loadError(v020)).message, /missing import: env\.proxy_get_log_level/);
    const v021 = await watModule({ abi: "0_2_1", env: ["proxy_get_log_level"], body });
    const p = await new StandIn({ logLevel: "warn" }).loadPlugin({ wasm: v021, rootId: "t" });
    const vm = p.worker(0).vm;
    assert.equal(vm.callExport("use_l", vm.rootContextId), 0);
    assert.equal(vm.readU32(64), 3);
  });

  it("provides WASI under both wasi_snapshot_preview1 and wasi_unstable with Envoy's signatures", async () => {
    const bytes = await watModule({ rawImports: `
      (import "wasi_unstable" "proc_exit" (func $exit (param i32)))
      (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))`,
    body: `(func (export "use_w") (result i32) (call $exit (i32.const 1)) (call $clock (i32.const 0) (i64.const 0) (i32.const 64)))
           (func (export "use_fd") (result i32) (call $fd_write (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 64)))` });
    const p = await new StandIn().loadPlugin({ wasm: bytes, rootId: "t" });
    assert.equal(p.worker(0).failed, false);
    const bad = await watModule({ rawImports: `(import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i32 i32) (result i32)))`,
      body: `(func (export "use_w") (result i32) (call $clock (i32.const 0) (i32.const 0) (i32.const 64)))` });
    assert.match((await loadError(bad)).message, /import type mismatch: wasi_snapshot_preview1\.clock_time_get/);
  });

  it("with fail_open still refuses a plugin that failed to link (Envoy 1.40); the old profile keeps it, transparent", async () => {
    const bytes = await watModule({ rawImports: `(import "env" "proxy_clear_route_cache" (func $crc (result i32)))`,
      body: `(func (export "use_crc") (result i32) (call $crc))` });
    await assert.rejects(new StandIn().loadPlugin({ wasm: bytes, rootId: "t", failOpen: true }),
      (e: unknown) => e instanceof PluginLoadError && e.code === "ERR_WASM_LINK" && /missing import/.test(e.message));
    const p = await new StandIn({ profile: "old" }).loadPlugin({ wasm: bytes, rootId: "t", failOpen: true });
    assert.match(p.loadError ?? "", /missing import/);
    const res = await p.worker(0).runStream({ upstream: () => ({ status: 204 }) });
    assert.equal(res.responseStatus, 204);
    assert.equal(res.localReply, undefined);
  });
});
