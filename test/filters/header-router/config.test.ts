// Invalid header-router configurations are rejected by the real filter (onConfigure returns false,
// Envoy refuses the plugin) with a critical log line naming the field. One fixture per mistake.
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PluginLoadError, StandIn } from "../../../tools/standin/index.js";

const WASM = "filters/build/header-router.wasm";
const fixtureDir = fileURLToPath(new URL("./fixtures/invalid/", import.meta.url));

interface Fixture {
  /** The plugin configuration: a string is passed verbatim, anything else as JSON. */
  configuration: unknown;
  /** The message after "header-router: invalid configuration: ". */
  message: string;
}

describe("header-router configuration validation (stand-in)", function () {
  this.timeout(60_000);

  for (const file of readdirSync(fixtureDir).filter((f) => f.endsWith(".json")).sort()) {
    const fixture = JSON.parse(readFileSync(join(fixtureDir, file), "utf8")) as Fixture;
    it(`rejects ${file.replace(/\.json$/, "").replace(/-/g, " ")}: ${fixture.message}`, async () => {
      const host = new StandIn({ logLevel: "info" });
      const configuration = typeof fixture.configuration === "string" ? fixture.configuration : JSON.stringify(fixture.configuration);
      await assert.rejects(host.loadPlugin({ wasm: WASM, rootId: "header-router", configuration }), (err: unknown) => {
        assert.ok(err instanceof PluginLoadError);
        assert.equal(err.code, "ERR_WASM_START");
        assert.match(err.message, /proxy_on_configure returned false/);
        return true;
      });
      // The filter's own line (the stand-in adds its "wasm VM failed" line after it).
      const critical = host.logs.filter((l) => l.level === "critical").map((l) => l.message);
      assert.equal(critical[0], `header-router: invalid configuration: ${fixture.message}`);
      assert.equal(critical.filter((m) => m.startsWith("header-router:")).length, 1);
    });
  }

  it("refuses to start under a root id it does not implement, naming the known one", async () => {
    const host = new StandIn({ logLevel: "info" });
    await assert.rejects(host.loadPlugin({ wasm: WASM, rootId: "header-routr", configuration: { routeHeader: "x-route" } }), PluginLoadError);
    const critical = host.logs.filter((l) => l.level === "critical").map((l) => l.message);
    assert.equal(critical[0], "header-router: no filter registered for root id 'header-routr' (known: header-router)");
  });

  it("accepts the documented configuration example (docs/plugin-configs.md)", async () => {
    const host = new StandIn({ logLevel: "info" });
    const plugin = await host.loadPlugin({
      wasm: WASM, rootId: "header-router", workers: 2, configuration: {
        routeHeader: "x-route",
        rules: [
          { name: "beta", match: { path: { prefix: "/api/" }, methods: ["GET"],
            headers: [{ name: "x-user-tier", exact: "beta" }],
            query: [{ name: "v", exact: "2" }], cookies: [{ name: "canary", present: true }] },
          route: "reviews-v2" },
          { name: "canary", match: { path: { prefix: "/api/" } },
            split: { stickyOn: { header: "x-user-id" }, targets: [{ route: "v2", weight: 10 }, { route: "v1", weight: 90 }] } },
        ],
        default: "v1",
        requestHeadersToAdd: [], requestHeadersToRemove: [],
      },
    });
    const res = await plugin.worker(1).runStream({
      path: "/api/reviews?v=2", headers: { "x-user-tier": "beta", cookie: "canary=1" }, upstream: () => ({ status: 200 }),
    });
    assert.equal(res.upstreamRequest?.headers.get("x-route"), "reviews-v2");
    assert.equal(host.logs.filter((l) => l.level === "critical").length, 0);
  });
});
