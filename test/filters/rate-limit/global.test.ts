// Global (leased) limits of filters/build/rate-limit.wasm: several independent proxies (separate
// stand-in hosts = separate shared data) spend tokens leased from the real quota service, never
// admit more than the global bucket allows, pause only on an empty pool, and honour failureMode.
import { strict as assert } from "node:assert";
import { ManualClock, StandIn, SystemClock, type StreamResult } from "../../../tools/standin/index.js";
import { requireRedis, startRedis, type RedisProcess } from "../../../tools/testing/redis.js";
import { loadRateLimit, replyHeader, settle, status, type Json, type RateLimitSetup } from "./harness.js";
import { startQuota, type QuotaHarness } from "./quota-server.js";

const CLUSTER = "meshward-quota";

function globalConfig(extra: Json = {}, lease: Json = { lease: 20 }): Json {
  return {
    domain: "edge",
    quota: { cluster: CLUSTER, authority: "meshward-authz", timeoutMs: 200 },
    limits: [{ name: "per-user", key: [{ header: "x-user-id" }], capacity: 100, refillPerSecond: 50, global: lease }],
    ...extra,
  };
}

function user(setup: RateLimitSetup, worker: number, id = "u1"): Promise<StreamResult> {
  return setup.plugin.worker(worker).runStream({ method: "GET", path: "/api", headers: { "x-user-id": id } });
}

