// proxy_http_call (docs/proxy-wasm-host.md §4.6, §6.4 auth pattern): validation, root-owned asynchronous completion with map 6 and
// buffer 4 readable, handler and real loopback clusters, 504 timeouts on the test clock, resets, deleted streams.
import { strict as assert } from "node:assert";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { ManualClock } from "../../tools/standin/clock.js";
import { watModule } from "./fixtures/wat-module.js";
import type { HttpCallRequest } from "../../tools/standin/http-callout.js";
import { serializePairs } from "../../tools/standin/pairs.js";
import { StandIn, type PluginOptions } from "../../tools/standin/stand-in.js";

// Memory the module reads its call arguments from, and where it records what it saw.
const A = { cluster: 40, clusterLen: 44, headers: 48, headersLen: 52, timeout: 60, token: 64, rc: 68,
  cbToken: 72, nh: 76, bs: 80, nt: 84, root: 88, statusRc: 92, statusCode: 96, statusMsg: 100, statusLen: 104, effRc: 108, addRc: 128 };
const CLUSTER_AT = 3000;
const HEADERS_AT = 3100;
const GOOD_HEADERS = serializePairs([[":method", "POST"], [":path", "/check"], [":authority", "authz.local"], ["x-k", "v"]]);

const MODULE = `
  (global $stream (mut i32) (i32.const 0))
  (data (i32.const 3300) "hi")
  (data (i32.const 3400) ":status")
  (data (i32.const 3500) "x-auth")
  (data (i32.const 3510) "ok")
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (global.set $stream (local.get 0))
    (i32.store (i32.const ${A.rc}) (call $proxy_http_call
      (i32.load (i32.const ${A.cluster})) (i32.load (i32.const ${A.clusterLen}))
      (i32.load (i32.const ${A.headers})) (i32.load (i32.const ${A.headersLen}))
      (i32.const 3300) (i32.const 2) (i32.const 0) (i32.const 0)
      (i32.load (i32.const ${A.timeout})) (i32.const ${A.token})))
    (i32.const 1))
  (func (export "proxy_on_http_call_response") (param $root i32) (param $token i32) (param $nh i32) (param $bs i32) (param $nt i32)
    (i32.store (i32.const ${A.cbToken}) (local.get $token))
    (i32.store (i32.const ${A.nh}) (local.get $nh))
    (i32.store (i32.const ${A.bs}) (local.get $bs))
    (i32.store (i32.const ${A.nt}) (local.get $nt))
    (i32.store (i32.const ${A.root}) (local.get $root))
    (i32.store (i32.const ${A.statusRc}) (call $proxy_get_status (i32.const ${A.statusCode}) (i32.const ${A.statusMsg}) (i32.const ${A.statusLen})))
    (i32.store (i32.const ${A.effRc}) (call $proxy_set_effective_context (global.get $stream)))
    (if (i32.eqz (call $proxy_get_buffer_bytes (i32.const 4) (i32.const 0) (local.get $bs) (i32.const 112) (i32.const 116)))
      (then (drop (call $proxy_log (i32.const 3) (i32.load (i32.const 112)) (i32.load (i32.const 116))))))
    (if (i32.eqz (call $proxy_get_header_map_value (i32.const 6) (i32.const 3400) (i32.const 7) (i32.const 120) (i32.const 124)))
      (then (drop (call $proxy_log (i32.const 4) (i32.load (i32.const 120)) (i32.load (i32.const 124))))))
    (i32.store (i32.const ${A.addRc}) (call $proxy_add_header_map_value (i32.const 0) (i32.const 3500) (i32.const 6) (i32.const 3510) (i32.const 2)))
    (drop (call $proxy_continue_stream (i32.const 0))))`;

let wasm: Uint8Array;
const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

async function load(clusters: PluginOptions["clusters"], opts: { cluster?: string; headers?: Uint8Array; timeout?: number; clock?: ManualClock } = {}) {
  const host = new StandIn({ clock: opts.clock ?? new ManualClock() });
  const p = await host.loadPlugin({ wasm, rootId: "auth", clusters, workers: 1 });
  const vm = p.worker(0).vm;
  const cluster = Buffer.from(opts.cluster ?? "authz");
  const headers = opts.headers ?? GOOD_HEADERS;
  vm.writeMemory(CLUSTER_AT, cluster);
  vm.writeMemory(HEADERS_AT, headers);
  const u32 = (at: number, v: number): void => vm.writeMemory(at, new Uint8Array(new Uint32Array([v]).buffer));
  u32(A.cluster, CLUSTER_AT);
  u32(A.clusterLen, cluster.length);
  u32(A.headers, HEADERS_AT);
  u32(A.headersLen, headers.length);
  u32(A.timeout, opts.timeout ?? 0);
  return { host, p, vm };
}

