// authz-cache.wasm driven directly through the Envoy stand-in with up to 1,000,000 distinct keys
// (bounded in time): shared data stays at `slots` entries, linear memory stays flat, and the hit path
// still answers from the cache. An upstream plays authz-server and signs a directive per request.
import { strict as assert } from "node:assert";
import { createHmac } from "node:crypto";
import { ManualClock, StandIn } from "../../../tools/standin/index.js";

const SECRET = "stand-in-cache-secret-0123456789";
const SLOTS = 1024;
const EPOCH = "boot.1.0";

describe("authz-cache: many distinct keys through the stand-in", function () {
  this.timeout(180_000);

  it("keeps shared data and linear memory bounded over up to 1,000,000 distinct keys (45 s bound); the hit path stays fast", async function () {
    const clock = new ManualClock(Date.now());
    const host = new StandIn({ clock, logLevel: "info" });
    const plugin = await host.loadPlugin({
      wasm: "filters/build/authz-cache.wasm",
      rootId: "authz-cache",
      vmId: "cache",
      configuration: { secret: SECRET, skipToken: "skip-token-0123456789", epochCluster: "authz-http", slots: SLOTS, pollMs: 100, maxStalenessMs: 1000 },
      clusters: { "authz-http": { handler: async () => ({ status: 200, body: EPOCH }) } },
    });
    const worker = plugin.worker(0);
    const poll = async () => {
      clock.advance(100);
      await host.settle();
    };
    await poll();

    const directive = (nonce: string) => {
      const json = JSON.stringify({ v: 1, n: nonce, e: EPOCH, x: clock.nowMs() + 60_000, t: 60_000, k: ["h:authorization"], l: [200, 65536], d: "allow", s: 200, h: [["x-user-id", "alice"]], r: [], rh: [] });
      return `${createHmac("sha256", SECRET).update(json).digest("hex")}.${json}`;
    };
    let upstreamCalls = 0;
    const request = (i: number) => ({
      method: "GET",
      path: `/api/orders/${i}`,
      authority: "api.example.com",
      headers: { authorization: "Bearer t" },
      upstream: async (req: { headers: { get(n: string): string | undefined } }) => {
        upstreamCalls++;
        const nonce = req.headers.get("x-meshward-cache-nonce");
        const headers: Record<string, string> = nonce ? { "x-meshward-cache": directive(nonce) } : {};
        return { status: 200, headers, body: "" };
      },
    });

    const hot = { ...request(-1), path: "/api/orders/hot" };
    const hitTime = async () => {
      await worker.runStream(hot); // learns (or hits) the hot key
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < 2000; i++) await worker.runStream(hot);
      return Number(process.hrtime.bigint() - t0) / 2000 / 1000;
    };
    // Warm up, then measure memory and the hit path.
    for (let i = 0; i < 5000; i++) await worker.runStream(request(i));
    const hitUsBefore = await hitTime();
    const memoryBefore = worker.vm.memoryBytes;
    const started = Date.now();
    let n = 5000;
    while (n < 1_000_000 && Date.now() - started < 45_000) {
      await worker.runStream(request(n++));
      if (n % 5000 === 0) await poll(); // keep the epoch confirmed (time moves 100 ms per 5,000 requests)
    }
    const memoryAfter = worker.vm.memoryBytes;
    const hitUsAfter = await hitTime();
    const keys = host.sharedData.keys("cache");
    console.log(`      ${n} distinct keys in ${((Date.now() - started) / 1000).toFixed(1)} s: ${keys.length} shared-data keys, linear memory ${memoryBefore} → ${memoryAfter} bytes, stores ${host.metric("meshward_authz_cache_stores")}, evictions ${host.metric("meshward_authz_cache_evictions")}; hit ${hitUsBefore.toFixed(1)} → ${hitUsAfter.toFixed(1)} µs per stream (stand-in)`);
    assert.ok(n >= 50_000, `at least 50,000 distinct keys within the time bound (${n})`);
    assert.ok(keys.length <= SLOTS + 2, `${keys.length} shared-data keys (slots + epoch + shapes)`);
    assert.ok(memoryAfter - memoryBefore <= 1024 * 1024, `linear memory grew by ${memoryAfter - memoryBefore} bytes`);
    assert.ok((host.metric("meshward_authz_cache_stores") ?? 0) >= n, "every distinct key was stored (and evicted)");
    assert.ok(hitUsAfter < 3 * hitUsBefore, `a hit took ${hitUsBefore.toFixed(1)} µs before the flood and ${hitUsAfter.toFixed(1)} µs after`);

    // The hit path: the last key is served without the upstream (authz) seeing a nonce.
    const before = upstreamCalls;
    const hit = await worker.runStream(request(n - 1));
    assert.equal(upstreamCalls, before + 1);
    assert.equal(hit.upstreamRequest?.headers.get("x-user-id"), "alice");
    assert.equal(hit.upstreamRequest?.headers.get("x-meshward-cache-nonce"), undefined, "a hit needs no nonce: it was not sent to authz");
    assert.equal(hit.upstreamRequest?.headers.get("x-meshward-authz-skip"), "skip-token-0123456789");
    assert.ok((host.metric("meshward_authz_cache_hits") ?? 0) >= 1);
  });
});
