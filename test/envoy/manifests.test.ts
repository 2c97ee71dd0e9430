// Istio and Kubernetes manifests validate against the schemas shipped in tools/check-config/schemas,
// and the cross-checks no schema can do (providers, plugin configs, routes, ports, mounts) catch one
// fixture each with an exact message.
import { strict as assert } from "node:assert";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { SHIPPED_SCHEMAS_DIR, checkPaths } from "../../tools/check-config/check-files.js";
import { ManifestValidator } from "../../tools/check-config/manifests.js";
import { formatProblem, isError, type Problem } from "../../tools/check-config/problem.js";

const repo = (p: string): string => fileURLToPath(new URL(`../../${p}`, import.meta.url));
const SCHEMAS = SHIPPED_SCHEMAS_DIR;
const fixture = (p: string): string => repo(`test/envoy/fixtures/${p}`);

function errorsOf(paths: string[]): string[] {
  return checkPaths(paths, { schemasDir: SCHEMAS })
    .problems.filter(isError)
    .map((p) => formatProblem({ ...p, file: p.file.slice(p.file.lastIndexOf("/") + 1) }));
}

function manifestFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, e.name);
    if (e.isDirectory()) out.push(...manifestFiles(full));
    else if (e.name.endsWith(".yaml")) out.push(full);
  }
  return out;
}

const BUILT_IN_KINDS = new Set(["Namespace", "IstioOperator", "Kustomization", "Component"]);

