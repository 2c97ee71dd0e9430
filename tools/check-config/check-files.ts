// check-config's engine: expands paths, recognises each document (Envoy bootstrap, policy, plugin
// configuration, Kubernetes/Istio manifest), validates it and runs the cross-file checks.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, extname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { PolicyInvalid } from "../../authz-server/src/errors.js";
import { compilePolicyText } from "../../authz-server/src/policy/load-policy.js";
import { cacheProblems } from "./cache-checks.js";
import { checkKustomization, crossCheckManifests, policyKeys, type ManifestDoc } from "./cross-checks.js";
import { BOOTSTRAP_TYPE, EnvoyJsonValidator, loadEnvoyProtos } from "./envoy-proto.js";
import { checkEnvoySemantics, type WasmFilterUse } from "./envoy-semantics.js";
import { ManifestValidator } from "./manifests.js";
import { checkPluginConfig } from "./plugin-config.js";
import { childPath, isError, type Problem } from "./problem.js";

/** The repository root (this module lives in tools/check-config/). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The Kubernetes and Istio JSON schemas shipped with check-config (see schemas/README.md). */
export const SHIPPED_SCHEMAS_DIR = join(dirname(fileURLToPath(import.meta.url)), "schemas");

/** Where manifests' schemas come from: MESHWARD_SCHEMAS_DIR when set, else the shipped folder. */
export function defaultSchemasDir(): string {
  return process.env["MESHWARD_SCHEMAS_DIR"] || SHIPPED_SCHEMAS_DIR;
}

export interface CheckOptions {
  /** Where istio/*.json and k8s/*.json live (default: defaultSchemasDir()); a missing folder is an error. */
  readonly schemasDir?: string | undefined;
  /** Envoy's working directory for relative wasm paths (default: the repository root). */
  readonly envoyBaseDir?: string;
}

export interface CheckReport {
  readonly files: readonly string[];
  readonly problems: readonly Problem[];
  /** Bootstraps that passed the proto and semantic checks, for `envoy --mode validate` (cli.ts). */
  readonly bootstraps: readonly { file: string; path: string; value: unknown }[];
}

const CONFIG_EXT = new Set([".yaml", ".yml", ".json"]);
const MAX_FILE_BYTES = 4 * 1024 * 1024;

/** Files to check under `paths` (directories recursively; .yaml/.yml/.json only), sorted. */
export function expandPaths(paths: readonly string[]): { files: string[]; problems: Problem[] } {
  const files: string[] = [];
  const problems: Problem[] = [];
  const walk = (p: string): void => {
    for (const e of readdirSync(p, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.name.startsWith(".") || e.name === "node_modules") continue;
      const full = join(p, e.name);
      if (e.isDirectory()) walk(full);
      else if (CONFIG_EXT.has(extname(e.name))) files.push(full);
    }
  };
  for (const p of paths) {
    if (!existsSync(p)) {
      problems.push({ file: p, path: "", code: "ERR_FILE_MISSING", message: "no such file or directory" });
      continue;
    }
    if (statSync(p).isDirectory()) walk(p);
    else files.push(p);
  }
  return { files: [...new Set(files)], problems };
}

