// Both filters and the no-op baseline, each loaded by a real Envoy with --concurrency 4 (one V8 VM per
// worker): they serve, Envoy logs no Wasm error, and Envoy's own wasm stats read back. Header routing
// by header, cookie, query and path glob; a sticky split stable over all workers; a local limit that
// admits exactly its capacity for one key from concurrent connections spread over the 4 workers.
import { strict as assert } from "node:assert";
import { requireEnvoy } from "../../tools/envoy/harness.js";
import { withEnvoy, type EnvoyUnderTest, type Reply } from "../../tools/envoy/with-envoy.js";

const WORKERS = 4;

async function wasmVmStats(t: EnvoyUnderTest): Promise<{ active: number; created: number }> {
  const stats = await t.envoy.stats("wasm");
  return {
    active: stats.get("wasm.envoy.wasm.runtime.v8.active") ?? -1,
    created: stats.get("wasm.envoy.wasm.runtime.v8.created") ?? -1,
  };
}

/** The worker thread id that served a request, from Envoy's own per-worker connection stats. */
async function perWorkerDownstreamRequests(t: EnvoyUnderTest): Promise<number[]> {
  const stats = await t.envoy.stats("worker_");
  return [...stats].filter(([k]) => /^listener\..*\.worker_\d+\.downstream_cx_total$/.test(k)).map(([, v]) => v);
}

describe("real Envoy: the no-op baseline on 4 workers", function () {
  this.timeout(60_000);
  let t: EnvoyUnderTest | undefined;
  before(async function () {
    requireEnvoy(this);
    // noop.wasm is built with the SDK whose onConfigure traps on an empty configuration (docs/proxy-wasm-host.md).
    t = await withEnvoy({ filters: [{ plugin: "noop", config: { baseline: true } }], concurrency: WORKERS });
  });
  after(async () => t?.stop());

  it("loads one VM per worker, serves requests unchanged and logs no Wasm error", async function () {
    const replies = await Promise.all(Array.from({ length: 16 }, (_, i) => t!.send(`/n/${i}?q=${i}`, { headers: { "x-probe": String(i) } })));
    assert.deepEqual(replies.map((r) => r.status), Array(16).fill(200));
    const seen = t!.received().map((r) => `${r.path} ${String(r.headers["x-probe"])}`).sort();
    assert.deepEqual(seen, Array.from({ length: 16 }, (_, i) => `/n/${i}?q=${i} ${i}`).sort());
    const vms = await wasmVmStats(t!);
    // Envoy 1.40, one vm_id: one VM per worker plus two on the main thread (see docs/testing-with-envoy.md).
    assert.equal(vms.active, WORKERS + 2, `active V8 VMs ${vms.active}`);
    assert.equal(vms.created, WORKERS + 3, `created V8 VMs ${vms.created}`);
    assert.deepEqual(t!.envoy.errorLines(), []);
  });
});

describe("real Envoy: header-router on 4 workers", function () {
  this.timeout(60_000);
  let t: EnvoyUnderTest | undefined;
  before(async function () {
    requireEnvoy(this);
    t = await withEnvoy({
      concurrency: WORKERS,
      upstreams: ["stable", "beta", "canary", "legacy", "reports"],
      routeHeader: "x-route",
      filters: [
        {
          plugin: "header-router",
          config: {
            routeHeader: "x-route",
            rules: [
              { name: "by-header", match: { headers: [{ name: "x-tier", exact: "beta" }] }, route: "beta" },
              { name: "by-cookie", match: { cookies: [{ name: "variant", exact: "legacy" }] }, route: "legacy" },
              { name: "by-query", match: { query: [{ name: "preview", exact: "1" }] }, route: "beta" },
              { name: "by-glob", match: { path: { glob: "/reports/*/pdf" } }, route: "reports" },
              { name: "canary", match: { path: { prefix: "/api/" } }, split: { stickyOn: { header: "x-user-id" }, targets: [{ route: "canary", weight: 30 }, { route: "stable", weight: 70 }] } },
            ],
            default: "stable",
            requestHeadersToAdd: [{ name: "x-routed-by", value: "meshward" }],
            requestHeadersToRemove: ["x-debug"],
          },
        },
      ],
    });
  });
  after(async () => t?.stop());

  const upstreamOf = (r: Reply): string => String(r.headers["x-upstream"]);

  it("routes by header, cookie, query and path glob; otherwise the default", async function () {
    const cases: [string, Record<string, string>, string][] = [
      ["/things", { "x-tier": "beta" }, "beta"],
      ["/things", { cookie: "a=b; variant=legacy" }, "legacy"],
      ["/things?x=1&preview=1", {}, "beta"],
      ["/reports/2026/pdf", {}, "reports"],
      ["/reports/2026/csv", {}, "stable"],
      ["/things", { "x-tier": "gold", cookie: "variant=modern" }, "stable"],
    ];
    for (const [path, headers, want] of cases) {
      const r = await t!.send(path, { headers });
      assert.equal(r.status, 200, r.body);
      assert.equal(upstreamOf(r), want, `${path} ${JSON.stringify(headers)}`);
    }
  });

  it("overwrites a client-sent route header, adds and removes the configured headers", async function () {
    t!.clear();
    const r = await t!.send("/things", { headers: { "x-route": "reports", "x-debug": "1" } });
    assert.equal(upstreamOf(r), "stable");
    const seen = t!.received().at(-1)!;
    assert.equal(seen.headers["x-route"], "stable");
    assert.equal(seen.headers["x-routed-by"], "meshward");
    assert.equal(seen.headers["x-debug"], undefined);
  });

  it("keeps a sticky split stable for each user across all 4 workers, near its weights", async function () {
    const users = Array.from({ length: 60 }, (_, i) => `user-${i}`);
    const before = await perWorkerDownstreamRequests(t!);
    const choice = new Map<string, Set<string>>();
    // 5 rounds × 60 users, each request on a new connection: Envoy spreads them over its workers.
    for (let round = 0; round < 5; round++) {
      const replies = await Promise.all(users.map((u) => t!.send("/api/orders", { headers: { "x-user-id": u } })));
      replies.forEach((r, i) => {
        const u = users[i] as string;
        if (!choice.has(u)) choice.set(u, new Set());
        choice.get(u)!.add(upstreamOf(r));
      });
    }
    const after = await perWorkerDownstreamRequests(t!);
    const busyWorkers = after.filter((v, i) => v - (before[i] ?? 0) > 0).length;
    assert.equal(busyWorkers, WORKERS, `connections were spread over ${busyWorkers} worker(s)`);
    for (const [u, s] of choice) assert.equal(s.size, 1, `${u} went to ${[...s].join(" and ")}`);
    const canary = [...choice.values()].filter((s) => s.has("canary")).length;
    assert.ok(canary >= 6 && canary <= 34, `canary share ${canary}/60 for weight 30%`);
  });

  it("keeps Envoy's log free of Wasm errors and reports its VMs and the filter's own counters", async function () {
    assert.deepEqual(t!.envoy.errorLines(), []);
    const m = await t!.envoy.stats("meshward");
    // Rule names appear with "-" as "_" (the filter's metricPart); counts are summed over all 4 VMs.
    const rule = (n: string) => m.get(`wasmcustom.meshward_header_router_rule_${n}_requests_total`);
    assert.deepEqual([rule("by_header"), rule("by_cookie"), rule("by_query"), rule("by_glob"), rule("canary")], [1, 1, 1, 1, 300], JSON.stringify([...m]));
    assert.equal(m.get("wasmcustom.meshward_header_router_unmatched_requests_total"), 0);
    assert.equal(m.get("wasm.meshward.header-router.vm_reload_failure"), 0);
    const vms = await wasmVmStats(t!);
    assert.equal(vms.active, WORKERS + 2, `active V8 VMs ${vms.active}`);
  });
});

