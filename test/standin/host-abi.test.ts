// Host functions byte by byte (docs/proxy-wasm-host.md §2–§4): output allocation, header maps, properties, effective context,
// metrics, shared data CAS, foreign functions and buffers, exercised through a module that re-exports them.
import { strict as assert } from "node:assert";
import { WasmResult } from "../../tools/standin/abi.js";
import { LAYOUT, watModule } from "./fixtures/wat-module.js";
import type { HttpStream, RequestSpec } from "../../tools/standin/filter-chain.js";
import { serializePairs } from "../../tools/standin/pairs.js";
import { StandIn, type Plugin } from "../../tools/standin/stand-in.js";
import type { WasmVm } from "../../tools/standin/wasm-vm.js";

const { Ok, NotFound, BadArgument, SerializationFailure, InvalidMemoryAccess, CasMismatch } = WasmResult;
const RET_PTR = LAYOUT.scratch;
const RET_SIZE = LAYOUT.scratch + 4;
const RET_VAL = LAYOUT.scratch + 8;
const ARG = 8192;

const TRAMPOLINES = [
  "proxy_get_property", "proxy_set_property", "proxy_get_header_map_pairs", "proxy_set_header_map_pairs",
  "proxy_get_header_map_value", "proxy_add_header_map_value", "proxy_get_header_map_size",
  "proxy_set_effective_context", "proxy_define_metric", "proxy_increment_metric", "proxy_record_metric",
  "proxy_get_metric", "proxy_get_shared_data", "proxy_set_shared_data", "proxy_get_buffer_bytes",
  "proxy_get_buffer_status", "proxy_call_foreign_function", "proxy_log", "proxy_get_current_time_nanoseconds",
];
// on_request_headers pauses (returns 1) so the stream's maps stay available to the test's calls.
const PAUSING = `(func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) (i32.const 1))`;

class Probe {
  private at = ARG;
  constructor(readonly vm: WasmVm, readonly ctx: number) {}
  /** Writes a string's bytes into module memory, returning [ptr, len]. */
  put(s: string | Uint8Array): [number, number] {
    const b = typeof s === "string" ? Buffer.from(s, "latin1") : s;
    const p = this.at;
    this.vm.writeMemory(p, b);
    this.at += b.byteLength + 8;
    return [p, b.byteLength];
  }
  call(name: string, ...args: (number | bigint)[]): number {
    return this.vm.callExport(`t_${name}`, this.ctx, ...args);
  }
  /** The (ptr, size) output written at RET_PTR/RET_SIZE, read back as bytes. */
  out(): Buffer {
    const p = this.vm.readU32(RET_PTR);
    const n = this.vm.readU32(RET_SIZE);
    return Buffer.from(this.vm.readMemory(p, n));
  }
  property(path: string): { rc: number; value: Buffer } {
    const rc = this.call("proxy_get_property", ...this.put(path), RET_PTR, RET_SIZE);
    return { rc, value: rc === Ok ? this.out() : Buffer.alloc(0) };
  }
}

async function pausedStream(plugin: Plugin, worker = 0, req: RequestSpec = {}): Promise<{ s: HttpStream; p: Probe }> {
  const s = plugin.worker(worker).startStream({
    method: "GET", path: "/a?b=1", authority: "shop.example", headers: { "User-Agent": "probe/1" },
    source: "10.0.0.1:5555", requestId: "rid-1",
    properties: { "connection.mtls": true, "connection.uri_san_peer_certificate": "spiffe://mesh/ns/a/sa/b" },
    ...req,
  });
  s.sendRequestHeaders();
  assert.equal(s.decodingStoppedAt, 0);
  const vm = plugin.worker(worker).vm;
  return { s, p: new Probe(vm, vm.streamContextIds().at(-1)!) };
}