describe("Kubernetes and Istio manifests", function () {
  describe("shipped manifests", function () {
    it("every shipped document in envoy/istio and envoy/k8s has a schema shipped with check-config (or is a kind we check ourselves)", function () {
      const v = new ManifestValidator(SCHEMAS);
      const kinds = new Set<string>();
      for (const file of [...manifestFiles(repo("envoy/istio")), ...manifestFiles(repo("envoy/k8s"))]) {
        for (const d of parseAllDocuments(readFileSync(file, "utf8"))) {
          const doc = d.toJS() as { apiVersion: string; kind: string };
          kinds.add(doc.kind);
          if (BUILT_IN_KINDS.has(doc.kind)) continue;
          assert.ok(v.schemaFile(doc), `${file}: no schema for ${doc.apiVersion} ${doc.kind}`);
        }
      }
      for (const k of ["WasmPlugin", "TrafficExtension", "AuthorizationPolicy", "DestinationRule", "VirtualService", "Gateway", "HTTPRoute", "Deployment", "Service", "ServiceAccount", "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy", "ConfigMap"]) {
        assert.ok(kinds.has(k), `no shipped ${k}`);
      }
    });

    it("each TrafficExtension (Istio 1.30+) is its WasmPlugin with the module fields under spec.wasm, nothing else changed (selector and Gateway API forms)", function () {
      const read = (file: string) => parseAllDocuments(readFileSync(file, "utf8")).map((d) => d.toJS() as { kind: string; metadata: object; spec: Record<string, unknown> });
      for (const dir of ["envoy/istio", "envoy/istio/gateway-api"]) {
        for (const filter of ["header-router", "rate-limit"]) {
          const plugins = read(repo(`${dir}/wasmplugin-${filter}.yaml`));
          const extensions = read(repo(`${dir}/traffic-extension/trafficextension-${filter}.yaml`));
          assert.equal(extensions.length, plugins.length);
          plugins.forEach((wp, i) => {
            const te = extensions[i]!;
            assert.equal(te.kind, "TrafficExtension");
            assert.deepEqual(te.metadata, wp.metadata);
            const { selector, targetRefs, match, phase, priority, ...module } = wp.spec;
            assert.deepEqual(te.spec, { ...(selector ? { selector } : {}), ...(targetRefs ? { targetRefs } : {}), ...(match ? { match } : {}), phase, priority, wasm: { type: "HTTP", ...module } });
          });
        }
      }
    });

    it("the Gateway API flavour attaches every filter and the CUSTOM policy to the Gateway with targetRefs, and routes every header-router choice with an HTTPRoute", function () {
      const dir = repo("envoy/istio/gateway-api");
      const docs = manifestFiles(dir).flatMap((f) => parseAllDocuments(readFileSync(f, "utf8")).map((d) => d.toJS() as { kind: string; spec: Record<string, unknown> }));
      const attached = docs.filter((d) => ["WasmPlugin", "TrafficExtension", "AuthorizationPolicy"].includes(d.kind));
      assert.equal(attached.length, 7, "3 WasmPlugins, 3 TrafficExtensions, 1 AuthorizationPolicy");
      for (const d of attached) {
        assert.equal(d.spec["selector"], undefined);
        assert.deepEqual(d.spec["targetRefs"], [{ group: "gateway.networking.k8s.io", kind: "Gateway", name: "api" }]);
      }
      assert.ok(docs.some((d) => d.kind === "AuthorizationPolicy" && d.spec["action"] === "CUSTOM" && (d.spec["provider"] as { name: string }).name === "meshward-authz"));
      assert.deepEqual(docs.filter((d) => d.kind === "Gateway" || d.kind === "HTTPRoute").map((d) => d.kind).sort(), ["Gateway", "HTTPRoute"]);
      // Checked alone, with the mesh config that declares the provider: no errors, every kind known.
      const problems = checkPaths([dir, repo("envoy/istio/mesh-config.yaml")], { schemasDir: SCHEMAS }).problems;
      assert.deepEqual(problems.filter(isError).map((p) => formatProblem(p)), []);
      assert.ok(!problems.some((p) => p.code === "ERR_MANIFEST_NO_SCHEMA"), "every kind here has a schema");
    });

    it("a TrafficExtension gets the same plugin-configuration check as a WasmPlugin, at spec.wasm", function () {
      const v = checkPaths([fixture("schema/trafficextension-bad-plugin-config.yaml")], { schemasDir: SCHEMAS }).problems.filter(isError);
      assert.deepEqual(v.map((p) => `${p.path}: ${p.code}`), ["spec.wasm.pluginConfig.limits[0].capacity: ERR_PLUGIN_CONFIG_INVALID"]);
    });

    let shipped: Problem[];
    before(function () {
      shipped = [...checkPaths([repo("envoy")], { schemasDir: SCHEMAS }).problems];
    });

    it("envoy/ validates with no errors (schemas, embedded policy and bootstrap, cross-checks)", function () {
      assert.deepEqual(shipped.filter(isError).map((p) => formatProblem(p)), []);
    });

    it("the only warnings on the shipped tree are the placeholder image digests and the deliberate x-canary opt-in (and wasm files not built yet)", function () {
      const warnings = shipped.filter((p) => !isError(p) && p.code !== "ERR_ENVOY_WASM_MISSING");
      assert.ok(warnings.length > 0);
      assert.deepEqual([...new Set(warnings.map((w) => w.code))], ["ERR_CROSS_PLACEHOLDER_DIGEST", "ERR_CROSS_HEADER_NOT_IDENTITY"]);
      // Mesh callers may ask for the canary with x-canary: a client choice on purpose, flagged and kept.
      const clientChosen = new Set(warnings.filter((w) => w.code === "ERR_CROSS_HEADER_NOT_IDENTITY").map((w) => /"([^"]+)"/.exec(w.message)?.[1]));
      assert.deepEqual([...clientChosen], ["x-canary"]);
    });
  });

  describe("schema violations", function () {
    const cases: [spec: string, file: string, message: string][] = [
      ["an unknown container field in a Deployment", "deployment-unknown-field.yaml", "deployment-unknown-field.yaml: spec.template.spec.containers[0].imagePolicy: unknown key"],
      ["a Service port that is not an integer", "service-bad-port.yaml", "service-bad-port.yaml: spec.ports[0].port: must be integer"],
      ["a WasmPlugin phase Istio does not define", "wasmplugin-bad-phase.yaml", 'wasmplugin-bad-phase.yaml: spec.phase: must be one of "UNSPECIFIED_PHASE", "AUTHN", "AUTHZ", "STATS"'],
      ["an unknown field in a WasmPlugin spec (closed as kubectl's strict field validation does)", "wasmplugin-unknown-field.yaml", "wasmplugin-unknown-field.yaml: spec.failOpen: unknown key"],
      ["an unknown field in a kustomize Component", "component-unknown-field.yaml", "component-unknown-field.yaml: patchesJSON6902: unknown key"],
      ["an unknown field in a Gateway API HTTPRoute rule (closed as kubectl's strict field validation does)", "httproute-unknown-field.yaml", "httproute-unknown-field.yaml: spec.rules[0].timeout: unknown key"],
      ["a Gateway API listener TLS mode the CRD does not define", "gateway-bad-tls-mode.yaml", 'gateway-bad-tls-mode.yaml: spec.listeners[0].tls.mode: must be one of "Terminate", "Passthrough"'],
    ];
    for (const [spec, file, message] of cases) {
      it(`rejects ${spec}`, function () {
        assert.deepEqual(errorsOf([fixture(`schema/${file}`)]), [message]);
      });
    }

    it("validates against the shipped schemas when no schema folder is given", function () {
      const errors = checkPaths([fixture("schema/wasmplugin-bad-phase.yaml")]).problems.filter(isError);
      assert.deepEqual(errors.map((p) => p.code), ["ERR_MANIFEST_INVALID"]);
    });

    it("fails (not a warning) when the schema folder given does not exist", function () {
      const missing = join(SCHEMAS, "no-such-folder");
      const errors = checkPaths([fixture("schema/service-bad-port.yaml")], { schemasDir: missing }).problems.filter(isError);
      assert.ok(errors.some((p) => p.code === "ERR_SCHEMAS_MISSING" && p.file === missing), JSON.stringify(errors));
    });
  });

  describe("cross-checks", function () {
    const cases: [spec: string, dir: string, message: string][] = [
      ["a CUSTOM provider missing from meshConfig.extensionProviders", "provider-unknown", 'policy.yaml: spec.provider.name: provider "meshward-authn" is not in meshConfig.extensionProviders (known: meshward-authz)'],
      ["an extension provider port that the Service does not expose", "provider-port", "mesh-config.yaml: spec.meshConfig.extensionProviders[0].envoyExtAuthzGrpc.port: port 9000 is not a port of Service meshward/authz-server (9191, 8181)"],
      ["a Service targetPort that no container port of its Deployment has", "target-port", 'service.yaml: spec.ports[0].targetPort: targetPort "grpc" is not a container port of Deployment meshward/authz-server'],
      ["a --policy file the mounted ConfigMap does not hold", "policy-key", 'deployment.yaml: spec.template.spec.containers[0].args[1]: ConfigMap meshward-policy has no key "policy.yaml" for the policy file /etc/meshward/policy/policy.yaml'],
      ["a header-router route no VirtualService matches", "route-not-matched", 'wasmplugin.yaml: spec.pluginConfig: header-router route "v3" has no VirtualService http route matching header x-route: exact v3'],
      ["header-router in a phase before the CUSTOM ext_authz", "header-router-phase", 'wasmplugin.yaml: spec.phase: header-router must run in phase STATS (after the CUSTOM ext_authz), not "AUTHN"'],
      ["a WasmPlugin pluginConfig our filter would reject", "plugin-config", "wasmplugin.yaml: spec.pluginConfig.limits[0].capacity: rate-limit: must be >= 1"],
      ["a kustomization resource that does not exist", "kustomization-missing", "kustomization.yaml: resources[1]: resource deployment.yaml does not exist"],
      ["mesh path normalisation that lets //admin past path rules", "path-normalization", "mesh-config.yaml: spec.meshConfig.pathNormalization.normalization: pathNormalization NONE lets //admin or /a/..;/admin past path rules; use DECODE_AND_MERGE_SLASHES (or MERGE_SLASHES)"],
      ["a kustomization component that does not exist", "component-missing", "kustomization.yaml: components[0]: component ../no-such-component does not exist"],
      ["targetRefs naming a kind Istio does not attach to", "target-ref-kind", 'wasmplugin.yaml: spec.targetRefs[0]: Istio attaches to a Gateway or GatewayClass (group gateway.networking.k8s.io), Service (group ""), ServiceEntry (group networking.istio.io), not to Deployment of group "apps"'],
      ["targetRefs naming an Istio Gateway instead of a Gateway API one", "target-ref-istio-gateway", 'authorizationpolicy.yaml: spec.targetRefs[0]: Istio attaches to a Gateway or GatewayClass (group gateway.networking.k8s.io), Service (group ""), ServiceEntry (group networking.istio.io), not to Gateway of group "networking.istio.io"; an Istio Gateway is selected by labels (spec.selector), a Gateway API one is group gateway.networking.k8s.io'],
      ["targetRefs naming a Gateway that is not among the checked ones", "target-unknown", "authorizationpolicy.yaml: spec.targetRefs[0]: Gateway istio-ingress/apii is not among the checked Gateway API Gateways (istio-ingress/api)"],
      ["selector and targetRefs on one WasmPlugin", "target-and-selector", "wasmplugin.yaml: spec.selector: selector and targetRefs are both set; Istio accepts at most one of them"],
      ["a header-router route no HTTPRoute of the Gateway it is attached to matches", "httproute-not-matched", 'wasmplugin.yaml: spec.pluginConfig: header-router route "v2" has no HTTPRoute rule of Gateway istio-ingress/api matching header x-route: Exact v2'],
      ["an HTTPRoute parentRef to a Gateway that is not among the checked ones", "parent-unknown", "httproute.yaml: spec.parentRefs[0]: Gateway istio-ingress/web is not among the checked Gateway API Gateways (istio-ingress/api)"],
      ["a global rate limit the policy does not define", "global-limit-unknown", 'wasmplugin.yaml: spec.pluginConfig.limits[0]: global limit "per-user" of domain "edge" is not in any checked policy\'s spec.rateLimits (leases would answer 404)'],
    ];
    for (const [spec, dir, message] of cases) {
      it(`reports ${spec}`, function () {
        assert.deepEqual(errorsOf([fixture(`cross/${dir}`)]), [message]);
      });
    }

    it("flags each header a filter routes or limits on that no policy lists as an identity header", function () {
      const flagged = checkPaths([fixture("cross/header-not-identity")], { schemasDir: SCHEMAS }).problems.filter((p) => p.code === "ERR_CROSS_HEADER_NOT_IDENTITY");
      const tail = "which no checked policy lists as an identity header (spec.response.identityHeaders, subjectHeader, rolesHeader, claimsToHeaders): any client can set it";
      assert.deepEqual(flagged.map((p) => formatProblem({ ...p, file: p.file.slice(p.file.lastIndexOf("/") + 1) })), [
        `wasmplugin.yaml: doc[0].spec.pluginConfig.rules[0].match.headers[0].name: warning: header-router routes on "x-user-tier", ${tail}`,
        `wasmplugin.yaml: doc[1].spec.pluginConfig.limits[0].key[0].header: warning: rate-limit limits on "x-user-id", ${tail}`,
      ]);
      // The shipped policies declare every header the shipped edge filters key on.
      const shipped = checkPaths([repo("envoy/local"), repo("envoy/k8s")], { schemasDir: SCHEMAS }).problems.filter((p) => p.code === "ERR_CROSS_HEADER_NOT_IDENTITY");
      assert.deepEqual(shipped.map((p) => p.message.split(",")[0]), ['header-router routes on "x-canary"']);
    });

    it("flags CUSTOM notPaths, which skip ext_authz and the removal of identity headers on those paths", function () {
      const flagged = checkPaths([fixture("cross/authz-skipped")], { schemasDir: SCHEMAS }).problems.filter((p) => p.code === "ERR_CROSS_AUTHZ_SKIPPED");
      assert.deepEqual(flagged.map((p) => formatProblem({ ...p, file: p.file.slice(p.file.lastIndexOf("/") + 1) })), [
        "policy.yaml: spec.rules[0].to[0].operation.notPaths: warning: notPaths skip ext_authz, and with it the removal of client-sent identity headers, on those paths; let the policy answer them (allow: anonymous)",
      ]);
    });

    it("reports an invalid policy embedded in a ConfigMap with the policy loader's path", function () {
      const bad = checkPaths([fixture("policy-configmap-invalid.yaml")], { schemasDir: SCHEMAS }).problems.filter(isError);
      assert.deepEqual(bad.map((p) => formatProblem({ ...p, file: p.file.slice(p.file.lastIndexOf("/") + 1) })), ["policy-configmap-invalid.yaml data.policy.yaml: spec.bindings[0].roles[0]: unknown role 'readr'"]);
    });
  });
});
