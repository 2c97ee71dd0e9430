// check-config never crashes on arbitrary input: every validator returns problems for any JSON value.
import { strict as assert } from "node:assert";
import fc from "fast-check";
import { crossCheckManifests } from "../../tools/check-config/cross-checks.js";
import { BOOTSTRAP_TYPE, EnvoyJsonValidator, loadEnvoyProtos } from "../../tools/check-config/envoy-proto.js";
import { checkEnvoySemantics } from "../../tools/check-config/envoy-semantics.js";
import { checkPluginConfig } from "../../tools/check-config/plugin-config.js";

const KEYS = ["static_resources", "listeners", "clusters", "filter_chains", "filters", "typed_config", "@type", "name", "http_filters", "config", "route_config", "spec", "pluginName", "pluginConfig", "limits", "rules", "routeHeader", "domain", "ports", "selector", "provider", "action", "metadata", "timeout"];
const TYPES = ["type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm", "type.googleapis.com/google.protobuf.StringValue", "type.googleapis.com/nope.v1.Nope", "x"];
const json = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    fc.constantFrom<unknown>(null, true, 0, -1, 1.5, "", "5s", "header-router", "rate-limit", "CUSTOM", ...TYPES),
    fc.array(tie("value"), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom(...KEYS), tie("value"), { maxKeys: 4 }),
  ),
})).value;

describe("check-config robustness on arbitrary input", function () {
  it("the Envoy validator and the semantic checks return problems, never throw", function () {
    const v = new EnvoyJsonValidator(loadEnvoyProtos());
    fc.assert(fc.property(json, (doc) => {
      const problems = v.validate(BOOTSTRAP_TYPE, doc, "F");
      assert.ok(Array.isArray(problems));
      assert.ok(Array.isArray(checkEnvoySemantics(doc, "F", "", { baseDir: "/", checkLocalFiles: false })));
    }), { numRuns: 300 });
  });

  it("plugin configuration checks and manifest cross-checks return problems, never throw", function () {
    const kinds: Record<string, string> = {
      WasmPlugin: "extensions.istio.io/v1alpha1",
      AuthorizationPolicy: "security.istio.io/v1",
      Service: "v1",
      ConfigMap: "v1",
      Deployment: "apps/v1",
      IstioOperator: "install.istio.io/v1alpha1",
      VirtualService: "networking.istio.io/v1",
      DestinationRule: "networking.istio.io/v1",
    };
    const manifest = fc.tuple(json, fc.constantFrom(...Object.keys(kinds))).map(([doc, kind]) => ({
      ...(typeof doc === "object" && doc !== null && !Array.isArray(doc) ? doc : { spec: doc }),
      apiVersion: kinds[kind] as string,
      kind,
    }));
    fc.assert(fc.property(json, fc.array(manifest, { minLength: 1, maxLength: 4 }), (doc, manifests) => {
      for (const plugin of ["header-router", "rate-limit"] as const) assert.ok(Array.isArray(checkPluginConfig(plugin, doc, "F", "").problems));
      assert.ok(Array.isArray(crossCheckManifests(manifests.map((m) => ({ file: "F", base: "", doc: m as Record<string, unknown> })))));
    }), { numRuns: 300 });
  });
});