describe("rate-limit filter: global limits with leased tokens (stand-in + real quota service)", function () {
  this.timeout(60_000);
  let quota: QuotaHarness | undefined;
  afterEach(async () => {
    await quota?.close();
    quota = undefined;
  });

  it("3 proxies × 2 VMs under demand far above the limit never admit more than the global bucket and use ≥ 95% of it", async () => {
    const clock = new ManualClock();
    quota = await startQuota([{ domain: "edge", name: "per-user", capacity: 100, refillPerSecond: 50 }], { clock: () => clock.nowMs() });
    const proxies: RateLimitSetup[] = [];
    for (let p = 0; p < 3; p++) {
      const host = new StandIn({ clock, logLevel: "warn" });
      proxies.push(await loadRateLimit(globalConfig({ failureMode: "deny" }), { host, clock, workers: 2, clusters: { [CLUSTER]: { handler: quota.handler } } }));
    }
    const start = clock.nowMs();
    const admittedAt: number[] = [];
    const statuses = new Map<number, number>();
    const all: Promise<void>[] = [];
    const stepMs = 20;
    const steps = 300; // 6 s of test clock; 6 requests per step = 300 req/s against 50 tokens/s
    for (let step = 0; step < steps; step++) {
      for (const setup of proxies) {
        for (let w = 0; w < 2; w++) {
          all.push(user(setup, w).then((r) => {
            const s = status(r);
            statuses.set(s, (statuses.get(s) ?? 0) + 1);
            if (s === 200) admittedAt.push(clock.nowMs() - start);
          }));
        }
      }
      await quota.idle();
      clock.advance(stepMs);
      await quota.idle();
    }
    clock.advance(1000);
    await quota.idle();
    await Promise.all(all);
    const admitted = admittedAt.length;
    const lastS = Math.max(...admittedAt) / 1000;
    const ceiling = 100 + 50 * lastS;
    assert.deepEqual([...statuses.keys()].filter((s) => s !== 200 && s !== 429), [], `unexpected statuses ${JSON.stringify([...statuses])}`);
    assert.ok(admitted <= ceiling, `admitted ${admitted} > capacity + refill × ${lastS} s = ${ceiling}`);
    // Sustained window after the initial burst: from 1 s to 6 s the bucket refills 250 tokens.
    const inWindow = admittedAt.filter((t) => t >= 1000 && t < 6000).length;
    const accuracy = inWindow / 250;
    assert.ok(inWindow <= 250 + 100, `window admitted ${inWindow}`);
    assert.ok(accuracy >= 0.95, `window admitted ${inWindow} of 250 (${(accuracy * 100).toFixed(1)}%)`);
    const waits = proxies.reduce((n, p) => n + (p.host.metric("meshward_rate_limit_pool_exhaustion_waits_total") ?? 0), 0);
    const leases = proxies.reduce((n, p) => n + (p.host.metric("meshward_rate_limit_lease_requests_total") ?? 0), 0);
    console.log(`      global accuracy (test clock): admitted ${admitted} ≤ ceiling ${ceiling} (100 + 50/s × ${lastS} s); ` +
      `window 1–6 s: ${inWindow}/250 (${(accuracy * 100).toFixed(1)}%); lease calls ${leases}; pool waits ${waits}; requests ${all.length}`);
  });

  it("pauses a request on an empty pool and resumes it when the lease arrives; one lease in flight per key per proxy", async () => {
    const setup = await loadRateLimit(globalConfig(), { workers: 2, clusters: { [CLUSTER]: { manual: true } } });
    const first = setup.plugin.worker(0).startStream({ method: "GET", path: "/api", headers: { "x-user-id": "u1" } });
    first.sendRequestHeaders();
    const second = setup.plugin.worker(1).startStream({ method: "GET", path: "/api", headers: { "x-user-id": "u1" } });
    second.sendRequestHeaders();
    assert.equal(first.decodingStoppedAt, 0, "first request paused");
    assert.equal(second.decodingStoppedAt, 0, "second request paused");
    const calls = setup.plugin.pendingHttpCalls;
    assert.equal(calls.length, 1, "one lease call for the key on this proxy");
    const call = calls[0]!;
    assert.equal(call.request.headers.get(":method"), "POST");
    assert.equal(call.request.headers.get(":path"), "/v1/quota/lease");
    assert.equal(call.request.headers.get(":authority"), "meshward-authz");
    assert.equal(call.request.timeoutMs, 200);
    assert.deepEqual(JSON.parse(Buffer.from(call.request.body).toString()), { domain: "edge", limit: "per-user", key: "u1", want: 20 });
    call.respond({ status: 200, body: JSON.stringify({ granted: 20, expiresInMs: 10_000, resetInMs: 0 }) });
    await settle();
    const r1 = await first.completion;
    assert.equal(status(r1), 200);
    assert.ok(r1.upstreamRequest, "the first request reached the upstream");
    setup.clock.advance(50); // the other VM re-checks the pool on its tick
    await settle();
    const r2 = await second.completion;
    assert.equal(status(r2), 200);
    // Spending from the pool does not wait.
    for (let i = 0; i < 5; i++) {
      const s = setup.plugin.worker(i % 2).startStream({ method: "GET", path: "/api", headers: { "x-user-id": "u1" } });
      s.sendRequestHeaders();
      assert.equal(s.decodingStoppedAt, -1, "served from the pool without pausing");
      assert.equal(status(await s.completion), 200);
    }
    assert.equal(setup.host.metric("meshward_rate_limit_pool_exhaustion_waits_total"), 2);
  });

  it("forgets a paused request whose client went away; the lease still fills the pool for the next one", async () => {
    const setup = await loadRateLimit(globalConfig(), { clusters: { [CLUSTER]: { manual: true } } });
    const gone = setup.plugin.worker(0).startStream({ method: "GET", path: "/api", headers: { "x-user-id": "u1" } });
    gone.sendRequestHeaders();
    gone.reset("downstream_remote_disconnect");
    const r = await gone.completion;
    assert.equal(r.upstreamRequest, undefined);
    setup.plugin.pendingHttpCalls[0]!.respond({ status: 200, body: JSON.stringify({ granted: 20, expiresInMs: 10_000, resetInMs: 0 }) });
    await settle();
    setup.clock.advance(100);
    await settle();
    assert.equal(setup.plugin.worker(0).failed, false, "no callback reached the deleted stream");
    const next = setup.plugin.worker(0).startStream({ method: "GET", path: "/api", headers: { "x-user-id": "u1" } });
    next.sendRequestHeaders();
    assert.equal(next.decodingStoppedAt, -1);
    assert.equal(status(await next.completion), 200);
  });

  it("lets unused leased tokens expire after expiresInMs, then leases again", async () => {
    const setup = await loadRateLimit(globalConfig(), { clusters: { [CLUSTER]: { manual: true } } });
    const first = setup.plugin.worker(0).startStream({ method: "GET", path: "/api", headers: { "x-user-id": "u1" } });
    first.sendRequestHeaders();
    setup.plugin.pendingHttpCalls[0]!.respond({ status: 200, body: JSON.stringify({ granted: 20, expiresInMs: 1000, resetInMs: 0 }) });
    await settle();
    assert.equal(status(await first.completion), 200);
    setup.clock.advance(999);
    const fresh = setup.plugin.worker(0).startStream({ method: "GET", path: "/api", headers: { "x-user-id": "u1" } });
    fresh.sendRequestHeaders();
    assert.equal(fresh.decodingStoppedAt, -1, "19 pooled tokens still valid");
    assert.equal(status(await fresh.completion), 200);
    setup.clock.advance(1);
    const expired = setup.plugin.worker(0).startStream({ method: "GET", path: "/api", headers: { "x-user-id": "u1" } });
    expired.sendRequestHeaders();
    assert.equal(expired.decodingStoppedAt, 0, "the pool expired: the request waits for a new lease");
    assert.equal(setup.plugin.pendingHttpCalls.length, 1);
    setup.plugin.pendingHttpCalls[0]!.respond({ status: 200, body: JSON.stringify({ granted: 20, expiresInMs: 1000, resetInMs: 0 }) });
    await settle();
    assert.equal(status(await expired.completion), 200);
  });

  it("answers 429 with Retry-After when the quota service grants nothing (over the global limit)", async () => {
    const setup = await loadRateLimit(globalConfig(), { clusters: { [CLUSTER]: { manual: true } } });
    const s = setup.plugin.worker(0).startStream({ method: "GET", path: "/api", headers: { "x-user-id": "u1" } });
    s.sendRequestHeaders();
    setup.plugin.pendingHttpCalls[0]!.respond({ status: 200, body: JSON.stringify({ granted: 0, expiresInMs: 10_000, resetInMs: 2000, retryAfterMs: 800 }) });
    await settle();
    const r = await s.completion;
    assert.equal(status(r), 429);
    assert.equal(replyHeader(r, "retry-after"), "1");
    assert.equal(replyHeader(r, "ratelimit"), "\"per-user\";r=0;t=1");
    const again = await user(setup, 0);
    assert.equal(status(again), 429, "no new lease during the backoff");
    assert.equal(setup.plugin.pendingHttpCalls.length, 0);
  });

  for (const [mode, expected] of [["allow", 200], ["deny", 503], ["local", 200]] as const) {
    it(`applies failureMode ${mode} when the quota service is down`, async () => {
      const down = { handler: () => ({ status: 503, body: "no healthy upstream" }) };
      const setup = await loadRateLimit(globalConfig({ failureMode: mode }), { workers: 2, clusters: { [CLUSTER]: down } });
      const results: StreamResult[] = [];
      for (let i = 0; i < 6; i++) {
        const p = user(setup, i % 2);
        await settle();
        results.push(await p);
      }
      assert.equal(status(results[0]!), expected);
      if (mode === "deny") {
        assert.ok(results.every((r) => status(r) === 503));
        assert.equal(replyHeader(results[0]!, "x-meshward-reason"), "rate_limiter_unavailable");
        assert.deepEqual(JSON.parse(Buffer.from(results[0]!.localReply!.body).toString()), { error: "rate_limiter_unavailable", limit: "per-user" });
      } else if (mode === "allow") {
        assert.ok(results.every((r) => status(r) === 200));
      } else {
        assert.ok(results.every((r) => status(r) === 200), "local bucket capacity 100 is not exhausted by 6 requests");
      }
      assert.ok((setup.host.metric("meshward_rate_limit_lease_failures_total") ?? 0) >= 1);
      assert.equal(setup.host.metric("meshward_rate_limit_failure_mode_total"), 6);
      assert.ok(setup.host.logsMatching("rate-limit: lease for limit 'per-user' failed: status 503").length >= 1);
    });
  }

  it("failureMode local falls back to a local bucket with the limit's own capacity", async () => {
    const config = globalConfig({ failureMode: "local" });
    (config["limits"] as Json[])[0]!["capacity"] = 3;
    (config["limits"] as Json[])[0]!["refillPerSecond"] = 0;
    const setup = await loadRateLimit(config, { workers: 2, clusters: { [CLUSTER]: { handler: () => ({ timeout: true }) } } });
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) {
      const p = user(setup, i % 2);
      await settle();
      codes.push(status(await p));
    }
    assert.deepEqual(codes, [200, 200, 200, 429, 429]);
  });

  it("a request waiting on a lease that never answers gets the failure mode after quota.timeoutMs", async () => {
    const setup = await loadRateLimit(globalConfig({ failureMode: "deny" }), { clusters: { [CLUSTER]: { manual: true } } });
    const s = setup.plugin.worker(0).startStream({ method: "GET", path: "/api", headers: { "x-user-id": "u1" } });
    let done = false;
    void s.completion.then(() => (done = true));
    s.sendRequestHeaders();
    setup.clock.advance(150);
    await settle();
    assert.equal(done, false, "still waiting within the timeout");
    setup.clock.advance(60);
    await settle();
    assert.equal(done, true);
    assert.equal(status(await s.completion), 503);
  });
});