/** Validates every file and document under `paths`, then the cross-file checks. */
export function checkPaths(paths: readonly string[], opts: CheckOptions = {}): CheckReport {
  const { files, problems } = expandPaths(paths);
  const schemasDir = opts.schemasDir ?? defaultSchemasDir();
  const manifests = new ManifestValidator(schemasDir);
  const docs: ManifestDoc[] = [];
  let envoy: EnvoyJsonValidator | undefined;
  const envoyValidator = (): EnvoyJsonValidator => (envoy ??= new EnvoyJsonValidator(loadEnvoyProtos()));
  const baseDir = opts.envoyBaseDir ?? REPO_ROOT;
  const bootstraps: { file: string; path: string; value: unknown }[] = [];

  /** Global (leased) limits the filters use, and the limits the policies define (the authority). */
  const globalLimits: { file: string; path: string; domain: string; name: string }[] = [];
  const policyLimits = new Set<string>();
  let policies = 0;
  const collectGlobal = (file: string, path: string, config: Record<string, unknown> | undefined): void => {
    const domain = config?.["domain"];
    const limits = (config?.["limits"] ?? []) as { name: string; global?: unknown }[];
    limits.forEach((l, i) => {
      if (l.global !== undefined && typeof domain === "string") globalLimits.push({ file, path: childPath(childPath(path, "limits"), i), domain, name: l.name });
    });
  };

  const checkBootstrap = (value: unknown, file: string, base: string, checkLocalFiles: boolean): void => {
    const found = envoyValidator().validate(BOOTSTRAP_TYPE, value, file, base);
    problems.push(...found);
    if (found.some(isError)) return;
    const onPlugin = (u: WasmFilterUse): void => {
      if (u.plugin === "rate-limit") collectGlobal(file, u.configPath ?? u.path, u.config);
    };
    const semantic = checkEnvoySemantics(value, file, base, { baseDir, checkLocalFiles, onPlugin });
    problems.push(...semantic);
    if (!semantic.some(isError)) bootstraps.push({ file, path: base, value });
  };
  const checkPolicy = (text: string, file: string, base: string): void => {
    try {
      const policy = compilePolicyText(text, file);
      policies++;
      for (const l of policy.rateLimits) policyLimits.add(`${l.domain}/${l.name}`);
      const jwt = (policy.document.spec.providers?.jwt ?? []) as readonly { name: string; audiences?: readonly string[] }[];
      jwt.forEach((p, i) => {
        if (p.audiences === undefined || p.audiences.length === 0) {
          const path = `spec.providers.jwt[${i}].audiences`;
          problems.push({ file, path: base === "" ? path : `${base} → ${path}`, code: "ERR_POLICY_NO_AUDIENCE", severity: "warning", message: `JWT provider '${p.name}' has no audiences: tokens minted for any audience of this issuer are accepted` });
        }
      });
      problems.push(...cacheProblems(policy, file, base));
    } catch (err) {
      if (!(err instanceof PolicyInvalid)) throw err;
      problems.push({ file: err.file, path: base === "" ? err.path : err.path === "" ? base : `${base} → ${err.path}`, code: err.code, message: err.problem });
    }
  };

  for (const file of files) {
    let text: string;
    try {
      if (statSync(file).size > MAX_FILE_BYTES) {
        problems.push({ file, path: "", code: "ERR_FILE_TOO_LARGE", message: `larger than ${MAX_FILE_BYTES} bytes` });
        continue;
      }
      text = readFileSync(file, "utf8");
    } catch (err) {
      problems.push({ file, path: "", code: "ERR_FILE_UNREADABLE", message: (err as Error).message });
      continue;
    }
    const parsed = parseDocuments(text, file);
    if ("problem" in parsed) {
      problems.push(parsed.problem);
      continue;
    }
    const many = parsed.values.length > 1;
    parsed.values.forEach((value, i) => {
      const base = many ? `doc[${i}]` : "";
      const kind = classify(value);
      switch (kind) {
        case "envoy":
          return checkBootstrap(value, file, base, true);
        case "policy":
          return checkPolicy(many ? JSON.stringify(value) : text, file, base);
        case "jwks":
          problems.push(...checkJwks(value, file, base));
          return;
        case "header-router":
        case "rate-limit":
          problems.push(...checkPluginConfig(kind, value, file, base).problems);
          return;
        case "manifest": {
          const m: ManifestDoc = { file, base, doc: value as Record<string, unknown> };
          docs.push(m);
          problems.push(...manifests.validate(m.doc, file, base));
          if (m.doc["kind"] === "Kustomization" || m.doc["kind"] === "Component") problems.push(...checkKustomization(m));
          if (m.doc["kind"] === "ConfigMap") {
            const data = (m.doc["data"] ?? {}) as Record<string, unknown>;
            const annotations = ((m.doc["metadata"] as Record<string, unknown> | undefined)?.["annotations"] ?? {}) as Record<string, unknown>;
            for (const key of policyKeys(m)) checkPolicy(String(data[key]), `${file} data.${key}`, "");
            if (annotations["meshward.io/config-kind"] === "envoy-bootstrap") {
              for (const [key, v] of Object.entries(data)) {
                const inner = parseDocuments(String(v), `${file} data.${key}`);
                if ("problem" in inner) problems.push(inner.problem);
                else checkBootstrap(inner.values[0], file, childPath(childPath(base, "data"), key), false);
              }
            }
          }
          return;
        }
        case undefined:
          problems.push({ file, path: base, code: "ERR_UNRECOGNIZED", severity: "warning", message: "not a recognised configuration (Envoy bootstrap, policy, plugin configuration or manifest); skipped" });
      }
    });
  }
  if (docs.length > 0 && !existsSync(schemasDir)) {
    problems.push({ file: schemasDir, path: "", code: "ERR_SCHEMAS_MISSING", message: "JSON schema folder not found (check --schemas or MESHWARD_SCHEMAS_DIR); Kubernetes/Istio manifests cannot be schema-validated" });
  }
  problems.push(...crossCheckManifests(docs));
  for (const m of docs) {
    const spec = m.doc["spec"] as Record<string, unknown> | undefined;
    if (m.doc["kind"] === "WasmPlugin" && spec?.["pluginName"] === "rate-limit") {
      collectGlobal(m.file, childPath(m.base, "spec.pluginConfig"), spec["pluginConfig"] as Record<string, unknown> | undefined);
    }
    const wasm = spec?.["wasm"] as Record<string, unknown> | undefined;
    if (m.doc["kind"] === "TrafficExtension" && wasm?.["pluginName"] === "rate-limit") {
      collectGlobal(m.file, childPath(m.base, "spec.wasm.pluginConfig"), wasm["pluginConfig"] as Record<string, unknown> | undefined);
    }
  }
  if (policies > 0) {
    for (const g of globalLimits) {
      if (!policyLimits.has(`${g.domain}/${g.name}`)) {
        problems.push({ file: g.file, path: g.path, code: "ERR_CROSS_GLOBAL_LIMIT_UNKNOWN", message: `global limit "${g.name}" of domain "${g.domain}" is not in any checked policy's spec.rateLimits (leases would answer 404)` });
      }
    }
  }
  return { files, problems, bootstraps };
}

