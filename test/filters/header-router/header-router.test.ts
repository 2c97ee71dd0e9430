// header-router behaviour through the Envoy stand-in with the shipped filters/build/header-router.wasm.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { StandIn, inspectModule, type Plugin, type RunStreamOptions } from "../../../tools/standin/index.js";
import { stickyIndex } from "./sticky-reference.js";

const WASM = "filters/build/header-router.wasm";
const upstream = () => ({ status: 200 });

async function load(configuration: object, workers = 1, host = new StandIn({ logLevel: "info" })): Promise<Plugin> {
  return host.loadPlugin({ wasm: WASM, rootId: "header-router", workers, configuration });
}

async function routeOf(plugin: Plugin, req: RunStreamOptions, worker = 0): Promise<string | undefined> {
  const res = await plugin.worker(worker).runStream({ upstream, ...req });
  return res.upstreamRequest?.headers.get("x-route");
}

describe("header-router filter (stand-in)", function () {
  this.timeout(60_000);

  before(function () {
    if (!existsSync(WASM)) throw new Error(`${WASM} is missing: run node filters/build.mjs header-router`);
  });

  it("imports only functions Envoy provides for ABI 0.2.x (never proxy_clear_route_cache)", async () => {
    const { readFile } = await import("node:fs/promises");
    const info = inspectModule(new Uint8Array(await readFile(WASM)));
    const names = info.imports.map((i) => `${i.module}.${i.name}`);
    assert.ok(!names.includes("env.proxy_clear_route_cache"), names.join(", "));
    assert.ok(names.includes("env.proxy_call_foreign_function"));
    assert.ok(info.exports.some((e) => e.name === "proxy_abi_version_0_2_0"));
  });

  describe("matchers", () => {
    let plugin: Plugin;
    before(async () => {
      plugin = await load({
        routeHeader: "x-route",
        rules: [
          { name: "path-exact", match: { path: { exact: "/exact" } }, route: "r-path-exact" },
          { name: "path-glob", match: { path: { glob: "/shop/*/cart/**" } }, route: "r-path-glob" },
          { name: "method", match: { path: { prefix: "/m/" }, methods: ["DELETE", "put"] }, route: "r-method" },
          { name: "h-exact", match: { headers: [{ name: "X-Tier", exact: "beta" }] }, route: "r-h-exact" },
          { name: "h-prefix", match: { headers: [{ name: "x-tier", prefix: "gold-" }] }, route: "r-h-prefix" },
          { name: "h-suffix", match: { headers: [{ name: "x-tier", suffix: "-eu" }] }, route: "r-h-suffix" },
          { name: "h-contains", match: { headers: [{ name: "x-tier", contains: "staff" }] }, route: "r-h-contains" },
          { name: "h-present", match: { path: { prefix: "/p/" }, headers: [{ name: "x-debug", present: true }] }, route: "r-h-present" },
          { name: "h-absent", match: { path: { prefix: "/p/" }, headers: [{ name: "x-debug", absent: true }] }, route: "r-h-absent" },
          { name: "query", match: { path: { prefix: "/q" }, query: [{ name: "version", exact: "2" }] }, route: "r-query" },
          { name: "cookie", match: { cookies: [{ name: "canary", exact: "yes" }] }, route: "r-cookie" },
          { name: "path-prefix", match: { path: { prefix: "/api/" } }, route: "r-path-prefix" },
        ],
        default: "r-default",
      });
    });

    const cases: Array<[string, RunStreamOptions, string]> = [
      ["path exact (query ignored)", { path: "/exact?x=1" }, "r-path-exact"],
      ["path exact does not match a longer path", { path: "/exact/more" }, "r-default"],
      ["path glob with * and **", { path: "/shop/42/cart/items/7" }, "r-path-glob"],
      ["path glob: * needs exactly one segment", { path: "/shop/a/b/cart" }, "r-default"],
      ["path prefix", { path: "/api/orders" }, "r-path-prefix"],
      ["method in the list (case-insensitive config)", { method: "PUT", path: "/m/x" }, "r-method"],
      ["method not in the list", { method: "GET", path: "/m/x" }, "r-default"],
      ["header exact (config name case-insensitive)", { headers: { "x-tier": "beta" } }, "r-h-exact"],
      ["header exact is case-sensitive on the value", { headers: { "x-tier": "Beta" } }, "r-default"],
      ["header prefix", { headers: { "x-tier": "gold-1" } }, "r-h-prefix"],
      ["header suffix", { headers: { "x-tier": "silver-eu" } }, "r-h-suffix"],
      ["header contains", { headers: { "x-tier": "all-staff-us" } }, "r-h-contains"],
      ["header present", { path: "/p/1", headers: { "x-debug": "" } }, "r-h-present"],
      ["header absent", { path: "/p/1" }, "r-h-absent"],
      ["query parameter", { path: "/q?a=1&version=2" }, "r-query"],
      ["query parameter with another value", { path: "/q?version=3" }, "r-default"],
      ["cookie", { headers: { cookie: "session=1; canary=yes" } }, "r-cookie"],
      ["cookie with another value", { headers: { cookie: "canary=no" } }, "r-default"],
    ];
    for (const [what, req, route] of cases) {
      it(`${what} → ${route}`, async () => {
        assert.equal(await routeOf(plugin, req), route);
      });
    }

    it("first matching rule wins when several match", async () => {
      // path-exact (rule 0) and cookie (rule 10) both match.
      assert.equal(await routeOf(plugin, { path: "/exact", headers: { cookie: "canary=yes" } }), "r-path-exact");
      // h-exact (rule 3) before path-prefix (rule 11).
      assert.equal(await routeOf(plugin, { path: "/api/x", headers: { "x-tier": "beta" } }), "r-h-exact");
    });
  });

  describe("route header and route cache", () => {
    let plugin: Plugin;
    before(async () => {
      plugin = await load({
        routeHeader: "X-Route",
        rules: [{ name: "beta", match: { headers: [{ name: "x-tier", exact: "beta" }] }, route: "v2" }],
        default: "v1",
      });
    });

    it("overwrites a client-sent route header so clients cannot pick routes", async () => {
      const res = await plugin.worker(0).runStream({ upstream, headers: { "x-route": "admin-backend" } });
      assert.deepEqual(res.upstreamRequest?.headers.getAll("x-route"), ["v1"]);
      assert.equal(res.routeCacheClears.length, 1);
    });

    it("collapses several client-sent route headers into the chosen one", async () => {
      const res = await plugin.worker(0).runStream({ upstream, headers: [["x-route", "v1"], ["x-route", "admin"]] });
      assert.deepEqual(res.upstreamRequest?.headers.getAll("x-route"), ["v1"]);
      assert.equal(res.routeCacheClears.length, 1);
    });

    it("clears the route cache once, through the clear_route_cache foreign function, when it sets the header", async () => {
      const res = await plugin.worker(0).runStream({ upstream, headers: { "x-tier": "beta" } });
      assert.equal(res.upstreamRequest?.headers.get("x-route"), "v2");
      assert.equal(res.routeCacheClears.length, 1);
      assert.equal(res.routeCacheClears[0]!.via, "foreign_function");
    });

    it("does not clear the route cache when the route header already had the chosen value", async () => {
      const res = await plugin.worker(0).runStream({ upstream, headers: { "x-tier": "beta", "x-route": "v2" } });
      assert.equal(res.upstreamRequest?.headers.get("x-route"), "v2");
      assert.equal(res.routeCacheClears.length, 0);
    });

    it("without a default, removes a client-sent route header (and clears the cache) when no rule matches", async () => {
      const p = await load({ routeHeader: "x-route", rules: [{ name: "a", match: { path: { exact: "/a" } }, route: "ra" }] });
      const spoofed = await p.worker(0).runStream({ upstream, path: "/b", headers: { "x-route": "admin" } });
      assert.equal(spoofed.upstreamRequest?.headers.has("x-route"), false);
      assert.equal(spoofed.routeCacheClears.length, 1);
      const clean = await p.worker(0).runStream({ upstream, path: "/b" });
      assert.equal(clean.upstreamRequest?.headers.has("x-route"), false);
      assert.equal(clean.routeCacheClears.length, 0);
    });
  });

  it("applies requestHeadersToRemove and requestHeadersToAdd (replacing client values)", async () => {
    const plugin = await load({
      routeHeader: "x-route", default: "v1",
      requestHeadersToAdd: [{ name: "X-Routed-By", value: "meshward" }],
      requestHeadersToRemove: ["x-internal", "X-Debug"],
    });
    const res = await plugin.worker(0).runStream({
      upstream, headers: { "x-internal": "1", "x-debug": "on", "x-routed-by": "client", "x-keep": "k" },
    });
    const h = res.upstreamRequest!.headers;
    assert.equal(h.has("x-internal"), false);
    assert.equal(h.has("x-debug"), false);
    assert.deepEqual(h.getAll("x-routed-by"), ["meshward"]);
    assert.equal(h.get("x-keep"), "k");
  });

  describe("weighted split", () => {
    const weights = [10, 90];
    const split = (stickyOn: unknown) => ({
      routeHeader: "x-route",
      rules: [{ name: "canary", match: { path: { prefix: "/api/" } }, split: { ...(stickyOn ? { stickyOn } : {}), targets: [{ route: "v2", weight: 10 }, { route: "v1", weight: 90 }] } }],
      default: "v0",
    });

    it("sends the same header key to the same target on every VM and on another proxy", async () => {
      const a = await load(split({ header: "x-user-id" }), 4);
      const b = await load(split({ header: "x-user-id" }), 2, new StandIn({ logLevel: "info" }));
      for (let k = 0; k < 200; k++) {
        const headers = { "x-user-id": `user-${k}` };
        const seen = new Set<string | undefined>();
        for (let w = 0; w < 4; w++) seen.add(await routeOf(a, { path: "/api/x", headers }, w));
        for (let w = 0; w < 2; w++) seen.add(await routeOf(b, { path: "/api/x", headers }, w));
        assert.equal(seen.size, 1, `user-${k} got ${[...seen].join(", ")}`);
      }
    });

    it("sticks header keys exactly as the documented hash (FNV-1a 64 + fmix64, point % total) says", async () => {
      const plugin = await load(split({ header: "x-user-id" }), 2);
      for (let k = 0; k < 1000; k++) {
        const key = `k${k * 7919}`;
        const expected = ["v2", "v1"][stickyIndex(key, weights)];
        assert.equal(await routeOf(plugin, { path: "/api/x", headers: { "x-user-id": key } }, k % 2), expected, key);
      }
    });

    it("sticks cookie keys the same way", async () => {
      const plugin = await load(split({ cookie: "uid" }));
      for (let k = 0; k < 300; k++) {
        const key = `c-${k}`;
        const expected = ["v2", "v1"][stickyIndex(key, weights)];
        assert.equal(await routeOf(plugin, { path: "/api/x", headers: { cookie: `a=b; uid=${key}` } }), expected, key);
      }
    });

    it("splits 100k random sticky keys within ±2% of the weights (computed with the verified hash)", () => {
      const counts = [0, 0];
      for (let k = 0; k < 100_000; k++) counts[stickyIndex(`${Math.random().toString(36).slice(2)}-${k}`, weights)]!++;
      assert.ok(Math.abs(counts[0]! / 100_000 - 0.1) <= 0.02, String(counts));
    });

    it("chooses by weight at random when the sticky key is missing (±3% over 3000 requests)", async () => {
      const plugin = await load(split({ header: "x-user-id" }), 2);
      let v2 = 0;
      const n = 3000;
      for (let i = 0; i < n; i++) if ((await routeOf(plugin, { path: "/api/x" }, i % 2)) === "v2") v2++;
      assert.ok(Math.abs(v2 / n - 0.1) <= 0.03, `v2 share ${v2 / n}`);
    });
  });

  it("counts requests per rule and per target across all VMs", async () => {
    const host = new StandIn({ logLevel: "info" });
    const plugin = await load({
      routeHeader: "x-route",
      rules: [{ name: "beta-users", match: { headers: [{ name: "x-tier", exact: "beta" }] }, route: "reviews-v2" }],
      default: "reviews-v1",
    }, 3, host);
    for (let i = 0; i < 9; i++) await routeOf(plugin, { headers: i % 3 === 0 ? { "x-tier": "beta" } : {} }, i % 3);
    assert.equal(host.metric("meshward_header_router_rule_beta_users_requests_total"), 3);
    assert.equal(host.metric("meshward_header_router_target_reviews_v2_requests_total"), 3);
    assert.equal(host.metric("meshward_header_router_target_reviews_v1_requests_total"), 6);
  });

  it("configures every VM and logs lines starting with the filter name", async () => {
    const host = new StandIn({ logLevel: "info" });
    await load({ routeHeader: "x-route", default: "v1" }, 3, host);
    const mine = host.logs.filter((l) => l.plugin === "header-router");
    assert.ok(mine.length >= 3, `${mine.length} log lines`);
    for (const l of mine) assert.match(l.message, /^header-router: /);
    assert.equal(new Set(host.logsMatching("header-router: configured").map((l) => l.worker)).size, 4); // canary + 3 workers
  });

  it("routes hostile inputs without trapping: deep paths, long and non-ASCII values, a raw header map without :path", async () => {
    const plugin = await load({
      routeHeader: "x-route",
      rules: [
        { name: "deep", match: { path: { glob: "/**/a/**/a/**/z" } }, route: "deep" },
        { name: "tier", match: { headers: [{ name: "x-tier", contains: "ü" }], cookies: [{ name: "c", exact: "ö" }] }, route: "unicode" },
      ],
      default: "v1",
    });
    const deepPath = "/" + Array.from({ length: 3000 }, () => "a").join("/") + "/b";
    assert.equal(await routeOf(plugin, { path: deepPath }), "v1");
    assert.equal(await routeOf(plugin, { path: "/a/a/z" }), "deep");
    assert.equal(await routeOf(plugin, { headers: { "x-tier": "grün", cookie: "c=ö" } }), "unicode");
    const many: Record<string, string> = {};
    for (let i = 0; i < 200; i++) many[`x-h-${i}`] = "v".repeat(200);
    assert.equal(await routeOf(plugin, { path: `/q?${"k=v&".repeat(2000)}`, headers: many }), "v1");
    const raw = await plugin.worker(0).runStream({ upstream, raw: true, headers: [["x-tier", "x"]] });
    assert.equal(raw.upstreamRequest?.headers.get("x-route"), "v1");
    assert.equal(plugin.worker(0).failed, false);
  });

  it("keeps linear memory flat over 20,000 requests after warm-up", async () => {
    const plugin = await load({
      routeHeader: "x-route",
      rules: [{ name: "canary", match: { path: { glob: "/api/**" }, cookies: [{ name: "c", present: true }] },
        split: { stickyOn: { header: "x-user-id" }, targets: [{ route: "v2", weight: 1 }, { route: "v1", weight: 1 }] } }],
      default: "v1",
    });
    const w = plugin.worker(0);
    const req = (i: number): RunStreamOptions => ({ upstream, path: `/api/${i}?q=${i}`, headers: { "x-user-id": `u${i}`, cookie: `c=${i}`, "x-route": "spoof" } });
    for (let i = 0; i < 2000; i++) await w.runStream(req(i));
    const before = w.vm.memoryBytes;
    for (let i = 0; i < 20_000; i++) await w.runStream(req(i));
    assert.equal(w.vm.memoryBytes, before);
    assert.equal(w.failed, false);
  });
});
