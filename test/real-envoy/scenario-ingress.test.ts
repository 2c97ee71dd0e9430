// Seed scenario 1: API gateway Envoys (envoy/local/edge.yaml, two replicas × 4 workers) in front of an
// ingress Envoy that routes on the gateway's x-route choice (as envoy/istio/virtualservice.yaml does),
// with authz-server keeping its quota buckets on a real redis-server. The per-user global limit is
// shared by both gateway processes through leases and is never exceeded.
import { strict as assert } from "node:assert";
import { Redis } from "ioredis";
import { hcmOf, httpListener, loopbackCluster, pluginConfigOf } from "../../tools/envoy/bootstrap.js";
import { requireEnvoy, startEnvoy, type RunningEnvoy } from "../../tools/envoy/harness.js";
import { accessLogFile, scenarioBootstrap, startWorld, waitForAccessLog, type World } from "../../tools/envoy/scenario.js";
import { send, type Reply } from "../../tools/envoy/with-envoy.js";
import { e2ePolicy } from "../../tools/testing/e2e-authz.js";
import { requireRedis, startRedis, type RedisProcess } from "../../tools/testing/redis.js";
import { assertPathGuarantee, NON_CANONICAL_PATHS } from "./path-guarantee.js";
import { assertStickyCanary } from "./sticky-canary.js";

const GLOBAL_CAPACITY = 40;
const LEASE = 5;

/** The e2e policy with the per-user global bucket small and (practically) not refilling. */
const policy = (jwks: string): string => e2ePolicy(jwks).replace("- { domain: edge, name: per-user, capacity: 1000, refillPerSecond: 100 }", `- { domain: edge, name: per-user, capacity: ${GLOBAL_CAPACITY}, refillPerSecond: 0.001 }`);

