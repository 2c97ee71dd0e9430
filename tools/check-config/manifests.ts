// Kubernetes and Istio manifests against the JSON schemas shipped in schemas/ (kubeconform-strict
// Kubernetes schemas; Istio CRD schemas closed the way `kubectl apply` field validation treats them).
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import { closed } from "../../authz-server/src/closed-schema.js";
import { ajvErrorPath, ajvMessage, type Problem } from "./problem.js";

// ajv-formats is CommonJS with a default export; under NodeNext the namespace object wraps it.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv) => Ajv;

/** A manifest's schema identity: `apiVersion` and `kind`. */
export interface ManifestKind {
  readonly apiVersion: string;
  readonly kind: string;
}

type Schema = Record<string, unknown>;

/** Kinds we ship that have no schema in schemas/; checked against these small closed schemas. */
const BUILT_IN: Readonly<Record<string, Schema>> = {
  "v1/Namespace": closed({
    apiVersion: { const: "v1" },
    kind: { const: "Namespace" },
    metadata: closed({
      name: { type: "string", pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", maxLength: 63 },
      labels: { type: "object", additionalProperties: { type: "string" } },
      annotations: { type: "object", additionalProperties: { type: "string" } },
    }, ["name"]),
  }, ["apiVersion", "kind", "metadata"]),
  // Only meshConfig.extensionProviders is ours to check; the Envoy ext_authz gRPC provider fields
  // follow istio.io/api mesh/v1alpha1 MeshConfig.ExtensionProvider.EnvoyExternalAuthorizationGrpcProvider.
  "install.istio.io/v1alpha1/IstioOperator": {
    type: "object",
    required: ["apiVersion", "kind", "spec"],
    properties: {
      spec: {
        type: "object",
        properties: {
          meshConfig: {
            type: "object",
            properties: {
              extensionProviders: {
                type: "array",
                items: {
                  type: "object",
                  required: ["name"],
                  properties: {
                    name: { type: "string", minLength: 1 },
                    envoyExtAuthzGrpc: closed({
                      service: { type: "string", minLength: 1 },
                      port: { type: "integer", minimum: 1, maximum: 65535 },
                      timeout: { type: "string", pattern: "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$" },
                      failOpen: { type: "boolean" },
                      clearRouteCache: { type: "boolean" },
                      statusOnError: { type: "string", pattern: "^[1-5][0-9][0-9]$" },
                      includeRequestBodyInCheck: closed({ maxRequestBytes: { type: "integer" }, allowPartialMessage: { type: "boolean" }, packAsBytes: { type: "boolean" } }),
                    }, ["service", "port"]),
                  },
                },
              },
            },
          },
        },
      },
    },
  },
  "kustomize.config.k8s.io/v1beta1/Kustomization": {
    type: "object",
    properties: {
      resources: { type: "array", items: { type: "string", minLength: 1 } },
      components: { type: "array", items: { type: "string", minLength: 1 } },
      namespace: { type: "string" },
    },
  },
  // Closed: the fields our components use (a kustomize Component; kustomize has no published schema for it).
  "kustomize.config.k8s.io/v1alpha1/Component": closed({
    apiVersion: { const: "kustomize.config.k8s.io/v1alpha1" },
    kind: { const: "Component" },
    resources: { type: "array", items: { type: "string", minLength: 1 } },
    patches: {
      type: "array",
      items: closed({
        patch: { type: "string", minLength: 1 },
        target: closed({ kind: { type: "string" }, name: { type: "string" } }),
      }, ["patch"]),
    },
  }, ["apiVersion", "kind"]),
};

let sharedAjv: Ajv | undefined;
/** Compiled validators by schemas directory and kind, shared by all validators of the process. */
const compiledCache = new Map<string, ValidateFunction | null>();

/** Validates manifests; compiles each schema once per process on first use (the Deployment schema is 650 KB). */
export class ManifestValidator {
  private readonly ajv: Ajv;

  constructor(readonly schemasDir: string | undefined) {
    if (!sharedAjv) {
      // optimize: false cuts compiling the 650 KB Deployment schema from ~0.9 s to ~0.3 s CPU here.
      sharedAjv = new Ajv({ strict: false, allErrors: true, validateSchema: false, code: { optimize: false } });
      addFormats(sharedAjv);
    }
    this.ajv = sharedAjv;
  }

  /** The schema file used for a kind, or undefined when there is none. */
  schemaFile(k: ManifestKind): string | undefined {
    if (this.schemasDir === undefined) return undefined;
    const [group, version] = k.apiVersion.includes("/") ? (k.apiVersion.split("/") as [string, string]) : ["", k.apiVersion];
    const kind = k.kind.toLowerCase();
    if (group.endsWith("istio.io")) {
      const dir = join(this.schemasDir, "istio");
      const exact = join(dir, `${kind}.${group}.${version}.json`);
      if (existsSync(exact)) return exact;
      // Served versions of one Istio kind share a schema (e.g. VirtualService v1beta1 = v1).
      const other = existsSync(dir) ? readdirSync(dir).find((f) => f.startsWith(`${kind}.${group}.`) && f.endsWith(".json")) : undefined;
      return other === undefined ? undefined : join(dir, other);
    }
    const short = group === "" ? "" : `-${group.split(".")[0]}`;
    const file = join(this.schemasDir, "k8s", `${kind}${short}-${version}.json`);
    return existsSync(file) ? file : undefined;
  }

  /** Problems of one manifest document; `base` prefixes paths (e.g. "doc[1]"). */
  validate(doc: Record<string, unknown>, file: string, base: string): Problem[] {
    const k = { apiVersion: String(doc["apiVersion"]), kind: String(doc["kind"]) };
    const key = `${k.apiVersion}/${k.kind}`;
    const cacheKey = `${this.schemasDir ?? ""}|${key}`;
    let validate = compiledCache.get(cacheKey);
    if (validate === undefined) {
      validate = this.compile(k, key);
      compiledCache.set(cacheKey, validate);
    }
    if (validate === null) {
      return [{ file, path: base, code: "ERR_MANIFEST_NO_SCHEMA", severity: "warning", message: `no schema for ${k.apiVersion} ${k.kind}; not validated` }];
    }
    if (validate(doc)) return [];
    return dedupe(validate.errors ?? []).map((e) => ({ file, path: ajvErrorPath(base, e), code: "ERR_MANIFEST_INVALID", message: ajvMessage(e) }));
  }

  private compile(k: ManifestKind, key: string): ValidateFunction | null {
    const builtIn = BUILT_IN[key];
    if (builtIn) return this.ajv.compile(builtIn);
    const file = this.schemaFile(k);
    if (file === undefined) return null;
    const schema = JSON.parse(readFileSync(file, "utf8")) as Schema;
    delete schema["$schema"];
    return this.ajv.compile(file.includes(`${"/"}istio${"/"}`) ? closeCrdSchema(schema) : schema);
  }
}

/**
 * Istio CRD schemas leave objects open; the API server prunes unknown fields and `kubectl apply`
 * (field validation Strict) rejects them. Close every object that lists properties and does not
 * preserve unknown fields, and describe the envelope (apiVersion, kind, metadata) at the root.
 */
export function closeCrdSchema(root: Schema): Schema {
  const close = (s: unknown): void => {
    if (Array.isArray(s)) return s.forEach(close);
    if (typeof s !== "object" || s === null) return;
    const o = s as Schema;
    for (const v of Object.values(o)) close(v);
    if (o["properties"] !== undefined && o["additionalProperties"] === undefined && o["x-kubernetes-preserve-unknown-fields"] !== true) {
      o["additionalProperties"] = false;
    }
  };
  close(root);
  const props = (root["properties"] ?? {}) as Schema;
  root["properties"] = {
    ...props,
    apiVersion: { type: "string" },
    kind: { type: "string" },
    metadata: closed({
      name: { type: "string", minLength: 1, maxLength: 253 },
      namespace: { type: "string", pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" },
      labels: { type: "object", additionalProperties: { type: "string" } },
      annotations: { type: "object", additionalProperties: { type: "string" } },
    }, ["name"]),
  };
  root["required"] = [...new Set([...((root["required"] as string[] | undefined) ?? []), "apiVersion", "kind", "metadata"])];
  return root;
}

function dedupe(errors: readonly ErrorObject[]): ErrorObject[] {
  // oneOf/anyOf branches of k8s "int-or-string" and Istio oneofs produce noise around one real error.
  const precise = errors.filter((e) => e.keyword !== "oneOf" && e.keyword !== "anyOf" && e.keyword !== "not");
  const kept = precise.length > 0 ? precise : errors;
  const seen = new Set<string>();
  return kept.filter((e) => {
    const k = `${ajvErrorPath("", e)}|${ajvMessage(e)}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