function messages(logs: { level: string; message: string }[], level: string): string[] {
  return logs.filter((l) => l.level === level).map((l) => l.message);
}

describe("stand-in proxy_http_call", function () {
  this.timeout(60_000);
  before(async () => {
    wasm = await watModule({ env: ["proxy_http_call", "proxy_get_status", "proxy_set_effective_context", "proxy_get_buffer_bytes",
      "proxy_get_header_map_value", "proxy_add_header_map_value", "proxy_continue_stream"], body: MODULE });
  });

  it("dispatches to a handler, answers the root asynchronously, and the stream resumes via the effective context", async () => {
    const seen: HttpCallRequest[] = [];
    const { p, vm } = await load({ authz: { handler: (req) => (seen.push(req), { status: 200, headers: { "x-r": "1" }, body: "allow" }) } });
    const s = p.worker(0).startStream({ path: "/orders" });
    s.start();
    assert.equal(vm.readU32(A.rc), 0);
    const token = vm.readU32(A.token);
    assert.notEqual(token, 0);
    assert.equal(s.decodingStoppedAt, 0);
    assert.equal(vm.readU32(A.cbToken), 0, "completion is never synchronous");
    const res = await s.completion;
    assert.equal(seen.length, 1);
    const req = seen[0]!;
    assert.equal(req.cluster, "authz");
    assert.deepEqual(req.headers.pairs(), [[":method", "POST"], [":path", "/check"], [":authority", "authz.local"], ["x-k", "v"], ["content-length", "2"]]);
    assert.equal(Buffer.from(req.body).toString(), "hi");
    assert.equal(req.timeoutMs, 0);
    assert.deepEqual([vm.readU32(A.cbToken), vm.readU32(A.nh), vm.readU32(A.bs), vm.readU32(A.nt), vm.readU32(A.root)],
      [token, 3, 5, 0, vm.rootContextId]);
    assert.equal(vm.readU32(A.statusCode), 0);
    assert.equal(vm.readU32(A.effRc), 0);
    assert.deepEqual(messages(res.logs, "warn"), ["allow"]);
    assert.deepEqual(messages(res.logs, "error"), ["200"]);
    assert.equal(vm.readU32(A.addRc), 0);
    assert.equal(res.upstreamRequest?.headers.get("x-auth"), "ok");
    assert.equal(res.responseStatus, 200);
  });

  it("talks to a real loopback HTTP server for a url cluster", async () => {
    let got: { method?: string; url?: string; host?: string; xk?: string; body: string } | undefined;
    const server: Server = createServer((req: IncomingMessage, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        got = { method: req.method, url: req.url, host: req.headers.host, xk: req.headers["x-k"] as string, body };
        res.writeHead(201, { "content-type": "text/plain" }).end("from-server");
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const port = (server.address() as AddressInfo).port;
      const { p } = await load({ authz: { url: `http://127.0.0.1:${port}` } });
      const res = await p.worker(0).runStream({});
      assert.deepEqual(got, { method: "POST", url: "/check", host: "authz.local", xk: "v", body: "hi" });
      assert.deepEqual(messages(res.logs, "warn"), ["from-server"]);
      assert.deepEqual(messages(res.logs, "error"), ["201"]);
      assert.equal(res.responseStatus, 200);
    } finally {
      server.close();
    }
  });

  it("answers a timed-out call with Envoy's 504 when the stand-in clock passes the timeout; a late answer is dropped", async () => {
    const clock = new ManualClock();
    const { p, vm } = await load({ authz: { manual: true } }, { timeout: 250, clock });
    const s = p.worker(0).startStream({});
    s.start();
    assert.equal(p.pendingHttpCalls.length, 1);
    assert.equal(p.pendingHttpCalls[0]!.request.timeoutMs, 250);
    const call = p.pendingHttpCalls[0]!;
    clock.advance(249);
    await nextTurn();
    assert.equal(vm.readU32(A.cbToken), 0);
    clock.advance(1);
    const res = await s.completion;
    assert.deepEqual(messages(res.logs, "warn"), ["upstream request timeout"]);
    assert.deepEqual(messages(res.logs, "error"), ["504"]);
    assert.equal(vm.readU32(A.nh), 3);
    assert.equal(p.pendingHttpCalls.length, 0);
    call.respond({ status: 200, body: "late" });
    await nextTurn();
    assert.equal(res.logs.filter((l) => l.message === "late").length, 0);
  });

  it("reports a reset as (token, 0, 0, 0) with get_status 11 \"reset\"", async () => {
    const { p, vm } = await load({ authz: { handler: () => ({ reset: true }) } });
    const res = await p.worker(0).runStream({});
    assert.notEqual(vm.readU32(A.cbToken), 0);
    assert.deepEqual([vm.readU32(A.nh), vm.readU32(A.bs), vm.readU32(A.nt)], [0, 0, 0]);
    assert.equal(vm.readU32(A.statusRc), 0);
    assert.equal(vm.readU32(A.statusCode), 11);
    assert.equal(Buffer.from(vm.readMemory(vm.readU32(A.statusMsg), vm.readU32(A.statusLen))).toString(), "reset");
    assert.equal(res.responseStatus, 200);
  });

  it("rejects unknown clusters, missing :authority and timeouts ≥ 2^31 with BadArgument, token 0 and no callback", async () => {
    const cases: { cluster?: string; headers?: Uint8Array; timeout?: number }[] = [
      { cluster: "nope" },
      { headers: serializePairs([[":method", "GET"], [":path", "/"]]) },
      { timeout: 2 ** 31 },
    ];
    for (const c of cases) {
      const { p, vm } = await load({ authz: { handler: () => ({ status: 200 }) } }, c);
      vm.writeMemory(A.token, new Uint8Array([9, 9, 9, 9]));
      const s = p.worker(0).startStream({});
      s.start();
      assert.equal(vm.readU32(A.rc), 2, JSON.stringify(c));
      assert.equal(vm.readU32(A.token), 0);
      await nextTurn();
      assert.equal(vm.pendingHttpCalls, 0);
      assert.equal(s.decodingStoppedAt, 0);
      s.reset("test_cleanup");
    }
  });

  it("hands out distinct tokens per VM (4, 8, … in current Envoy)", async () => {
    const { p, vm } = await load({ authz: { manual: true } });
    p.worker(0).startStream({}).start();
    const t1 = vm.readU32(A.token);
    p.worker(0).startStream({}).start();
    const t2 = vm.readU32(A.token);
    assert.deepEqual([t1, t2], [4, 8]);
    assert.equal(p.pendingHttpCalls.length, 2);
  });

  it("numbers tokens per root context with small integers under the old Envoy profile", async () => {
    const host = new StandIn({ profile: "old" });
    const p = await host.loadPlugin({ wasm, rootId: "auth", clusters: { authz: { manual: true } } });
    const vm = p.worker(0).vm;
    vm.writeMemory(CLUSTER_AT, Buffer.from("authz"));
    vm.writeMemory(HEADERS_AT, GOOD_HEADERS);
    vm.writeMemory(A.cluster, new Uint8Array(new Uint32Array([CLUSTER_AT, 5, HEADERS_AT, GOOD_HEADERS.length]).buffer));
    const tokens: number[] = [];
    for (let i = 0; i < 2; i++) {
      p.worker(0).startStream({}).start();
      tokens.push(vm.readU32(A.token));
    }
    assert.deepEqual(tokens, [1, 2]);
  });

  it("refuses a cluster url that is not loopback at load time", async () => {
    await assert.rejects(new StandIn().loadPlugin({ wasm, rootId: "auth", clusters: { far: { url: "http://192.0.2.1:80" } } }), /must be loopback/);
  });

  it("still answers the root when the stream is gone: set_effective_context fails and calls act on the root", async () => {
    const { p, vm } = await load({ authz: { manual: true } });
    const s = p.worker(0).startStream({});
    s.start();
    s.reset("downstream_remote_disconnect");
    const res = await s.completion;
    assert.equal(res.reset, "downstream_remote_disconnect");
    p.pendingHttpCalls[0]!.respond({ status: 200, body: "ok" });
    await nextTurn();
    assert.equal(vm.readU32(A.cbToken), vm.readU32(A.token));
    assert.equal(vm.readU32(A.effRc), 2);
    assert.equal(vm.readU32(A.addRc), 2);
    assert.equal(p.worker(0).failed, false);
  });
});
