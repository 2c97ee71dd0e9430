// The edge chain cases against a real Envoy running envoy/local/edge.yaml (ports rewritten to loopback
// port-0 servers). Runs only where ENVOY_BIN (or `envoy` on PATH) exists; otherwise skipped with the reason.
import { strict as assert } from "node:assert";
import { shippedBootstrap } from "../../tools/envoy/bootstrap.js";
import { startEnvoy, requireEnvoy, type RunningEnvoy } from "../../tools/envoy/harness.js";
import { send, type Reply } from "../../tools/envoy/with-envoy.js";
import { startWorld, type E2eWorld } from "../../tools/testing/e2e-world.js";

describe("edge gateway chain on a real Envoy (ENVOY_BIN)", function () {
  this.timeout(60_000);
  let world: E2eWorld;
  let envoy: RunningEnvoy | undefined;
  let port: number;

  before(async function () {
    const bin = requireEnvoy(this);
    world = await startWorld();
    const config = shippedBootstrap("envoy/local/edge.yaml", world.endpoints, { vmEnv: world.hostEnv }) as any;
    envoy = await startEnvoy({ bin, config, concurrency: 4 });
    port = envoy.listenerPort("edge");
  });

  after(async function () {
    await envoy?.stop();
    await world?.close();
  });

  it("loads every Wasm filter on 4 workers without a Wasm error in Envoy's log", async function () {
    const stats = await envoy!.stats("wasm");
    assert.deepEqual(envoy!.errorLines(), []);
    // One VM per worker plus the main thread's, for each of the two wasm modules (vm_ids).
    const active = [...stats].filter(([k]) => /wasm\.envoy\.wasm\.runtime\.v8\.active$/.test(k));
    assert.ok(active.length > 0 && active.every(([, v]) => v >= 5), `active V8 VMs: ${JSON.stringify(Object.fromEntries(stats))}`);
  });

  it("counts header-router requests under meshward_rule and meshward_route tags, with no rule or route name in a metric name", async function () {
    // Envoy 1.40 strips its custom-stat namespace ("wasmcustom.") in Prometheus output; the shipped
    // stats_tags turn the rule and route into tags, so dashboards can aggregate.
    const scrape = async () => (await envoy!.admin("/stats?format=prometheus")).body.split("\n").filter((l) => l.includes("meshward_header_router"));
    const value = (lines: string[], series: string) => Number(lines.find((l) => l.startsWith(`${series} `))?.split(" ")[1] ?? 0);
    const rule = 'meshward_header_router_rule_requests_total{meshward_rule="beta_users"}';
    const route = 'meshward_header_router_target_requests_total{meshward_route="v2"}';
    const before = await scrape();
    const token = await world.issuer.sign({ sub: "bob", roles: ["reader"], tier: "beta" });
    for (let i = 0; i < 3; i++) assert.equal((await send(port, "/api/orders/1", { headers: { authorization: `Bearer ${token}` } })).status, 200);
    const after = await scrape();
    assert.equal(value(after, rule) - value(before, rule), 3, after.join("\n"));
    assert.equal(value(after, route) - value(before, route), 3, after.join("\n"));
    const names = new Set(after.filter((l) => !l.startsWith("#")).map((l) => l.split(/[{ ]/)[0]));
    for (const n of names) assert.doesNotMatch(n!, /beta_users|canary|_v[12]_/, `a rule or route name left in metric ${n}`);
  });

  it("denies an anonymous request with 401 and a Bearer challenge", async function () {
    const r = await send(port, "/api/orders/1");
    assert.equal(r.status, 401);
    assert.match(String(r.headers["www-authenticate"]), /^Bearer/);
    assert.ok(r.headers["x-meshward-decision-id"]);
  });

  it("routes a reader with identity headers and an x-route the client cannot choose", async function () {
    const token = await world.issuer.sign({ sub: "alice", roles: ["reader"] });
    const r = await send(port, "/api/orders/1", { headers: { authorization: `Bearer ${token}`, "x-route": "admin", traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" } });
    assert.equal(r.status, 200, r.body);
    const echoed = JSON.parse(r.body) as { upstream: string; headers: Record<string, string> };
    assert.equal(echoed.headers["x-user-id"], "alice");
    assert.ok(["v1", "v2"].includes(echoed.headers["x-route"] as string));
    assert.equal(echoed.upstream, `app-${echoed.headers["x-route"]}`);
    assert.equal(echoed.headers["traceparent"], "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  });

  it("sends beta-tier users to v2", async function () {
    const token = await world.issuer.sign({ sub: "bob", roles: ["reader"], tier: "beta" });
    const r = await send(port, "/api/orders/1", { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.headers["x-upstream"], "app-v2");
  });

  it("sheds a burst from one client IP with 429 and Retry-After", async function () {
    let limited: Reply | undefined;
    for (let batch = 0; batch < 15 && !limited; batch++) {
      const replies = await Promise.all(Array.from({ length: 20 }, () => send(port, "/api/orders/1")));
      limited = replies.find((r) => r.status === 429);
    }
    assert.ok(limited, "a 429 within 300 requests (capacity 100, refill 50/s)");
    assert.match(String(limited.headers["retry-after"]), /^\d+$/);
  });
});