describe("rate-limit filter: global limit against the real quota service on a real redis-server (real time)", function () {
  this.timeout(60_000);
  let redis: RedisProcess;
  let quota: QuotaHarness;
  before(async function () {
    requireRedis(this);
    redis = await startRedis();
  });
  after(async () => {
    await redis?.stop(true);
  });
  afterEach(async () => {
    await quota?.close();
  });

  it("3 proxies × 2 VMs stay within the Redis bucket, and failureMode deny answers 503 once Redis is gone", async () => {
    quota = await startQuota([{ domain: "edge", name: "per-user", capacity: 30, refillPerSecond: 30 }], { redisUrl: redis.url });
    for (let i = 0; i < 100 && !(await quota.quota.ready()).ok; i++) await new Promise((r) => setTimeout(r, 20));
    const clock = new SystemClock();
    const proxies: RateLimitSetup[] = [];
    for (let p = 0; p < 3; p++) {
      const host = new StandIn({ clock, logLevel: "warn" });
      // Real time on a shared machine: a generous lease timeout keeps load spikes from looking like an outage.
      const config = globalConfig({ failureMode: "deny", quota: { cluster: CLUSTER, authority: "meshward-authz", timeoutMs: 3000 } });
      proxies.push(await loadRateLimit(config, { host, workers: 2, clusters: { [CLUSTER]: { handler: quota.handler } } }));
    }
    const started = Date.now();
    let admitted = 0;
    const other: number[] = [];
    while (Date.now() - started < 2500) {
      const batch: Promise<StreamResult>[] = [];
      for (const setup of proxies) for (let w = 0; w < 2; w++) batch.push(user(setup, w, "redis-user"));
      for (const r of await Promise.all(batch)) {
        const s = status(r);
        if (s === 200) admitted++;
        else if (s !== 429) other.push(s);
      }
    }
    const elapsedS = (Date.now() - started) / 1000;
    const ceiling = 30 + 30 * elapsedS;
    console.log(`      global accuracy (redis, real time): admitted ${admitted} ≤ ceiling ${ceiling.toFixed(0)} over ${elapsedS.toFixed(2)} s (${(100 * admitted / ceiling).toFixed(1)}%)`);
    assert.deepEqual(other, []);
    assert.ok(admitted <= ceiling, `admitted ${admitted} > ${ceiling}`);
    assert.ok(admitted >= 30, "at least the initial capacity was admitted");

    await redis.stop(true);
    const codes: number[] = [];
    for (let i = 0; i < 80 && !codes.includes(503); i++) {
      codes.push(status(await user(proxies[0]!, i % 2, "redis-down")));
    }
    assert.ok(codes.includes(503), `no 503 with Redis down: ${codes.join(",")}`);
    assert.ok((proxies[0]!.host.metric("meshward_rate_limit_lease_failures_total") ?? 0) >= 1);
    await redis.start();
  });
});
