// check-config's TypeScript schema of the plugin configurations agrees with the real filters: every
// fixture is accepted by one iff the shipped .wasm's onConfigure accepts it (through the stand-in).
import { strict as assert } from "node:assert";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse as parseYaml, parseAllDocuments } from "yaml";
import { checkPluginConfig, type PluginName } from "../../tools/check-config/plugin-config.js";
import { PluginLoadError, StandIn } from "../../tools/standin/index.js";

const repo = (p: string): string => fileURLToPath(new URL(`../../${p}`, import.meta.url));
const FIXTURES = repo("test/envoy/fixtures/plugin-configs");

interface Case {
  readonly plugin: PluginName;
  readonly name: string;
  readonly valid: boolean;
  readonly config: unknown;
}

const fixtures: Case[] = readdirSync(FIXTURES)
  .filter((f) => f.endsWith(".json"))
  .sort()
  .map((f) => {
    const [plugin, name] = f.replace(/\.json$/, "").split(".") as [PluginName, string];
    return { plugin, name, valid: name.startsWith("valid-"), config: JSON.parse(readFileSync(`${FIXTURES}/${f}`, "utf8")) as unknown };
  });

/** Every plugin configuration we ship: Envoy StringValues in envoy/local and WasmPlugin pluginConfigs. */
function shippedConfigs(): { where: string; plugin: PluginName; config: unknown }[] {
  const out: { where: string; plugin: PluginName; config: unknown }[] = [];
  for (const f of ["envoy/local/edge.yaml", "envoy/local/sidecar.yaml"]) {
    const text = readFileSync(repo(f), "utf8");
    const doc = parseYaml(text) as { static_resources: { listeners: { filter_chains: { filters: { typed_config: { http_filters: { name: string; typed_config: { config?: { root_id: string; configuration: { value: string } } } }[] } }[] }[] }[] } };
    for (const l of doc.static_resources.listeners) {
      for (const hf of l.filter_chains[0]!.filters[0]!.typed_config.http_filters) {
        const c = hf.typed_config.config;
        if (c && (c.root_id === "header-router" || c.root_id === "rate-limit")) out.push({ where: `${f} ${hf.name}`, plugin: c.root_id, config: JSON.parse(c.configuration.value) });
      }
    }
  }
  for (const f of ["envoy/istio/wasmplugin-header-router.yaml", "envoy/istio/wasmplugin-rate-limit.yaml"]) {
    for (const d of parseAllDocuments(readFileSync(repo(f), "utf8"))) {
      const doc = d.toJS() as { metadata: { name: string; namespace: string }; spec: { pluginName: PluginName; pluginConfig: unknown } };
      out.push({ where: `${f} ${doc.metadata.namespace}/${doc.metadata.name}`, plugin: doc.spec.pluginName, config: doc.spec.pluginConfig });
    }
  }
  return out;
}

describe("plugin configuration checks (check-config) against the real filters", function () {
  describe("the TypeScript schema", function () {
    for (const c of fixtures) {
      it(`${c.valid ? "accepts" : "rejects"} ${c.plugin} ${c.name}`, function () {
        const { problems } = checkPluginConfig(c.plugin, c.config, "F", "");
        assert.equal(problems.length === 0, c.valid, problems.map((p) => `${p.path}: ${p.message}`).join("; "));
      });
    }
    it("accepts every plugin configuration shipped in envoy/", function () {
      const shipped = shippedConfigs();
      assert.ok(shipped.length >= 8);
      for (const s of shipped) assert.deepEqual(checkPluginConfig(s.plugin, s.config, s.where, "").problems, [], s.where);
    });
  });

  describe("the shipped .wasm onConfigure (through the Envoy stand-in)", function () {
    before(function () {
      const missing = ["header-router", "rate-limit"].filter((f) => !existsSync(repo(`filters/build/${f}.wasm`)));
      if (missing.length > 0) {
        console.log(`      (skipped: filters/build/${missing.join(", ")}.wasm not built; run npm run build:filters)`);
        this.skip();
      }
    });

    /** Loads the plugin fail-closed, as Envoy would: a configuration onConfigure rejects fails the load. */
    async function filterAccepts(plugin: PluginName, config: unknown): Promise<boolean> {
      const host = new StandIn({ logLevel: "critical" });
      try {
        const p = await host.loadPlugin({ wasm: `filters/build/${plugin}.wasm`, rootId: plugin, vmId: plugin, configuration: config as object, failOpen: false, clusters: { "meshward-quota": { handler: () => ({ status: 503 }) }, q: { handler: () => ({ status: 503 }) } } });
        p.shutdown();
        return true;
      } catch (err) {
        if (err instanceof PluginLoadError && err.code === "ERR_WASM_START") return false;
        throw err;
      }
    }

    for (const c of fixtures) {
      it(`${c.plugin} ${c.valid ? "accepts" : "rejects"} ${c.name}, as check-config does`, async function () {
        assert.equal(await filterAccepts(c.plugin, c.config), c.valid);
      });
    }

    it("accepts every plugin configuration shipped in envoy/", async function () {
      for (const s of shippedConfigs()) assert.equal(await filterAccepts(s.plugin, s.config), true, s.where);
    });
  });
});