describe("stand-in host functions", function () {
  let host: StandIn;
  let plugin: Plugin;
  before(async function () {
    this.timeout(60_000);
    const wasm = await watModule({ trampolines: TRAMPOLINES, body: PAUSING });
    host = new StandIn({ node: { id: "sidecar~10.0.0.2~pod.ns~ns.svc.cluster.local", cluster: "edge" } });
    plugin = await host.loadPlugin({ wasm, rootId: "probe", name: "probe-plugin", vmId: "vm-a", workers: 2,
      vmConfiguration: "vmcfg", configuration: "cfg" });
  });

  describe("header maps", () => {
    it("returns the request headers as Envoy's pair bytes, allocating exactly their length once", async () => {
      const { s, p } = await pausedStream(plugin);
      const before = p.vm.readU32(LAYOUT.mallocCalls);
      assert.equal(p.call("proxy_get_header_map_pairs", 0, RET_PTR, RET_SIZE), Ok);
      const expected = serializePairs(s.info.requestHeaders.pairs());
      assert.deepEqual(new Uint8Array(p.out()), expected);
      assert.equal(p.vm.readU32(LAYOUT.mallocCalls), before + 1);
      assert.equal(p.vm.readU32(LAYOUT.lastMallocSize), expected.byteLength);
      assert.deepEqual(s.info.requestHeaders.pairs().slice(0, 4).map(([k]) => k), [":authority", ":path", ":method", ":scheme"]);
    });

    it("answers an unavailable map with Ok and 0/0 without allocating", async () => {
      const { p } = await pausedStream(plugin);
      p.vm.writeMemory(RET_PTR, new Uint8Array(8).fill(0xff));
      const before = p.vm.readU32(LAYOUT.mallocCalls);
      assert.equal(p.call("proxy_get_header_map_pairs", 2, RET_PTR, RET_SIZE), Ok);
      assert.equal(p.vm.readU32(RET_PTR), 0);
      assert.equal(p.vm.readU32(RET_SIZE), 0);
      assert.equal(p.vm.readU32(LAYOUT.mallocCalls), before);
    });

    it("looks keys up case-insensitively; absent → NotFound, unavailable map → BadArgument, type > 7 → BadArgument", async () => {
      const { p } = await pausedStream(plugin);
      assert.equal(p.call("proxy_get_header_map_value", 0, ...p.put("User-Agent"), RET_PTR, RET_SIZE), Ok);
      assert.equal(p.out().toString(), "probe/1");
      assert.equal(p.call("proxy_get_header_map_value", 0, ...p.put("x-none"), RET_PTR, RET_SIZE), NotFound);
      assert.equal(p.call("proxy_get_header_map_value", 2, ...p.put(":status"), RET_PTR, RET_SIZE), BadArgument);
      assert.equal(p.call("proxy_get_header_map_value", 8, ...p.put("a"), RET_PTR, RET_SIZE), BadArgument);
    });

    it("reports the map's byteSize (Σ key+value lengths) as its size", async () => {
      const { s, p } = await pausedStream(plugin);
      assert.equal(p.call("proxy_get_header_map_size", 0, RET_VAL), Ok);
      assert.equal(p.vm.readU32(RET_VAL), s.info.requestHeaders.byteSize);
      assert.equal(p.call("proxy_get_header_map_size", 6, RET_VAL), BadArgument);
    });

    it("set_header_map_pairs with malformed bytes clears the map (Ok, no error)", async () => {
      const { s, p } = await pausedStream(plugin);
      const bad = Buffer.from(serializePairs([["a", "1"]]));
      bad[bad.length - 1] = 0x41;
      assert.equal(p.call("proxy_set_header_map_pairs", 0, ...p.put(bad)), Ok);
      assert.equal(s.info.requestHeaders.size, 0);
    });

    it("add lower-cases the key; set_header_map_pairs replaces the whole map with add semantics", async () => {
      const { s, p } = await pausedStream(plugin);
      assert.equal(p.call("proxy_add_header_map_value", 0, ...p.put("X-Added"), ...p.put("v")), Ok);
      assert.equal(s.info.requestHeaders.get("x-added"), "v");
      assert.equal(p.call("proxy_set_header_map_pairs", 0, ...p.put(serializePairs([["K", "1"], ["k", "2"]]))), Ok);
      assert.deepEqual(s.info.requestHeaders.pairs(), [["k", "1"], ["k", "2"]]);
      assert.equal(p.call("proxy_add_header_map_value", 6, ...p.put("a"), ...p.put("b")), BadArgument);
    });
  });

  describe("effective context", () => {
    it("rejects unknown context ids with BadArgument and accepts live stream and root ids", async () => {
      const { p } = await pausedStream(plugin);
      assert.equal(p.call("proxy_set_effective_context", 999), BadArgument);
      assert.equal(p.call("proxy_set_effective_context", p.ctx), Ok);
      assert.equal(p.call("proxy_set_effective_context", p.vm.rootContextId), Ok);
    });

    it("acts on the effective context: a root callback that switches to a stream reads that stream's headers", async () => {
      const { p } = await pausedStream(plugin);
      const [kp, kl] = p.put("user-agent");
      const body = `(func (export "read_as") (param i32 i32 i32) (result i32)
        (drop (call $proxy_set_effective_context (local.get 0)))
        (call $proxy_get_header_map_value (i32.const 0) (local.get 1) (local.get 2) (i32.const ${RET_PTR}) (i32.const ${RET_SIZE})))`;
      const wasm = await watModule({ env: ["proxy_set_effective_context", "proxy_get_header_map_value"], body: body + PAUSING });
      const other = await new StandIn().loadPlugin({ wasm, rootId: "x" });
      const s2 = other.worker(0).startStream({ headers: { "user-agent": "eff/2" } });
      s2.sendRequestHeaders();
      const vm = other.worker(0).vm;
      const stream = vm.streamContextIds()[0]!;
      vm.writeMemory(kp, Buffer.from("user-agent"));
      assert.equal(vm.callExport("read_as", vm.rootContextId, vm.rootContextId, kp, kl), BadArgument);
      assert.equal(vm.callExport("read_as", vm.rootContextId, stream, kp, kl), Ok);
      assert.equal(Buffer.from(vm.readMemory(vm.readU32(RET_PTR), vm.readU32(RET_SIZE))).toString(), "eff/2");
    });
  });

  describe("properties", () => {
    it("serializes strings raw, ports as 8-byte LE int64 and booleans as one byte", async () => {
      const { p } = await pausedStream(plugin);
      assert.equal(p.property("source\0address").value.toString(), "10.0.0.1:5555");
      const port = p.property("source\0port");
      assert.equal(port.value.length, 8);
      assert.equal(port.value.readBigInt64LE(), 5555n);
      assert.deepEqual([...p.property("connection\0mtls").value], [1]);
      assert.equal(p.property("connection\0uri_san_peer_certificate").value.toString(), "spiffe://mesh/ns/a/sa/b");
    });

    it("resolves request attributes by NUL-separated path; a dotted name is an unknown top-level name", async () => {
      const { p } = await pausedStream(plugin);
      assert.equal(p.property("request\0path").value.toString(), "/a?b=1");
      assert.equal(p.property("request\0url_path").value.toString(), "/a");
      assert.equal(p.property("request\0headers\0user-agent").value.toString(), "probe/1");
      assert.equal(p.property("request\0id").value.toString(), "rid-1");
      assert.equal(p.property("request\0path\0").value.toString(), "/a?b=1");
      assert.equal(p.property("request.path").rc, NotFound);
      assert.equal(p.property("request\0nope").rc, NotFound);
      assert.equal(p.property("").rc, SerializationFailure);
    });

    it("serves plugin_name, plugin_root_id, plugin_vm_id and node under both node and xds.node", async () => {
      const { p } = await pausedStream(plugin);
      assert.equal(p.property("plugin_name").value.toString(), "probe-plugin");
      assert.equal(p.property("plugin_root_id").value.toString(), "probe");
      assert.equal(p.property("plugin_vm_id").value.toString(), "vm-a");
      assert.equal(p.property("node\0id").value.toString(), "sidecar~10.0.0.2~pod.ns~ns.svc.cluster.local");
      assert.equal(p.property("xds\0node\0cluster").value.toString(), "edge");
      const node = p.property("node").value;
      assert.equal(node[0], 0x0a); // field 1 (id), wire type 2
    });

    it("set_property writes filter state read back by get_property; root contexts have no stream info", async () => {
      const { s, p } = await pausedStream(plugin);
      assert.equal(p.call("proxy_set_property", ...p.put("my_key"), ...p.put("v1")), Ok);
      assert.equal(Buffer.from(s.info.filterState.get("wasm.my_key")!).toString(), "v1");
      assert.equal(p.property("my_key").value.toString(), "v1");
      const root = new Probe(p.vm, p.vm.rootContextId);
      assert.equal(root.call("proxy_set_property", ...root.put("k"), ...root.put("v")), NotFound);
      assert.equal(root.property("request\0path").rc, NotFound);
      assert.equal(root.property("plugin_root_id").value.toString(), "probe");
    });

    it("returns InvalidMemoryAccess for a path outside linear memory", async () => {
      const { p } = await pausedStream(plugin);
      assert.equal(p.call("proxy_get_property", p.vm.memoryBytes - 2, 10, RET_PTR, RET_SIZE), InvalidMemoryAccess);
    });
  });

  describe("allocator", () => {
    it("re-creates memory views when malloc grows memory, returning exact bytes from the new pages", async () => {
      const wasm = await watModule({ malloc: "grow", trampolines: ["proxy_get_header_map_pairs", "proxy_get_header_map_value"], body: PAUSING });
      const grow = await new StandIn().loadPlugin({ wasm, rootId: "g" });
      const big = "x".repeat(200_000);
      const s = grow.worker(0).startStream({ headers: { "x-big": big } });
      s.sendRequestHeaders();
      const vm = grow.worker(0).vm;
      const p = new Probe(vm, vm.streamContextIds()[0]!);
      const pagesBefore = vm.memoryBytes;
      assert.equal(p.call("proxy_get_header_map_value", 0, ...p.put("x-big"), RET_PTR, RET_SIZE), Ok);
      assert.ok(vm.memoryBytes > pagesBefore);
      assert.equal(vm.readU32(RET_PTR), pagesBefore);
      assert.equal(p.out().toString(), big);
      assert.equal(vm.readU32(LAYOUT.lastMallocSize), big.length);
      assert.equal(p.call("proxy_get_header_map_pairs", 0, RET_PTR, RET_SIZE), Ok);
      assert.deepEqual(new Uint8Array(p.out()), serializePairs(s.info.requestHeaders.pairs()));
    });
  });

  describe("metrics", () => {
    it("tags ids by type, rejects counter deltas ≤ 0, adds on counter record, and refuses histogram reads", async () => {
      const { p } = await pausedStream(plugin, 1);
      const def = (type: number, name: string): number => {
        assert.equal(p.call("proxy_define_metric", type, ...p.put(name), RET_VAL), Ok);
        return p.vm.readU32(RET_VAL);
      };
      const c = def(0, "t_counter");
      const g = def(1, "t_gauge");
      const h = def(2, "t_hist");
      assert.deepEqual([c & 3, g & 3, h & 3], [0, 1, 2]);
      assert.equal(def(0, "t_counter2"), c + 4);
      assert.equal(p.call("proxy_define_metric", 3, ...p.put("bad"), RET_VAL), BadArgument);
      assert.equal(p.call("proxy_increment_metric", c, 0n), BadArgument);
      assert.equal(p.call("proxy_increment_metric", c, -1n), BadArgument);
      assert.equal(p.call("proxy_increment_metric", c, 5n), Ok);
      assert.equal(p.call("proxy_record_metric", c, 3n), Ok);
      assert.equal(p.call("proxy_get_metric", c, RET_VAL), Ok);
      assert.equal(p.vm.readU32(RET_VAL), 8);
      assert.equal(p.call("proxy_record_metric", g, 7n), Ok);
      assert.equal(p.call("proxy_increment_metric", g, -2n), Ok);
      assert.equal(p.call("proxy_get_metric", g, RET_VAL), Ok);
      assert.equal(p.vm.readU32(RET_VAL), 5);
      assert.equal(p.call("proxy_record_metric", h, 42n), Ok);
      assert.equal(p.call("proxy_get_metric", h, RET_VAL), BadArgument);
      assert.equal(p.call("proxy_increment_metric", h, 1n), BadArgument);
      assert.equal(p.call("proxy_get_metric", c + 400, RET_VAL), NotFound);
      assert.equal(p.call("proxy_increment_metric", 7, 1n), BadArgument);
      assert.equal(host.metric("t_counter"), 8);
      assert.deepEqual(host.stats.get("t_hist", "histogram")?.samples, [42n]);
    });

    it("shares one stat between worker VMs defining the same name", async () => {
      for (const w of [0, 1]) {
        const { p } = await pausedStream(plugin, w);
        assert.equal(p.call("proxy_define_metric", 0, ...p.put("t_shared"), RET_VAL), Ok);
        assert.equal(p.call("proxy_increment_metric", p.vm.readU32(RET_VAL), 2n), Ok);
      }
      assert.equal(host.metric("t_shared"), 4);
    });
  });

  describe("shared data", () => {
    it("creates an absent key whatever the cas, then enforces cas with one global counter across vm_ids", async () => {
      const { p } = await pausedStream(plugin);
      const [kp, kl] = p.put("bucket");
      const set = (v: string, cas: number): number => p.call("proxy_set_shared_data", kp, kl, ...p.put(v), cas);
      const get = (): { rc: number; value: string; cas: number } => {
        const rc = p.call("proxy_get_shared_data", kp, kl, RET_PTR, RET_SIZE, RET_VAL);
        return { rc, value: rc === Ok ? p.out().toString() : "", cas: p.vm.readU32(RET_VAL) };
      };
      assert.equal(get().rc, NotFound);
      assert.equal(set("a", 123456), Ok);
      const first = get();
      assert.equal(first.value, "a");
      assert.ok(first.cas >= 1);
      assert.equal(set("b", first.cas + 1000), CasMismatch);
      assert.equal(get().value, "a");
      host.sharedData.set("another-vm", "k", Buffer.from("x"), 0);
      assert.equal(set("c", first.cas), Ok);
      const third = get();
      assert.equal(third.value, "c");
      assert.equal(third.cas, first.cas + 2);
      assert.equal(set("d", 0), Ok);
      assert.equal(get().value, "d");
      assert.equal(host.sharedData.get("vm-a", "bucket")?.cas, third.cas + 1);
    });

    it("stores a copy of the value: later writes to module memory do not change it", async () => {
      const { p } = await pausedStream(plugin);
      const [vp, vl] = p.put("orig");
      assert.equal(p.call("proxy_set_shared_data", ...p.put("copy-key"), vp, vl, 0), Ok);
      p.vm.writeMemory(vp, Buffer.from("XXXX"));
      assert.equal(Buffer.from(host.sharedData.get("vm-a", "copy-key")!.value).toString(), "orig");
    });

    it("skips cas 0 when the global counter wraps", () => {
      const store = new StandIn().sharedData;
      store.setCasCounter(0xffffffff);
      store.set("v", "k", Buffer.from("1"), 0);
      assert.equal(store.get("v", "k")?.cas, 1);
    });

    it("lets exactly one of two VMs win a read-modify-write race on the same cas", async () => {
      const a = await pausedStream(plugin, 0);
      const b = await pausedStream(plugin, 1);
      const key = "race";
      assert.equal(a.p.call("proxy_set_shared_data", ...a.p.put(key), ...a.p.put("0"), 0), Ok);
      const read = (x: Probe): number => {
        assert.equal(x.call("proxy_get_shared_data", ...x.put(key), RET_PTR, RET_SIZE, RET_VAL), Ok);
        return x.vm.readU32(RET_VAL);
      };
      const casA = read(a.p);
      const casB = read(b.p);
      assert.equal(casA, casB);
      assert.equal(a.p.call("proxy_set_shared_data", ...a.p.put(key), ...a.p.put("1"), casA), Ok);
      assert.equal(b.p.call("proxy_set_shared_data", ...b.p.put(key), ...b.p.put("1"), casB), CasMismatch);
      const casB2 = read(b.p);
      assert.equal(b.p.call("proxy_set_shared_data", ...b.p.put(key), ...b.p.put("2"), casB2), Ok);
      assert.equal(Buffer.from(host.sharedData.get("vm-a", key)!.value).toString(), "2");
    });

    it("is visible to every worker VM with the same vm_id", async () => {
      const a = await pausedStream(plugin, 0);
      a.p.call("proxy_set_shared_data", ...a.p.put("cross"), ...a.p.put("from-0"), 0);
      const b = await pausedStream(plugin, 1);
      assert.equal(b.p.call("proxy_get_shared_data", ...b.p.put("cross"), RET_PTR, RET_SIZE, RET_VAL), Ok);
      assert.equal(b.p.out().toString(), "from-0");
    });
  });

  describe("foreign functions, buffers, logs and time", () => {
    it("clear_route_cache records a route-cache clear on the stream; unknown names are NotFound", async () => {
      const { s, p } = await pausedStream(plugin);
      p.vm.writeMemory(RET_PTR, new Uint8Array(8).fill(0xff));
      assert.equal(p.call("proxy_call_foreign_function", ...p.put("clear_route_cache"), 0, 0, RET_PTR, RET_SIZE), Ok);
      assert.deepEqual([p.vm.readU32(RET_PTR), p.vm.readU32(RET_SIZE)], [0, 0]);
      assert.equal(s.info.routeCacheClears.length, 1);
      assert.equal(s.info.routeCacheClears[0]!.filter, "probe-plugin");
      assert.equal(s.info.routeCacheClears[0]!.via, "foreign_function");
      assert.equal(p.call("proxy_call_foreign_function", ...p.put("no_such_fn"), 0, 0, RET_PTR, RET_SIZE), NotFound);
    });

    it("serves the VM configuration always, the plugin configuration only in on_configure, bodies as Ok/empty", async () => {
      const { p } = await pausedStream(plugin);
      assert.equal(p.call("proxy_get_buffer_bytes", 6, 0, 100, RET_PTR, RET_SIZE), Ok);
      assert.equal(p.out().toString(), "vmcfg");
      assert.equal(p.call("proxy_get_buffer_bytes", 6, 2, 100, RET_PTR, RET_SIZE), Ok);
      assert.equal(p.out().toString(), "cfg");
      assert.equal(p.call("proxy_get_buffer_bytes", 7, 0, 100, RET_PTR, RET_SIZE), NotFound);
      assert.equal(p.call("proxy_get_buffer_status", 0, RET_VAL, RET_VAL + 4), Ok);
      assert.equal(p.vm.readU32(RET_VAL), 0);
      assert.equal(p.call("proxy_get_buffer_status", 4, RET_VAL, RET_VAL + 4), NotFound);
      assert.equal(p.call("proxy_get_buffer_status", 9, RET_VAL, RET_VAL + 4), BadArgument);
    });

    it("captures logs with level and plugin name, and rejects levels above critical", async () => {
      const { s, p } = await pausedStream(plugin);
      assert.equal(p.call("proxy_log", 3, ...p.put("careful")), Ok);
      assert.equal(p.call("proxy_log", 6, ...p.put("nope")), BadArgument);
      assert.deepEqual(s.info.logs.filter((l) => l.level !== "info").map((l) => [l.level, l.message, l.plugin]), [["warn", "careful", "probe-plugin"]]);
    });

    it("reads time from the stand-in clock", async () => {
      const { p } = await pausedStream(plugin);
      assert.equal(p.call("proxy_get_current_time_nanoseconds", RET_VAL), Ok);
      const ns = Buffer.from(p.vm.readMemory(RET_VAL, 8)).readBigUInt64LE();
      assert.equal(ns, BigInt(host.clock.nowMs()) * 1_000_000n);
    });
  });
});
