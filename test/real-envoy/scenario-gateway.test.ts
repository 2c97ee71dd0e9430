// Seed scenario 2: the meshward gateway inside the cluster, straight to the services. The gateway
// bootstrap embedded in envoy/k8s (ConfigMap meshward-gateway) runs in a real Envoy on 4 workers with
// authz-server and two loopback services; every case is decided by what Envoy really does.
import { strict as assert } from "node:assert";
import { requireEnvoy, startEnvoy, type RunningEnvoy } from "../../tools/envoy/harness.js";
import { accessLogFile, scenarioBootstrap, startWorld, waitForAccessLog, type World } from "../../tools/envoy/scenario.js";
import { send, type Reply } from "../../tools/envoy/with-envoy.js";
import { assertPathGuarantee, NON_CANONICAL_PATHS } from "./path-guarantee.js";
import { assertStickyCanary } from "./sticky-canary.js";

const TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const BURST = 20;

describe("real Envoy, scenario 2: gateway straight to services (envoy/k8s ConfigMap bootstrap, 4 workers)", function () {
  this.timeout(60_000);
  let world: World | undefined;
  let envoy: RunningEnvoy | undefined;
  let port: number;
  let logPath: string;

  before(async function () {
    const bin = requireEnvoy(this);
    world = await startWorld();
    logPath = accessLogFile(world, "gateway");
    const config = scenarioBootstrap("envoy/k8s/gateway/envoy-configmap.yaml", world, { accessLogPath: logPath, burstCapacity: BURST });
    envoy = await startEnvoy({ bin, config, concurrency: 4, args: ["--file-flush-interval-msec", "50"] });
    port = envoy.listenerPort("edge");
  });

  after(async function () {
    await envoy?.stop();
    await world?.stop();
  });

  const upstreamSaw = (r: Reply) => JSON.parse(r.body) as { upstream: string; path: string; headers: Record<string, string> };

  it("answers an anonymous request 401 with a Bearer challenge and a decision id", async function () {
    const r = await send(port, "/api/orders/1");
    assert.equal(r.status, 401);
    assert.match(String(r.headers["www-authenticate"]), /^Bearer realm="[^"]+"/);
    assert.match(String(r.headers["x-meshward-decision-id"]), /^[0-9A-Za-z-]{8,}$/);
    assert.equal(world!.v1.received.length + world!.v2.received.length, 0, "nothing reached a service");
  });

  it("answers 403 to a valid user without the permission, and to an expired token 401", async function () {
    const nobody = await world!.issuer.sign({ sub: "nobody", roles: [] });
    const r = await send(port, "/api/orders/1", { headers: { authorization: `Bearer ${nobody}` } });
    assert.equal(r.status, 403, r.body);
    assert.match(String(r.headers["www-authenticate"]), /error="insufficient_scope"/);
    const expired = await world!.issuer.sign({ sub: "alice", roles: ["reader"] }, -60);
    const e = await send(port, "/api/orders/1", { headers: { authorization: `Bearer ${expired}` } });
    assert.equal(e.status, 401);
    assert.match(String(e.headers["www-authenticate"]), /error="invalid_token"/);
  });

  it("allows a reader: identity headers injected, client-forged identity and route headers gone before the service", async function () {
    const token = await world!.issuer.sign({ sub: "alice", roles: ["reader"] });
    const r = await send(port, "/api/orders/1", {
      headers: { authorization: `Bearer ${token}`, "x-user-id": "mallory", "x-user-tier": "beta", "x-route": "v2", traceparent: TRACEPARENT },
    });
    assert.equal(r.status, 200, r.body);
    const seen = upstreamSaw(r);
    assert.equal(seen.headers["x-user-id"], "alice");
    assert.equal(seen.headers["x-user-tier"], undefined, "a tier the token does not carry never reaches the service");
    assert.equal(seen.upstream, `app-${seen.headers["x-route"]}`);
    assert.ok(["v1", "v2"].includes(seen.headers["x-route"] as string));
    assert.match(String(seen.headers["x-meshward-decision-id"]), /.+/);
  });

  it("lets traceparent reach the service and logs the decision id in Envoy's access log", async function () {
    const token = await world!.issuer.sign({ sub: "trace-user", roles: ["reader"] });
    const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const r = await send(port, "/api/orders/7", { headers: { authorization: `Bearer ${token}`, traceparent: tp } });
    assert.equal(r.status, 200, r.body);
    const seen = upstreamSaw(r);
    assert.equal(seen.headers["traceparent"], tp);
    const decisionId = String(r.headers["x-meshward-decision-id"]);
    assert.equal(seen.headers["x-meshward-decision-id"], decisionId);
    const line = await waitForAccessLog(logPath, (l) => l["traceparent"] === tp);
    assert.equal(line["decision_id"], decisionId);
    assert.equal(line["response_decision_id"], decisionId);
    assert.equal(line["status"], 200);
    assert.equal(line["path"], "/api/orders/7");
    // The denial is logged with its decision id too.
    const denied = await send(port, "/api/orders/8", { headers: { traceparent: TRACEPARENT } });
    const deniedLine = await waitForAccessLog(logPath, (l) => l["traceparent"] === TRACEPARENT && l["status"] === 401);
    assert.equal(deniedLine["response_decision_id"], denied.headers["x-meshward-decision-id"]);
  });

  it("sends beta-tier users to v2 and keeps each user's canary choice across the 4 workers", async function () {
    const beta = await world!.issuer.sign({ sub: "bob", roles: ["reader"], tier: "beta" });
    for (let i = 0; i < 4; i++) {
      const r = await send(port, "/api/orders/1", { headers: { authorization: `Bearer ${beta}` } });
      assert.equal(upstreamSaw(r).upstream, "app-v2");
    }
    await assertStickyCanary(world!, Array.from({ length: 40 }, (_, i) => `u${i}`), 3, () => port);
    const workers = [...(await envoy!.stats("worker_"))].filter(([k, v]) => /^listener\..*\.worker_\d+\.downstream_cx_total$/.test(k) && v > 0);
    assert.equal(workers.length, 4, "connections reached all 4 workers");
  });

  it("sheds a burst from one client with exactly the per-IP capacity admitted, then 429 with Retry-After and RateLimit", async function () {
    const replies = await Promise.all(Array.from({ length: 60 }, () => send(port, "/api/orders/1", { headers: { "x-burst-test": "1" } })));
    const limited = replies.filter((r) => r.status === 429);
    // Admitted requests go on to ext_authz, which answers 401 (anonymous).
    assert.equal(replies.filter((r) => r.status === 401).length, BURST);
    assert.equal(limited.length, 60 - BURST);
    const r = limited[0]!;
    assert.match(String(r.headers["retry-after"]), /^\d+$/);
    assert.match(String(r.headers["ratelimit"]), /"per-ip";r=0/);
    assert.match(String(r.headers["ratelimit-policy"]), new RegExp(`"per-ip";q=${BURST}`));
  });

  it("never lets a non-canonical path be authorised as one path and routed as another", async function () {
    const token = await world!.issuer.sign({ sub: "carol", roles: ["reader"] });
    await assertPathGuarantee({ port, token, world: world!, paths: NON_CANONICAL_PATHS });
  });

  it("keeps Envoy's log free of Wasm errors", function () {
    assert.deepEqual(envoy!.errorLines(), []);
  });

  // Last: it stops authz-server.
  it("fails closed with 503 when authz-server is down", async function () {
    await world!.authz.stop();
    const token = await world!.issuer.sign({ sub: "alice", roles: ["reader"] });
    const before = world!.v1.received.length + world!.v2.received.length;
    const r = await send(port, "/api/orders/1", { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 503);
    assert.equal(world!.v1.received.length + world!.v2.received.length, before, "nothing reached a service");
  });
});