describe("real Envoy, scenario 1: two API gateway Envoys in front of an ingress Envoy, quota on Redis", function () {
  this.timeout(60_000);
  let redis: RedisProcess | undefined;
  let world: World | undefined;
  let ingress: RunningEnvoy | undefined;
  const gateways: RunningEnvoy[] = [];
  let ports: number[] = [];
  let logPath: string;

  before(async function () {
    const bin = requireEnvoy(this);
    requireRedis(this);
    redis = await startRedis();
    world = await startWorld({ policy, redisUrl: redis.url });
    assert.ok(policy("x").includes(`capacity: ${GLOBAL_CAPACITY}`), "the policy's per-user limit was narrowed");

    // The ingress: routes on x-route like the Istio VirtualService, no meshward filters of its own.
    const routes = [
      { name: "route-v2", match: { prefix: "/", headers: [{ name: "x-route", string_match: { exact: "v2" } }] }, route: { cluster: "app-v2", timeout: "15s" } },
      { name: "route-v1", match: { prefix: "/", headers: [{ name: "x-route", string_match: { exact: "v1" } }] }, route: { cluster: "app-v1", timeout: "15s" } },
      { name: "no-route", match: { prefix: "/" }, direct_response: { status: 503, body: { inline_string: '{"error":"no_route"}' } } },
    ];
    ingress = await startEnvoy({
      bin,
      concurrency: 2,
      config: { static_resources: { listeners: [httpListener("ingress", [], routes)], clusters: [loopbackCluster("app-v1", world.v1.address), loopbackCluster("app-v2", world.v2.address)] } },
    });
    const ingressAddress = `127.0.0.1:${ingress.listenerPort("ingress")}`;

    logPath = accessLogFile(world, "gateway");
    for (let i = 0; i < 2; i++) {
      const config = scenarioBootstrap("envoy/local/edge.yaml", world, { endpoints: { "app-v1": ingressAddress, "app-v2": ingressAddress }, burstCapacity: 1000, ...(i === 0 ? { accessLogPath: logPath } : {}) });
      const identity = pluginConfigOf(hcmOf(config), "rate-limit-identity");
      const conf = identity.get();
      // (scenarioBootstrap gives the lease call 3 s: a slow lease would fall back to the local bucket,
      // failureMode "local"; the test checks below that no lease failed.)
      conf["limits"][0] = { ...conf["limits"][0], capacity: GLOBAL_CAPACITY, refillPerSecond: 0.001, global: { lease: LEASE, minLease: 1 } };
      identity.set(conf);
      gateways.push(await startEnvoy({ bin, config, concurrency: 4, args: ["--file-flush-interval-msec", "50"] }));
    }
    ports = gateways.map((g) => g.listenerPort("edge"));
  });

  after(async function () {
    await Promise.all(gateways.map((g) => g.stop()));
    await ingress?.stop();
    await world?.stop();
    await redis?.stop();
  });

  const saw = (r: Reply) => JSON.parse(r.body) as { upstream: string; headers: Record<string, string> };

  it("authenticates at the gateway: 401 with a challenge before the ingress is ever reached", async function () {
    const r = await send(ports[0]!, "/api/orders/1", { headers: { "x-route": "v2" } });
    assert.equal(r.status, 401);
    assert.match(String(r.headers["www-authenticate"]), /^Bearer/);
    assert.equal(world!.v1.received.length + world!.v2.received.length, 0);
    const stats = await ingress!.stats("http.ingress.downstream_rq_total");
    assert.equal(stats.get("http.ingress.downstream_rq_total"), 0);
  });

  it("carries identity, the route choice and traceparent through both Envoys; forged identity never arrives", async function () {
    const beta = await world!.issuer.sign({ sub: "bob", roles: ["reader"], tier: "beta" });
    const tp = "00-11111111111111111111111111111111-2222222222222222-01";
    const r = await send(ports[1]!, "/api/orders/2", { headers: { authorization: `Bearer ${beta}`, "x-user-id": "mallory", traceparent: tp } });
    assert.equal(r.status, 200, r.body);
    const seen = saw(r);
    assert.equal(seen.upstream, "app-v2", "the ingress honoured the gateway's x-route");
    assert.equal(seen.headers["x-user-id"], "bob");
    assert.equal(seen.headers["x-user-tier"], "beta");
    assert.equal(seen.headers["traceparent"], tp);
    const plain = await world!.issuer.sign({ sub: "mallory", roles: ["reader"] });
    const p = await send(ports[0]!, "/api/orders/2", { headers: { authorization: `Bearer ${plain}`, "x-user-tier": "beta", "x-route": "v2" } });
    assert.equal(p.status, 200, p.body);
    assert.equal(saw(p).headers["x-user-tier"], undefined);
  });

  it("keeps a user's canary choice across both gateway processes and all their workers", async function () {
    const users = Array.from({ length: 30 }, (_, i) => `c${i}`);
    await assertStickyCanary(world!, users, 4, (i, round) => ports[(i + round) % 2]!);
  });

  it("never admits more than the global per-user limit across 2 Envoys × 4 workers (leases from authz-server on Redis)", async function () {
    const token = await world!.issuer.sign({ sub: "global-user", roles: ["reader"] });
    const upstreamBefore = world!.v1.received.length + world!.v2.received.length;
    const TOTAL = 120;
    // Three waves of concurrent connections, alternating between the two gateways.
    const replies: Reply[] = [];
    for (let wave = 0; wave < 3; wave++) {
      replies.push(...(await Promise.all(Array.from({ length: TOTAL / 3 }, (_, i) => send(ports[i % 2]!, "/api/orders/1", { headers: { authorization: `Bearer ${token}` } })))));
    }
    const ok = replies.filter((r) => r.status === 200).length;
    const limited = replies.filter((r) => r.status === 429);
    assert.equal(ok + limited.length, TOTAL, `statuses: ${[...new Set(replies.map((r) => r.status))].join(",")}`);
    assert.ok(ok <= GLOBAL_CAPACITY, `admitted ${ok} > global capacity ${GLOBAL_CAPACITY}`);
    // Tokens still pooled in a proxy (at most a lease per proxy) are the only under-admission.
    assert.ok(ok >= GLOBAL_CAPACITY - 2 * LEASE, `admitted only ${ok} of ${GLOBAL_CAPACITY}`);
    assert.equal(world!.v1.received.length + world!.v2.received.length - upstreamBefore, ok);
    const r = limited[0]!;
    assert.match(String(r.headers["retry-after"]), /^\d+$/);
    assert.match(String(r.headers["ratelimit"]), /"per-user";r=0/);
    // Both gateways leased from the quota service, which kept the bucket in Redis; no lease failed.
    for (const g of gateways) {
      const s = await g.stats("meshward_rate_limit_lease");
      const sum = (re: RegExp) => [...s].filter(([k]) => re.test(k)).reduce((a, [, v]) => a + v, 0);
      assert.ok(sum(/lease_requests_total$/) > 0, `a gateway made no lease call: ${JSON.stringify([...s])}`);
      assert.equal(sum(/lease_failures_total$/), 0, `lease failures: ${JSON.stringify([...s])}`);
    }
    const client = new Redis(redis!.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await client.connect();
      const keys = await client.keys("*");
      assert.ok(keys.some((k) => k.includes("per-user")), `redis keys: ${keys.join(", ")}`);
    } finally {
      client.disconnect();
    }
  });

  it("logs the decision id with the request in the gateway's access log", async function () {
    const token = await world!.issuer.sign({ sub: "logged", roles: ["reader"] });
    const tp = "00-33333333333333333333333333333333-4444444444444444-01";
    const r = await send(ports[0]!, "/api/orders/3", { headers: { authorization: `Bearer ${token}`, traceparent: tp } });
    const line = await waitForAccessLog(logPath, (l) => l["traceparent"] === tp);
    assert.equal(line["decision_id"], r.headers["x-meshward-decision-id"]);
  });

  it("never lets a non-canonical path be authorised as one path and routed as another (through both hops)", async function () {
    const token = await world!.issuer.sign({ sub: "paths", roles: ["reader"] });
    await assertPathGuarantee({ port: ports[0]!, token, world: world!, paths: NON_CANONICAL_PATHS });
  });

  it("keeps the gateways' logs free of Wasm errors", function () {
    for (const g of gateways) assert.deepEqual(g.errorLines(), []);
  });

  it("fails closed with 503 at the gateway when authz-server is down", async function () {
    await world!.authz.stop();
    const token = await world!.issuer.sign({ sub: "late", roles: ["reader"] });
    for (const port of ports) assert.equal((await send(port, "/api/orders/1", { headers: { authorization: `Bearer ${token}` } })).status, 503);
  });
});
