// envoy/local/edge.yaml end to end in the stand-in: the real rate-limit and header-router .wasm with the
// configuration in the YAML, ext_authz over gRPC to the real authz-server, header routes, echo upstreams.
import { strict as assert } from "node:assert";
import { loadEnvoyConfigChain, type EnvoyConfigChain } from "../../tools/standin/envoy-config-chain.js";
import { StandIn } from "../../tools/standin/index.js";
import type { Issuer, RunningAuthz } from "../../tools/testing/e2e-authz.js";
import type { EchoUpstream } from "../../tools/testing/echo-upstream.js";
import { startE2eWorld, type E2eWorld } from "../../tools/testing/e2e-world.js";

describe("edge gateway chain (envoy/local/edge.yaml) through the stand-in", function () {
  let world: E2eWorld;
  let issuer: Issuer;
  let authz: RunningAuthz;
  let v1: EchoUpstream;
  let v2: EchoUpstream;
  let chain: EnvoyConfigChain;

  before(async function () {
    world = await startE2eWorld(this);
    ({ issuer, authz, v1, v2 } = world);
    chain = await loadEnvoyConfigChain({ config: "edge.yaml", standIn: new StandIn({ logLevel: "warn" }), workers: 2, endpoints: world.endpoints });
  });

  after(async function () {
    chain?.close();
    await world?.close();
  });

  const bearer = async (claims: Record<string, unknown>): Promise<Record<string, string>> => ({ authorization: `Bearer ${await issuer.sign(claims)}` });
  const header = (r: { responseHeaders: { get(k: string): string | undefined } | undefined }, name: string): string | undefined => r.responseHeaders?.get(name);

  it("runs the filters in the shipped order (envoy/local/edge.yaml): rate-limit, ext_authz, header-router, identity rate-limit, router", function () {
    assert.deepEqual(chain.filterNames, ["meshward.rate-limit.edge", "envoy.filters.http.ext_authz", "meshward.header-router", "meshward.rate-limit.identity", "envoy.filters.http.router"]);
  });

  it("denies an anonymous request with 401, a Bearer challenge and a decision id, and never reaches an upstream", async function () {
    const before = v1.received.length + v2.received.length;
    const r = await chain.run({ method: "GET", path: "/api/orders/1", authority: "api.example.com", source: "10.20.0.1:40000" });
    assert.equal(r.responseStatus, 401);
    assert.match(header(r, "www-authenticate") ?? "", /^Bearer/);
    const decisionId = header(r, "x-meshward-decision-id");
    assert.ok(decisionId);
    assert.equal((JSON.parse(r.responseBodyText) as { decisionId: string }).decisionId, decisionId);
    assert.equal(r.upstreamRequest, undefined);
    assert.equal(v1.received.length + v2.received.length, before);
    assert.equal(r.accessLog?.["response_decision_id"], decisionId);
    assert.equal(r.accessLog?.["status"], 401);
  });

  it("routes a reader to the version header-router chose, with identity headers from the token, whatever x-route the client sent", async function () {
    const r = await chain.run({ method: "GET", path: "/api/orders/7", authority: "api.example.com", source: "10.20.0.2:40000", headers: { ...(await bearer({ sub: "alice", roles: ["reader"] })), "x-route": "admin-backend", "x-user-id": "mallory" } });
    assert.equal(r.responseStatus, 200);
    const seen = r.upstreamRequest?.headers;
    const route = seen?.get("x-route");
    assert.ok(route === "v1" || route === "v2", `x-route ${route}`);
    assert.equal(r.cluster, `app-${route}`);
    assert.equal(header(r, "x-upstream"), `app-${route}`);
    assert.equal(seen?.get("x-user-id"), "alice");
    assert.equal(r.routeCacheClears.length > 0, true, "header-router cleared the route cache");
    const decisionId = seen?.get("x-meshward-decision-id");
    assert.ok(decisionId);
    assert.equal(r.accessLog?.["decision_id"], decisionId);
    assert.equal(r.accessLog?.["route_name"], `route-${route}`);
    assert.equal((r.accessLog?.["authz"] as Record<string, unknown> | null)?.["decisionId"], decisionId);
  });

  it("sends beta-tier users to v2 (header-router rule on the x-user-tier header ext_authz injected)", async function () {
    for (const sub of ["beta-1", "beta-2", "beta-3"]) {
      const r = await chain.run({ path: "/api/orders/1", authority: "api.example.com", source: "10.20.0.3:40000", headers: await bearer({ sub, roles: ["reader"], tier: "beta" }) });
      assert.equal(r.responseStatus, 200);
      assert.equal(r.upstreamRequest?.headers.get("x-user-tier"), "beta");
      assert.equal(header(r, "x-upstream"), "app-v2");
    }
  });

  it("ignores a client-sent x-user-tier: identity headers the token does not carry are removed", async function () {
    const r = await chain.run({ path: "/api/orders/1", authority: "api.example.com", source: "10.20.0.4:40000", headers: { ...(await bearer({ sub: "carol", roles: ["reader"] })), "x-user-tier": "beta" } });
    assert.equal(r.responseStatus, 200);
    assert.equal(r.upstreamRequest?.headers.get("x-user-tier"), undefined);
  });

  it("splits canary traffic 10/90 sticky per user: each user keeps its version on every worker, and both versions get users", async function () {
    const users = 120;
    const first = new Map<string, string>();
    for (let i = 0; i < users; i++) {
      const sub = `canary-user-${i}`;
      const r = await chain.run({ path: "/api/orders/1", authority: "api.example.com", source: `10.30.${i >> 8}.${i & 255}:40000`, headers: await bearer({ sub, roles: ["reader"] }) }, i % 2);
      assert.equal(r.responseStatus, 200, r.responseBodyText);
      first.set(sub, r.upstreamRequest?.headers.get("x-route") ?? "");
    }
    const v2Users = [...first.values()].filter((v) => v === "v2").length;
    assert.ok(v2Users > 0 && v2Users < users / 2, `v2 got ${v2Users} of ${users} users (weight 10 of 100)`);
    for (let i = 0; i < 20; i++) {
      const sub = `canary-user-${i}`;
      const r = await chain.run({ path: "/api/orders/2", authority: "api.example.com", source: `10.31.0.${i}:40000`, headers: await bearer({ sub, roles: ["reader"] }) }, (i + 1) % 2);
      assert.equal(r.upstreamRequest?.headers.get("x-route"), first.get(sub), `${sub} is sticky`);
    }
  });

  it("answers 429 with Retry-After and RateLimit headers once a client IP exhausts per-ip, before authz-server is asked", async function () {
    const source = "10.40.0.1:40000";
    let last;
    for (let i = 0; i < 100; i++) {
      last = await chain.run({ path: "/api/orders/1", authority: "api.example.com", source }, i % 2);
      assert.equal(last.responseStatus, 401, `request ${i + 1} is within capacity 100`);
    }
    const decisionsBefore = authz.logs.length;
    const r = await chain.run({ path: "/api/orders/1", authority: "api.example.com", source });
    assert.equal(r.responseStatus, 429);
    assert.match(header(r, "retry-after") ?? "", /^\d+$/);
    assert.ok(header(r, "ratelimit-policy"), "RateLimit-Policy header");
    assert.equal(r.upstreamRequest, undefined);
    assert.equal(authz.logs.length, decisionsBefore, "no Check was made for the shed request");
    const other = await chain.run({ path: "/api/orders/1", authority: "api.example.com", source: "10.40.0.2:40000" });
    assert.equal(other.responseStatus, 401, "another client IP has its own bucket");
  });

  it("passes traceparent through to the upstream unchanged", async function () {
    const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const r = await chain.run({ path: "/api/orders/1", authority: "api.example.com", source: "10.20.0.9:40000", headers: { ...(await bearer({ sub: "dave", roles: ["reader"] })), traceparent } });
    assert.equal(r.responseStatus, 200);
    assert.equal(r.upstreamRequest?.headers.get("traceparent"), traceparent);
    assert.equal(r.accessLog?.["traceparent"], traceparent);
  });

  it("answers 503 (status_on_error), not 403, when authz-server cannot be reached", async function () {
    const broken = await loadEnvoyConfigChain({
      config: "edge.yaml",
      standIn: new StandIn({ logLevel: "warn" }),
      endpoints: { "meshward-authz": "127.0.0.1:1", "meshward-quota": authz.httpAddress, "app-v1": v1.address, "app-v2": v2.address },
    });
    try {
      const r = await broken.run({ path: "/api/orders/1", authority: "api.example.com", headers: await bearer({ sub: "erin", roles: ["reader"] }) });
      assert.equal(r.responseStatus, 503);
      assert.equal(r.upstreamRequest, undefined);
    } finally {
      broken.close();
    }
  });
});
