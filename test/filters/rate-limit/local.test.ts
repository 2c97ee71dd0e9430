// Local limits of filters/build/rate-limit.wasm through the Envoy stand-in: CAS-correct buckets
// shared by worker VMs, exact refill on the test clock, bounded shared data, response headers,
// key descriptors and dry run.
import { strict as assert } from "node:assert";
import { injectRaces, loadRateLimit, localConfig, replyHeader, send, status, VM_ID } from "./harness.js";

const BUCKETS = "meshward.rate-limit.bucket.edge.per-ip.";

describe("rate-limit filter: local limits (stand-in)", function () {
  this.timeout(30_000);

  it("4 worker VMs racing on one bucket (forced CAS conflicts) admit exactly its capacity when it never refills", async () => {
    const capacity = 25;
    const setup = await loadRateLimit(localConfig({ capacity, refillPerSecond: 0 }), { workers: 4 });
    let next = 0;
    const nested = injectRaces(setup, BUCKETS, 0.5, 42, () => ({ worker: next++ % 4, source: "10.9.9.9:1000" }));
    const outer: Promise<import("../../../tools/standin/index.js").StreamResult>[] = [];
    for (let i = 0; i < 120; i++) outer.push(send(setup.plugin, i % 4, { source: "10.9.9.9:2000" }));
    const results = [...await Promise.all(outer), ...await Promise.all(nested.map((s) => s.completion))];
    const admitted = results.filter((r) => status(r) === 200).length;
    const limited = results.filter((r) => status(r) === 429).length;
    assert.ok(nested.length > 20, `only ${nested.length} interleaved requests were injected`);
    assert.equal(admitted + limited, results.length);
    assert.equal(admitted, capacity);
    assert.ok((setup.host.metric("meshward_rate_limit_cas_retries_total") ?? 0) > 0, "no CAS conflict happened");
    assert.equal(setup.host.metric("meshward_rate_limit_allowed_total"), capacity);
    assert.equal(setup.host.metric("meshward_rate_limit_limited_total"), results.length - capacity);
  });

  it("refills continuously and exactly on the test clock (0.5 token/s: the next token at exactly 2 s)", async () => {
    const { plugin, clock } = await loadRateLimit(localConfig({ capacity: 2, refillPerSecond: 0.5 }), { workers: 2 });
    assert.equal(status(await send(plugin, 0)), 200);
    assert.equal(status(await send(plugin, 1)), 200);
    const first = await send(plugin, 0);
    assert.equal(status(first), 429);
    assert.equal(replyHeader(first, "retry-after"), "2");
    clock.advance(1999);
    const early = await send(plugin, 1);
    assert.equal(status(early), 429);
    assert.equal(replyHeader(early, "retry-after"), "1");
    clock.advance(1);
    assert.equal(status(await send(plugin, 0)), 200);
    assert.equal(status(await send(plugin, 1)), 429);
  });

  it("admits exactly capacity + floor(elapsed × rate) under steady demand (3 tokens/s for 10 s in 10 ms steps)", async () => {
    const { plugin, clock } = await loadRateLimit(localConfig({ capacity: 5, refillPerSecond: 3 }), { workers: 2 });
    let admitted = 0;
    for (let t = 0; t <= 10_000; t += 10) {
      if (status(await send(plugin, (t / 10) % 2)) === 200) admitted++;
      clock.advance(10);
    }
    assert.equal(admitted, 5 + 30);
  });

  it("answers 429 with Retry-After, RateLimit-Policy, RateLimit and a JSON body; adds the headers near the limit", async () => {
    const { plugin } = await loadRateLimit(localConfig({ capacity: 100, refillPerSecond: 50 }, { responseHeaders: true }), { workers: 2 });
    const results = [];
    for (let i = 0; i < 101; i++) results.push(await send(plugin, i % 2));
    assert.ok(results.slice(0, 100).every((r) => status(r) === 200));
    assert.equal(results[0]!.responseHeaders?.get("ratelimit"), undefined, "far from the limit: no headers");
    assert.equal(results[88]!.responseHeaders?.get("ratelimit"), undefined, "11 left: not near yet");
    const near = results[94]!; // 5 left, 95 missing at 50/s → full in 1.9 s
    assert.equal(near.responseHeaders?.get("ratelimit-policy"), "\"per-ip\";q=100;w=2");
    assert.equal(near.responseHeaders?.get("ratelimit"), "\"per-ip\";r=5;t=2");
    const over = results[100]!;
    assert.equal(status(over), 429);
    assert.equal(replyHeader(over, "retry-after"), "1");
    assert.equal(replyHeader(over, "ratelimit-policy"), "\"per-ip\";q=100;w=2");
    assert.equal(replyHeader(over, "ratelimit"), "\"per-ip\";r=0;t=1");
    assert.equal(replyHeader(over, "content-type"), "application/json");
    assert.deepEqual(JSON.parse(Buffer.from(over.localReply!.body).toString()), { error: "rate_limited", limit: "per-ip", retryAfterSeconds: 1 });
    assert.equal(over.upstreamRequest, undefined, "the upstream is never contacted");
  });

  it("omits Retry-After and the reset/window parameters when the limit never refills", async () => {
    const { plugin } = await loadRateLimit(localConfig({ capacity: 1, refillPerSecond: 0 }));
    assert.equal(status(await send(plugin, 0)), 200);
    const over = await send(plugin, 0);
    assert.equal(status(over), 429);
    assert.equal(replyHeader(over, "retry-after"), undefined);
    assert.equal(replyHeader(over, "ratelimit-policy"), "\"per-ip\";q=1");
    assert.equal(replyHeader(over, "ratelimit"), "\"per-ip\";r=0");
    assert.deepEqual(JSON.parse(Buffer.from(over.localReply!.body).toString()), { error: "rate_limited", limit: "per-ip" });
  });

  it("keys remote_address by IP only (IPv4 and IPv6), so clients are limited separately and ports do not matter", async () => {
    const { plugin } = await loadRateLimit(localConfig({ capacity: 1, refillPerSecond: 0 }), { workers: 2 });
    assert.equal(status(await send(plugin, 0, { source: "[2001:db8::7]:1111" })), 200);
    assert.equal(status(await send(plugin, 1, { source: "[2001:db8::7]:2222" })), 429);
    assert.equal(status(await send(plugin, 0, { source: "192.0.2.1:1111" })), 200);
    assert.equal(status(await send(plugin, 1, { source: "192.0.2.1:3333" })), 429);
    assert.equal(status(await send(plugin, 1, { source: "192.0.2.2:3333" })), 200);
  });

  it("builds keys from header, cookie, path and constant descriptors, and skips a limit whose key component is missing", async () => {
    const { plugin, host } = await loadRateLimit({
      domain: "edge",
      limits: [{ name: "per-user-path", key: [{ header: "X-User-Id" }, { cookie: "tenant" }, { source: "path" }, { constant: "v1" }],
        capacity: 1, refillPerSecond: 0, match: { path: { prefix: "/api/" } } }],
    });
    const alice = { "x-user-id": "alice", cookie: "a=1; tenant=acme" };
    assert.equal(status(await send(plugin, 0, { path: "/api/x?q=1", headers: alice })), 200);
    assert.equal(status(await send(plugin, 0, { path: "/api/x?q=2", headers: alice })), 429, "query string is not part of the path");
    assert.equal(status(await send(plugin, 0, { path: "/api/y", headers: alice })), 200, "another path is another key");
    assert.equal(status(await send(plugin, 0, { path: "/api/x", headers: { ...alice, cookie: "tenant=other" } })), 200);
    assert.equal(status(await send(plugin, 0, { path: "/api/x", headers: { "x-user-id": "bob", cookie: "tenant=acme" } })), 200);
    for (let i = 0; i < 3; i++) {
      assert.equal(status(await send(plugin, 0, { path: "/api/x", headers: { cookie: "tenant=acme" } })), 200, "no x-user-id: limit skipped");
      assert.equal(status(await send(plugin, 0, { path: "/api/x", headers: { "x-user-id": "alice" } })), 200, "no cookie: limit skipped");
      assert.equal(status(await send(plugin, 0, { path: "/other", headers: alice })), 200, "match does not apply");
    }
    assert.equal(host.metric("meshward_rate_limit_allowed_total"), 4, "skipped requests are not counted as allowed");
  });

  it("keeps shared data within maxKeysPerLimit slots for 5,000 distinct client IPs", async () => {
    const { plugin, host } = await loadRateLimit(localConfig({ capacity: 1000, refillPerSecond: 1 }, { maxKeysPerLimit: 64 }), { workers: 2 });
    for (let i = 0; i < 5000; i++) {
      const r = await send(plugin, i % 2, { source: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:5000` });
      assert.equal(status(r), 200);
    }
    const all = host.sharedData.keys(VM_ID);
    // Besides the buckets only the counter the VMs take their numbers from (lib/host.ts claimVmOrdinal).
    assert.deepEqual(all.filter((k) => !k.startsWith(BUCKETS)), ["meshward.rate_limit.vm-ordinal"]);
    const keys = all.filter((k) => k.startsWith(BUCKETS));
    assert.ok(keys.length <= 64 && keys.length >= 60, `${keys.length} shared-data keys`);
    for (const k of keys) {
      assert.ok(k.startsWith(BUCKETS));
      assert.equal(host.sharedData.get(VM_ID, k)!.value.byteLength, 32);
    }
    assert.ok((host.metric("meshward_rate_limit_slot_collisions_total") ?? 0) > 4000);
  });

  it("a key colliding with a drained slot inherits the drained bucket (stricter), never a fresh one", async () => {
    const { plugin } = await loadRateLimit(localConfig({ capacity: 3, refillPerSecond: 0 }, { maxKeysPerLimit: 1 }), { workers: 2 });
    for (let i = 0; i < 3; i++) assert.equal(status(await send(plugin, i % 2, { source: "10.0.0.1:1" })), 200);
    assert.equal(status(await send(plugin, 0, { source: "10.0.0.2:1" })), 429);
    assert.equal(status(await send(plugin, 1, { source: "10.0.0.1:1" })), 429);
  });

  it("dry run never rejects but counts and logs what it would have rejected", async () => {
    const { plugin, host } = await loadRateLimit(localConfig({ capacity: 2, refillPerSecond: 0 }, { enforcement: "dryRun" }), { workers: 2 });
    for (let i = 0; i < 5; i++) assert.equal(status(await send(plugin, i % 2)), 200);
    assert.equal(host.metric("meshward_rate_limit_dry_run_limited_total"), 3);
    assert.equal(host.metric("meshward_rate_limit_limited_total") ?? 0, 0);
    assert.equal(host.logsMatching("rate-limit: dry run: limit 'per-ip' would answer 429").length, 3);
  });
});