describe("real Envoy: rate-limit (local) on 4 workers", function () {
  this.timeout(60_000);
  const CAPACITY = 25;
  let t: EnvoyUnderTest | undefined;
  before(async function () {
    requireEnvoy(this);
    t = await withEnvoy({
      concurrency: WORKERS,
      filters: [
        {
          plugin: "rate-limit",
          config: {
            domain: "test",
            enforcement: "enforce",
            responseHeaders: true,
            // One token per 1000 s: no refill within the test, so "exactly capacity" is exact whatever the
            // timing, and the 429 still has a Retry-After (with refill 0 the filter sends none: never).
            limits: [{ name: "per-key", key: [{ header: "x-key" }], capacity: CAPACITY, refillPerSecond: 0.001 }],
          },
        },
      ],
    });
  });
  after(async () => t?.stop());

  it("admits exactly its capacity for one key from concurrent connections over all workers, then 429 with Retry-After and RateLimit", async function () {
    const before = await perWorkerDownstreamRequests(t!);
    const replies = await Promise.all(Array.from({ length: 100 }, () => t!.send("/x", { headers: { "x-key": "k1" } })));
    const after = await perWorkerDownstreamRequests(t!);
    assert.equal(after.filter((v, i) => v - (before[i] ?? 0) > 0).length, WORKERS, "requests reached every worker");
    const ok = replies.filter((r) => r.status === 200).length;
    const limited = replies.filter((r) => r.status === 429);
    assert.equal(ok, CAPACITY);
    assert.equal(limited.length, 100 - CAPACITY);
    const r = limited[0]!;
    const retryAfter = Number(r.headers["retry-after"]);
    assert.ok(retryAfter > 900 && retryAfter <= 1000, `Retry-After ${String(r.headers["retry-after"])}`);
    assert.match(String(r.headers["ratelimit"]), /"per-key";r=0/);
    assert.match(String(r.headers["ratelimit-policy"]), /"per-key";q=25/);
    assert.equal(t!.upstreams["default"]!.received.length, CAPACITY, "only admitted requests reached the upstream");
    // Another key has its own bucket.
    assert.equal((await t!.send("/x", { headers: { "x-key": "k2" } })).status, 200);
    // The filter's own counters, summed over the VMs by Envoy (metric names appear under wasmcustom.).
    const m = await t!.envoy.stats("meshward_rate_limit");
    assert.equal(m.get("wasmcustom.meshward_rate_limit_allowed_total"), CAPACITY + 1);
    assert.equal(m.get("wasmcustom.meshward_rate_limit_limited_total"), 100 - CAPACITY);
  });

  it("keeps Envoy's log free of Wasm errors", async function () {
    assert.deepEqual(t!.envoy.errorLines(), []);
    const vms = await wasmVmStats(t!);
    assert.equal(vms.active, WORKERS + 2, `active V8 VMs ${vms.active}`);
  });
});