type DocKind = "envoy" | "policy" | "jwks" | "header-router" | "rate-limit" | "manifest" | undefined;

/** A JWKS file (jwks: { file }) must hold public keys only. */
function checkJwks(v: unknown, file: string, base: string): Problem[] {
  const out: Problem[] = [];
  const keys = (v as { keys: unknown }).keys;
  if (!Array.isArray(keys)) return [{ file, path: childPath(base, "keys"), code: "ERR_JWKS_INVALID", message: "expected an array of JWKs" }];
  keys.forEach((k, i) => {
    const p = childPath(childPath(base, "keys"), i);
    if (typeof k !== "object" || k === null || typeof (k as { kty?: unknown }).kty !== "string") out.push({ file, path: p, code: "ERR_JWKS_INVALID", message: "a JWK needs a string kty" });
    else if ("d" in k || "p" in k || "k" in k) out.push({ file, path: p, code: "ERR_JWKS_PRIVATE_KEY", message: "holds private or symmetric key material; a JWKS file must contain public keys only" });
  });
  return out;
}

function classify(v: unknown): DocKind {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  if (o["apiVersion"] === "meshward.io/v1") return "policy";
  if (typeof o["apiVersion"] === "string" && typeof o["kind"] === "string") return "manifest";
  if ("static_resources" in o || "staticResources" in o || "admin" in o || "dynamic_resources" in o || "node" in o) return "envoy";
  if ("keys" in o && Object.keys(o).length === 1) return "jwks";
  if ("routeHeader" in o) return "header-router";
  if ("domain" in o && "limits" in o) return "rate-limit";
  return undefined;
}

function parseDocuments(text: string, file: string): { values: unknown[] } | { problem: Problem } {
  if (file.endsWith(".json")) {
    try {
      return { values: [JSON.parse(text)] };
    } catch (err) {
      return { problem: { file, path: "", code: "ERR_PARSE", message: `invalid JSON: ${(err as Error).message}` } };
    }
  }
  const docs = parseAllDocuments(text, { uniqueKeys: true, prettyErrors: false });
  const list = Array.isArray(docs) ? docs : [docs];
  for (const d of list) {
    const err = d.errors[0];
    if (err) return { problem: { file, path: "", code: "ERR_PARSE", message: `invalid YAML: ${err.message.split("\n")[0]}` } };
  }
  return { values: list.map((d) => d.toJS({ maxAliasCount: 100 }) as unknown).filter((v) => v !== null && v !== undefined) };
}

/** Paths relative to the working directory, for messages. */
export function displayPath(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel.startsWith("..") ? file : rel;
}
