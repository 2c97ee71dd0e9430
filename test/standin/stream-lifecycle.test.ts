// HTTP stream callback order and control (docs/proxy-wasm-host.md §6.4, §6.5, §7.6): local replies, pause/resume, body buffering,
// traps under fail_open / fail-closed, ticks on the test clock and shared queues.
import { strict as assert } from "node:assert";
import { ManualClock } from "../../tools/standin/clock.js";
import { LAYOUT, watBytes, watModule } from "./fixtures/wat-module.js";
import { serializePairs } from "../../tools/standin/pairs.js";
import { StandIn } from "../../tools/standin/stand-in.js";

/** Names logged (info) by the fixture callbacks on stream `id`. */
function calls(logs: { message: string; level: string }[]): string[] {
  return logs.filter((l) => l.level === "info").map((l) => l.message);
}
const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("stand-in stream lifecycle", function () {
  this.timeout(60_000);

  it("runs context_create → request_headers → response_headers → response_body → log → done → delete for a GET", async () => {
    const p = await new StandIn().loadPlugin({ wasm: await watModule(), rootId: "seq" });
    const res = await p.worker(0).runStream({ upstream: () => ({ status: 200, body: "hello" }) });
    assert.deepEqual(calls(res.logs), ["context_create", "request_headers", "response_headers", "response_body", "log", "done", "delete"]);
    assert.equal(res.responseBodyText, "hello");
    assert.equal(p.worker(0).vm.streamContextIds().length, 0);
  });

  it("sends a local reply from on_request_headers after the callback, through this filter's own response callbacks, never upstream", async () => {
    const headers = serializePairs([["X-A", "1"]]);
    const body = `
      (data (i32.const 3000) "denied by policy")
      (data (i32.const 3100) "no")
      (data (i32.const 3200) "${watBytes(headers)}")
      (data (i32.const 3400) "request_headers")
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (drop (call $proxy_send_local_response (i32.const 403) (i32.const 3000) (i32.const 16) (i32.const 3100) (i32.const 2)
          (i32.const 3200) (i32.const ${headers.byteLength}) (i32.const -1)))
        (drop (call $proxy_log (i32.const 2) (i32.const 3400) (i32.const 15)))
        (i32.const 0))`;
    const p = await new StandIn().loadPlugin({ wasm: await watModule({ env: ["proxy_send_local_response"], body }), rootId: "lr" });
    let upstreamCalls = 0;
    const res = await p.worker(0).runStream({ body: "payload", upstream: () => (upstreamCalls++, { status: 200 }) });
    assert.equal(upstreamCalls, 0);
    assert.equal(res.upstreamRequest, undefined);
    assert.deepEqual(calls(res.logs), ["context_create", "request_headers", "response_headers", "response_body", "log", "done", "delete"]);
    assert.equal(res.responseStatus, 403);
    assert.equal(res.responseBodyText, "no");
    assert.deepEqual(res.responseHeaders?.pairs(), [[":status", "403"], ["x-a", "1"], ["content-length", "2"], ["content-type", "text/plain"]]);
    assert.equal(res.localReply?.details, "denied_by_policy");
    assert.equal(res.localReply?.from, "lr");
    assert.equal(res.stream.responseCodeDetails, "denied_by_policy");
  });

  it("holds the request on header status 1 (StopAllIterationAndWatermark) until proxy_continue_stream, body callbacks included", async () => {
    const wasm = await watModule({ trampolines: ["proxy_continue_stream"],
      body: `(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 1))` });
    const p = await new StandIn().loadPlugin({ wasm, rootId: "pause" });
    const s = p.worker(0).startStream({ method: "POST", body: "abc" });
    s.start();
    assert.equal(s.decodingStoppedAt, 0);
    assert.equal(s.upstreamContacted, false);
    assert.deepEqual(calls(s.info.logs), ["context_create"]);
    const vm = p.worker(0).vm;
    assert.equal(vm.callExport("t_proxy_continue_stream", vm.streamContextIds()[0]!, 0), 0);
    const res = await s.completion;
    assert.deepEqual(calls(res.logs), ["context_create", "request_body", "response_headers", "log", "done", "delete"]);
    assert.equal(Buffer.from(res.upstreamRequest!.body).toString(), "abc");
    assert.equal(vm.callExport("t_proxy_continue_stream", vm.rootContextId, 4), 2);
  });

  it("re-invokes on_request_body with the accumulated buffer after StopIterationAndBuffer", async () => {
    const body = `
      (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
        (i32.store (i32.add (i32.const 200) (i32.mul (i32.load (i32.const 196)) (i32.const 4))) (local.get 1))
        (i32.store (i32.const 196) (i32.add (i32.load (i32.const 196)) (i32.const 1)))
        (if (result i32) (local.get 2) (then (i32.const 0)) (else (i32.const 1))))`;
    const p = await new StandIn().loadPlugin({ wasm: await watModule({ body }), rootId: "buf" });
    const res = await p.worker(0).runStream({ method: "POST", body: ["aaa", "bb", "c"] });
    const vm = p.worker(0).vm;
    assert.equal(vm.readU32(196), 3);
    assert.deepEqual([vm.readU32(200), vm.readU32(204), vm.readU32(208)], [3, 5, 6]);
    assert.equal(Buffer.from(res.upstreamRequest!.body).toString(), "aaabbc");
  });

  describe("a trap in a callback", () => {
    // on_request_headers traps when the request has a body (end_of_stream = 0).
    const body = `(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
      (if (i32.eqz (local.get 2)) (then (unreachable))) (i32.const 0))`;

    it("fail-closed: answers 503 wasm_fail_stream without this filter's callbacks, and the VM stays failed", async () => {
      const host = new StandIn();
      const p = await host.loadPlugin({ wasm: await watModule({ body }), rootId: "trap", workers: 2 });
      let upstream = 0;
      const up = (): { status: number } => (upstream++, { status: 200 });
      const first = await p.worker(0).runStream({ method: "POST", body: "x", upstream: up });
      assert.equal(first.responseStatus, 503);
      assert.equal(first.responseBodyText, "");
      assert.equal(first.localReply?.details, "wasm_fail_stream");
      assert.equal(first.localReply?.grpcStatus, 14);
      assert.deepEqual(calls(first.logs), ["context_create"]);
      assert.ok(p.worker(0).failed);
      assert.ok(host.logsMatching("wasm VM failed").length >= 1);
      const second = await p.worker(0).runStream({ upstream: up });
      assert.equal(second.responseStatus, 503);
      assert.deepEqual(calls(second.logs), []);
      const otherWorker = await p.worker(1).runStream({ upstream: up });
      assert.equal(otherWorker.responseStatus, 200);
      assert.equal(upstream, 1);
    });

    it("fail-closed: a trap in on_response_headers replaces the upstream response with the 503", async () => {
      const trapOnResponse = `(func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32) (unreachable))`;
      const p = await new StandIn().loadPlugin({ wasm: await watModule({ body: trapOnResponse }), rootId: "trap-resp" });
      const res = await p.worker(0).runStream({ upstream: () => ({ status: 200, body: "secret" }) });
      assert.equal(res.responseStatus, 503);
      assert.equal(res.responseBodyText, "");
      assert.equal(res.localReply?.details, "wasm_fail_stream");
      assert.ok(res.upstreamRequest);
    });

    it("fail_open: the failed filter becomes transparent", async () => {
      const p = await new StandIn().loadPlugin({ wasm: await watModule({ body }), rootId: "trap", failOpen: true });
      const first = await p.worker(0).runStream({ method: "POST", body: "x", upstream: () => ({ status: 201 }) });
      assert.equal(first.responseStatus, 201);
      assert.ok(p.worker(0).failed);
      const second = await p.worker(0).runStream({ upstream: () => ({ status: 202 }) });
      assert.equal(second.responseStatus, 202);
      assert.equal(second.localReply, undefined);
    });

    it("failure_policy FAIL_OPEN (Envoy 1.40): the stream that failed the VM gets the 503, later streams pass", async () => {
      const p = await new StandIn().loadPlugin({ wasm: await watModule({ body }), rootId: "trap", failurePolicy: "FAIL_OPEN" });
      const first = await p.worker(0).runStream({ method: "POST", body: "x", upstream: () => ({ status: 201 }) });
      assert.equal(first.responseStatus, 503);
      assert.equal(first.localReply?.details, "wasm_fail_stream");
      const second = await p.worker(0).runStream({ upstream: () => ({ status: 202 }) });
      assert.equal(second.responseStatus, 202);
      assert.equal(second.localReply, undefined);
    });

    it("fail-closed: a configure failure rejects the plugin configuration", async () => {
      const failing = `(func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 0))`;
      await assert.rejects(new StandIn().loadPlugin({ wasm: await watModule({ body: failing }), rootId: "c" }),
        (e: Error & { code?: string }) => e.code === "ERR_WASM_START" && /proxy_on_configure returned false/.test(e.message));
    });
  });

  it("defers a root's on_delete until proxy_done when on_done returned 0 at shutdown", async () => {
    const body = `(data (i32.const 3000) "done")
      (func (export "proxy_on_done") (param i32) (result i32)
        (drop (call $proxy_log (i32.const 2) (i32.const 3000) (i32.const 4))) (i32.const 0))`;
    const host = new StandIn();
    const p = await host.loadPlugin({ wasm: await watModule({ trampolines: ["proxy_done"], body }), rootId: "later", canary: false });
    const vm = p.worker(0).vm;
    const root = vm.rootContextId;
    assert.equal(vm.callExport("t_proxy_done", root), 1, "NotFound before shutdown");
    p.shutdown();
    assert.deepEqual(calls(host.logs).slice(-1), ["done"]);
    assert.equal(vm.callExport("t_proxy_done", root), 0);
    assert.deepEqual(calls(host.logs).slice(-2), ["done", "delete"]);
    assert.equal(vm.contexts.has(root), false);
  });

  describe("ticks and queues", () => {
    it("delivers proxy_on_tick per root every period on the test clock, and period 0 stops it", async () => {
      const clock = new ManualClock();
      const host = new StandIn({ clock });
      const body = `
        (data (i32.const 3000) "ticks")
        (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
          (drop (call $proxy_define_metric (i32.const 0) (i32.const 3000) (i32.const 5) (i32.const 200)))
          (drop (call $proxy_set_tick_period_milliseconds (i32.const 100)))
          (i32.const 1))
        (func (export "proxy_on_tick") (param i32)
          (drop (call $proxy_increment_metric (i32.load (i32.const 200)) (i64.const 1))))`;
      const wasm = await watModule({ env: ["proxy_define_metric", "proxy_increment_metric"], trampolines: ["proxy_set_tick_period_milliseconds"], body });
      const p = await host.loadPlugin({ wasm, rootId: "tick", workers: 2 });
      clock.advance(99);
      assert.equal(host.metric("ticks"), 0);
      clock.advance(1);
      assert.equal(host.metric("ticks"), 2);
      clock.advance(250);
      assert.equal(host.metric("ticks"), 6);
      const vm0 = p.worker(0).vm;
      assert.equal(vm0.callExport("t_proxy_set_tick_period_milliseconds", vm0.rootContextId, 0), 0);
      clock.advance(1000);
      assert.equal(host.metric("ticks"), 16);
    });

    it("posts on_queue_ready asynchronously to the latest registrant, once per enqueue", async () => {
      const body = `
        (data (i32.const 3000) "q")
        (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
          (drop (call $proxy_register_shared_queue (i32.const 3000) (i32.const 1) (i32.const 204)))
          (i32.const 1))
        (func (export "proxy_on_queue_ready") (param i32 i32)
          (if (i32.eqz (call $proxy_dequeue_shared_queue (local.get 1) (i32.const 208) (i32.const 212)))
            (then (drop (call $proxy_log (i32.const 3) (i32.load (i32.const 208)) (i32.load (i32.const 212)))))))`;
      const wasm = await watModule({ env: ["proxy_register_shared_queue"], trampolines: ["proxy_enqueue_shared_queue", "proxy_resolve_shared_queue", "proxy_dequeue_shared_queue"], body });
      const host = new StandIn();
      const p = await host.loadPlugin({ wasm, rootId: "queue", vmId: "qvm", workers: 2 });
      const [vm0, vm1] = [p.worker(0).vm, p.worker(1).vm];
      const token = vm0.readU32(204);
      assert.ok(token > 0);
      assert.equal(vm1.readU32(204), token);
      vm0.writeMemory(LAYOUT.scratch + 32, Buffer.from("item-1"));
      assert.equal(vm0.callExport("t_proxy_enqueue_shared_queue", vm0.rootContextId, token, LAYOUT.scratch + 32, 6), 0);
      assert.equal(host.logsMatching("item-1").length, 0);
      await nextTurn();
      const got = host.logsMatching("item-1");
      assert.deepEqual(got.map((l) => [l.worker, l.level]), [[1, "warn"]]);
      assert.equal(vm0.callExport("t_proxy_dequeue_shared_queue", vm0.rootContextId, token, LAYOUT.scratch, LAYOUT.scratch + 4), 7);
      assert.equal(vm0.callExport("t_proxy_dequeue_shared_queue", vm0.rootContextId, 999, LAYOUT.scratch, LAYOUT.scratch + 4), 1);
      vm0.writeMemory(LAYOUT.scratch + 32, Buffer.from("q"));
      assert.equal(vm0.callExport("t_proxy_resolve_shared_queue", vm0.rootContextId, 0, 0, LAYOUT.scratch + 32, 1, LAYOUT.scratch), 0);
      assert.equal(vm0.readU32(LAYOUT.scratch), token);
      vm0.writeMemory(LAYOUT.scratch + 32, Buffer.from("z"));
      assert.equal(vm0.callExport("t_proxy_resolve_shared_queue", vm0.rootContextId, 0, 0, LAYOUT.scratch + 32, 1, LAYOUT.scratch), 1);
    });
  });
});
