// Envoy-specific behaviour the stand-in reproduces (docs/proxy-wasm-host.md §4.4, §5, §6.4, §7.2, §7.5): map availability per
// phase, body rewriting, the auth-deny pattern, implicit route-cache clearing (old Envoy) and WASI on the test clock.
import { strict as assert } from "node:assert";
import { ManualClock } from "../../tools/standin/clock.js";
import { LAYOUT, watBytes, watModule } from "./fixtures/wat-module.js";
import { serializePairs } from "../../tools/standin/pairs.js";
import { StandIn } from "../../tools/standin/stand-in.js";

const u32s = (vm: { readU32(p: number): number }, ...at: number[]): number[] => at.map((a) => vm.readU32(a));
const text = (vm: { readU32(p: number): number; readMemory(p: number, n: number): Uint8Array }, ptrAt: number): string =>
  Buffer.from(vm.readMemory(vm.readU32(ptrAt), vm.readU32(ptrAt + 4))).toString();

describe("stand-in Envoy semantics", function () {
  this.timeout(60_000);

  it("drops request headers after on_request_headers continues and serves them read-only again in on_log", async () => {
    const body = `
      (data (i32.const 3000) "request\\00path")
      (data (i32.const 3100) ":path")
      (data (i32.const 3200) "x-l")
      (data (i32.const 3300) ":status")
      (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
        (i32.store (i32.const 200) (call $proxy_get_property (i32.const 3000) (i32.const 12) (i32.const 64) (i32.const 68)))
        (i32.store (i32.const 204) (call $proxy_get_header_map_value (i32.const 0) (i32.const 3100) (i32.const 5) (i32.const 64) (i32.const 68)))
        (i32.const 0))
      (func (export "proxy_on_log") (param i32)
        (i32.store (i32.const 208) (call $proxy_get_property (i32.const 3000) (i32.const 12) (i32.const 72) (i32.const 76)))
        (i32.store (i32.const 212) (call $proxy_get_header_map_value (i32.const 0) (i32.const 3100) (i32.const 5) (i32.const 80) (i32.const 84)))
        (i32.store (i32.const 216) (call $proxy_add_header_map_value (i32.const 0) (i32.const 3200) (i32.const 3) (i32.const 3200) (i32.const 3)))
        (i32.store (i32.const 220) (call $proxy_get_header_map_value (i32.const 2) (i32.const 3300) (i32.const 7) (i32.const 88) (i32.const 92))))`;
    const wasm = await watModule({ env: ["proxy_get_property", "proxy_get_header_map_value", "proxy_add_header_map_value"], body });
    const p = await new StandIn().loadPlugin({ wasm, rootId: "phase" });
    await p.worker(0).runStream({ path: "/p", upstream: () => ({ status: 200 }) });
    const vm = p.worker(0).vm;
    assert.deepEqual(u32s(vm, 200, 204), [1, 2], "on_response_headers: request.path NotFound, map 0 BadArgument");
    assert.deepEqual(u32s(vm, 208, 212, 216, 220), [0, 0, 2, 0], "on_log: readable, not writable");
    assert.equal(text(vm, 72), "/p");
    assert.equal(text(vm, 80), "/p");
    assert.equal(text(vm, 88), "200");
  });

  it("lets on_request_body rewrite its chunk (start 0, size = length replaces it) and refuses writes outside body callbacks", async () => {
    const body = `
      (data (i32.const 3000) "XY")
      (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
        (i32.store (i32.const 200) (call $proxy_set_buffer_bytes (i32.const 0) (i32.const 0) (local.get 1) (i32.const 3000) (i32.const 2)))
        (i32.const 0))
      (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
        (i32.store (i32.const 204) (call $proxy_set_buffer_bytes (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 3000) (i32.const 2)))
        (i32.const 0))`;
    const wasm = await watModule({ env: ["proxy_set_buffer_bytes"], body });
    const p = await new StandIn().loadPlugin({ wasm, rootId: "body" });
    const res = await p.worker(0).runStream({ method: "POST", body: "original" });
    assert.equal(Buffer.from(res.upstreamRequest!.body).toString(), "XY");
    assert.deepEqual(u32s(p.worker(0).vm, 200, 204), [0, 2]);
  });

  it("answers the auth-deny pattern: a local reply sent from on_http_call_response under the stream's effective context", async () => {
    const callHeaders = serializePairs([[":method", "GET"], [":path", "/allow"], [":authority", "authz"]]);
    const body = `
      (global $stream (mut i32) (i32.const 0))
      (data (i32.const 3000) "authz")
      (data (i32.const 3100) "${watBytes(callHeaders)}")
      (data (i32.const 3400) "forbidden")
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (global.set $stream (local.get 0))
        (drop (call $proxy_http_call (i32.const 3000) (i32.const 5) (i32.const 3100) (i32.const ${callHeaders.byteLength})
          (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1000) (i32.const 64)))
        (i32.const 1))
      (func (export "proxy_on_http_call_response") (param i32 i32 i32 i32 i32)
        (drop (call $proxy_set_effective_context (global.get $stream)))
        (drop (call $proxy_send_local_response (i32.const 403) (i32.const 3400) (i32.const 9) (i32.const 3400) (i32.const 9)
          (i32.const 0) (i32.const 0) (i32.const -1))))`;
    const wasm = await watModule({ env: ["proxy_http_call", "proxy_set_effective_context", "proxy_send_local_response"], body });
    const p = await new StandIn().loadPlugin({ wasm, rootId: "deny", clusters: { authz: { handler: () => ({ status: 403 }) } } });
    const res = await p.worker(0).runStream({ upstream: () => assert.fail("upstream must not be contacted") });
    assert.equal(res.responseStatus, 403);
    assert.equal(res.responseBodyText, "forbidden");
    assert.deepEqual(res.logs.map((l) => l.message), ["context_create", "response_headers", "response_body", "log", "done", "delete"]);
  });

  it("pauses the response on status 1 from on_response_headers until proxy_continue_stream(Response)", async () => {
    const wasm = await watModule({ trampolines: ["proxy_continue_stream"],
      body: `(func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (i32.const 1))` });
    const p = await new StandIn().loadPlugin({ wasm, rootId: "rpause" });
    const s = p.worker(0).startStream({ upstream: () => ({ status: 200, body: "r" }) });
    s.start();
    await new Promise((r) => setImmediate(r));
    assert.equal(s.encodingStoppedAt, 0);
    assert.equal(s.isComplete, false);
    const vm = p.worker(0).vm;
    assert.equal(vm.callExport("t_proxy_continue_stream", vm.streamContextIds()[0]!, 1), 0);
    const res = await s.completion;
    assert.equal(res.responseBodyText, "r");
    assert.deepEqual(res.logs.map((l) => l.message), ["context_create", "request_headers", "response_body", "log", "done", "delete"]);
  });

  it("clears the route cache on request-header mutation only with old Envoy's implicit clearing", async () => {
    const wasm = await watModule({ trampolines: ["proxy_add_header_map_value"],
      body: `(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 1))` });
    for (const [implicit, expected] of [[false, 0], [true, 1]] as const) {
      const p = await new StandIn({ implicitRouteCacheClear: implicit }).loadPlugin({ wasm, rootId: "rc", name: "router-plugin" });
      const s = p.worker(0).startStream({});
      s.sendRequestHeaders();
      const vm = p.worker(0).vm;
      vm.writeMemory(LAYOUT.scratch, Buffer.from("x-route"));
      vm.writeMemory(LAYOUT.scratch + 16, Buffer.from("v2"));
      assert.equal(vm.callExport("t_proxy_add_header_map_value", vm.streamContextIds()[0]!, 0, LAYOUT.scratch, 7, LAYOUT.scratch + 16, 2), 0);
      assert.equal(s.info.routeCacheClears.length, expected);
      if (expected) assert.deepEqual([s.info.routeCacheClears[0]!.via, s.info.routeCacheClears[0]!.headers["x-route"]], ["implicit", "v2"]);
    }
  });

  it("serves WASI clock_time_get from the stand-in clock and logs fd_write output", async () => {
    const clock = new ManualClock(Date.UTC(2030, 0, 1));
    const wasm = await watModule({
      rawImports: `(import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
                   (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))`,
      body: `(func (export "now") (param i32 i32) (result i32) (call $clock (local.get 0) (i64.const 1) (local.get 1)))
             (func (export "write") (param i32 i32 i32 i32) (result i32) (call $fd_write (local.get 0) (local.get 1) (local.get 2) (local.get 3)))` });
    const host = new StandIn({ clock });
    const p = await host.loadPlugin({ wasm, rootId: "wasi" });
    const vm = p.worker(0).vm;
    const read64 = (at: number): bigint => Buffer.from(vm.readMemory(at, 8)).readBigUInt64LE();
    assert.equal(vm.callExport("now", vm.rootContextId, 0, 200), 0);
    assert.equal(read64(200), BigInt(Date.UTC(2030, 0, 1)) * 1_000_000n);
    assert.equal(vm.callExport("now", vm.rootContextId, 1, 208), 0);
    const mono = read64(208);
    clock.advance(1500);
    assert.equal(vm.callExport("now", vm.rootContextId, 1, 208), 0);
    assert.equal(read64(208) - mono, 1_500_000_000n);
    assert.equal(vm.callExport("now", vm.rootContextId, 7, 208), 58);
    vm.writeMemory(3000, Buffer.from("hello\n"));
    vm.writeMemory(256, new Uint8Array(new Uint32Array([3000, 6]).buffer));
    assert.equal(vm.callExport("write", vm.rootContextId, 2, 256, 1, 264), 0);
    assert.equal(vm.readU32(264), 6);
    assert.deepEqual(host.logsMatching("hello").map((l) => [l.level, l.message]), [["error", "hello"]]);
    assert.equal(vm.callExport("write", vm.rootContextId, 3, 256, 1, 264), 8);
  });
});
