// Checks across manifests that no schema can do: CUSTOM providers exist in the mesh config, plugin
// configurations are valid, routes exist for every header-router choice, ports agree end to end.
import { existsSync } from "node:fs";
import { basename, dirname, join, posix } from "node:path";
import { parse as parseYaml } from "yaml";
import { checkPluginConfig, routerRoutes, type PluginName } from "./plugin-config.js";
import type { ProblemCode } from "./problem-codes.js";
import type { Problem } from "./problem.js";

type Obj = Record<string, unknown>;

/** One Kubernetes/Istio document among the checked files. */
export interface ManifestDoc {
  readonly file: string;
  /** Path prefix of this document in messages ("" for single-document files, else "doc[N]"). */
  readonly base: string;
  readonly doc: Obj;
}

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function get(o: unknown, ...keys: (string | number)[]): unknown {
  let cur: unknown = o;
  for (const k of keys) {
    if (typeof k === "number") cur = Array.isArray(cur) ? cur[k] : undefined;
    else cur = isObj(cur) ? cur[k] : undefined;
  }
  return cur;
}

function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

function at(m: ManifestDoc, path: string): string {
  return m.base === "" ? path : path === "" ? m.base : `${m.base}.${path}`;
}

function kindIs(m: ManifestDoc, kind: string, group?: string): boolean {
  if (m.doc["kind"] !== kind) return false;
  if (group === undefined) return true;
  const apiVersion = String(m.doc["apiVersion"]);
  return group === "" ? !apiVersion.includes("/") : apiVersion.startsWith(`${group}/`);
}

function ns(m: ManifestDoc): string {
  return str(get(m.doc, "metadata", "namespace")) ?? "default";
}

function name(m: ManifestDoc): string {
  return str(get(m.doc, "metadata", "name")) ?? "";
}

interface Provider {
  readonly name: string;
  readonly grpc?: { readonly service: string; readonly port: number };
  readonly where: ManifestDoc;
  readonly path: string;
}

/** Extension providers declared by an IstioOperator, or by the `istio` ConfigMap's `mesh` text. */
function extensionProviders(docs: readonly ManifestDoc[], invalid: (m: ManifestDoc, message: string) => void): Provider[] | undefined {
  let found = false;
  const out: Provider[] = [];
  const collect = (m: ManifestDoc, list: unknown, path: string): void => {
    found = true;
    arr(list).forEach((p, i) => {
      const grpc = get(p, "envoyExtAuthzGrpc");
      const service = str(get(grpc, "service"));
      const port = Number(get(grpc, "port"));
      out.push({ name: String(get(p, "name")), ...(service !== undefined ? { grpc: { service, port } } : {}), where: m, path: `${path}[${i}]` });
    });
  };
  for (const m of docs) {
    if (kindIs(m, "IstioOperator", "install.istio.io")) collect(m, get(m.doc, "spec", "meshConfig", "extensionProviders"), "spec.meshConfig.extensionProviders");
    if (kindIs(m, "ConfigMap", "") && name(m) === "istio" && typeof get(m.doc, "data", "mesh") === "string") {
      let mesh: unknown;
      try {
        mesh = parseYaml(get(m.doc, "data", "mesh") as string) as unknown;
      } catch (err) {
        invalid(m, `data.mesh is not valid YAML: ${(err as Error).message.split("\n")[0]}`);
      }
      collect(m, get(mesh, "extensionProviders"), "data.mesh.extensionProviders");
    }
  }
  return found ? out : undefined;
}

/** Resolves `name.namespace.svc.cluster.local` (or `name.namespace`) to a Service among the docs. */
function findService(docs: readonly ManifestDoc[], host: string): ManifestDoc | undefined {
  const [svc, namespace] = host.split(".");
  return docs.find((m) => kindIs(m, "Service", "") && name(m) === svc && (namespace === undefined || ns(m) === namespace));
}

function selects(selector: unknown, labels: unknown): boolean {
  if (!isObj(selector) || !isObj(labels) || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

export function crossCheckManifests(docs: readonly ManifestDoc[]): Problem[] {
  const out: Problem[] = [];
  const problem = (m: ManifestDoc, path: string, code: ProblemCode, message: string, severity?: "warning"): void => {
    const p = { file: m.file, path: at(m, path), code, message };
    out.push(severity ? { ...p, severity } : p);
  };
  const providers = extensionProviders(docs, (m, message) => problem(m, "data.mesh", "ERR_CROSS_MESH_CONFIG_INVALID", message));

  // Mesh path normalisation is stated and at least merges slashes (Istio's default BASE keeps `//`).
  for (const m of docs.filter((d) => kindIs(d, "IstioOperator", "install.istio.io"))) {
    if (get(m.doc, "spec", "meshConfig") === undefined) continue;
    const normalization = str(get(m.doc, "spec", "meshConfig", "pathNormalization", "normalization"));
    if (normalization === undefined) {
      problem(m, "spec.meshConfig.pathNormalization", "ERR_CROSS_PATH_NORMALIZATION", "pathNormalization is not stated (Istio's default BASE keeps //); set normalization: DECODE_AND_MERGE_SLASHES", "warning");
    } else if (normalization !== "MERGE_SLASHES" && normalization !== "DECODE_AND_MERGE_SLASHES") {
      problem(m, "spec.meshConfig.pathNormalization.normalization", "ERR_CROSS_PATH_NORMALIZATION", `pathNormalization ${normalization} lets //admin or /a/..;/admin past path rules; use DECODE_AND_MERGE_SLASHES (or MERGE_SLASHES)`);
    }
  }
  // ext_authz skipped on some paths also skips the removal of client-sent identity headers there.
  for (const m of docs.filter((d) => kindIs(d, "AuthorizationPolicy", "security.istio.io"))) {
    if (get(m.doc, "spec", "action") !== "CUSTOM") continue;
    arr(get(m.doc, "spec", "rules")).forEach((r, ri) => arr(get(r, "to")).forEach((t, ti) => {
      if (get(t, "operation", "notPaths") !== undefined) {
        problem(m, `spec.rules[${ri}].to[${ti}].operation.notPaths`, "ERR_CROSS_AUTHZ_SKIPPED", "notPaths skip ext_authz, and with it the removal of client-sent identity headers, on those paths; let the policy answer them (allow: anonymous)", "warning");
      }
    }));
  }

  // CUSTOM AuthorizationPolicy → extension provider.
  for (const m of docs.filter((d) => kindIs(d, "AuthorizationPolicy", "security.istio.io"))) {
    if (get(m.doc, "spec", "action") !== "CUSTOM") continue;
    const provider = str(get(m.doc, "spec", "provider", "name"));
    if (provider === undefined) {
      problem(m, "spec.provider.name", "ERR_CROSS_PROVIDER_MISSING", "action CUSTOM needs spec.provider.name");
    } else if (providers === undefined) {
      problem(m, "spec.provider.name", "ERR_CROSS_PROVIDER_UNVERIFIED", `cannot verify provider "${provider}": no mesh config (IstioOperator or istio ConfigMap) among the checked files`, "warning");
    } else if (!providers.some((p) => p.name === provider)) {
      problem(m, "spec.provider.name", "ERR_CROSS_PROVIDER_UNKNOWN", `provider "${provider}" is not in meshConfig.extensionProviders (known: ${providers.map((p) => p.name).join(", ") || "none"})`);
    }
  }

  // extensionProviders → Service port (and the Service's targetPort → Deployment containerPort).
  for (const p of providers ?? []) {
    if (!p.grpc) continue;
    const svc = findService(docs, p.grpc.service);
    if (!svc) {
      if (docs.some((d) => kindIs(d, "Service", ""))) problem(p.where, `${p.path}.envoyExtAuthzGrpc.service`, "ERR_CROSS_SERVICE_UNKNOWN", `service "${p.grpc.service}" is not among the checked Services`);
      continue;
    }
    const port = arr(get(svc.doc, "spec", "ports")).find((sp) => get(sp, "port") === p.grpc?.port);
    if (!port) {
      problem(p.where, `${p.path}.envoyExtAuthzGrpc.port`, "ERR_CROSS_PORT_MISMATCH", `port ${p.grpc.port} is not a port of Service ${ns(svc)}/${name(svc)} (${arr(get(svc.doc, "spec", "ports")).map((sp) => get(sp, "port")).join(", ")})`);
    } else if (get(port, "name") !== "grpc" && !String(get(port, "name")).startsWith("grpc-") && get(port, "appProtocol") !== "grpc") {
      problem(p.where, `${p.path}.envoyExtAuthzGrpc.port`, "ERR_CROSS_PORT_PROTOCOL", `Service port ${p.grpc.port} is not declared as gRPC (name "grpc" or appProtocol grpc); Istio would not use HTTP/2`);
    }
  }

  // Service targetPort → a container port of the Deployment it selects; --grpc-addr/--http-addr agree.
  for (const svc of docs.filter((d) => kindIs(d, "Service", ""))) {
    const selector = get(svc.doc, "spec", "selector");
    const deployments = docs.filter((d) => kindIs(d, "Deployment", "apps") && ns(d) === ns(svc) && selects(selector, get(d.doc, "spec", "template", "metadata", "labels")));
    for (const dep of deployments) {
      const containers = arr(get(dep.doc, "spec", "template", "spec", "containers"));
      const containerPorts = containers.flatMap((c) => arr(get(c, "ports")));
      arr(get(svc.doc, "spec", "ports")).forEach((sp, i) => {
        const target = get(sp, "targetPort") ?? get(sp, "port");
        const ok = containerPorts.some((cp) => (typeof target === "string" ? get(cp, "name") === target : get(cp, "containerPort") === target));
        if (!ok) problem(svc, `spec.ports[${i}].targetPort`, "ERR_CROSS_PORT_MISMATCH", `targetPort ${JSON.stringify(target)} is not a container port of Deployment ${ns(dep)}/${name(dep)}`);
      });
      containers.forEach((c, ci) => {
        const args = arr(get(c, "args")).map(String);
        for (const [flag, portName] of [["--grpc-addr", "grpc"], ["--http-addr", "http"]] as const) {
          const idx = args.indexOf(flag);
          if (idx < 0) continue;
          const argPort = Number(args[idx + 1]?.split(":").pop());
          const cp = arr(get(c, "ports")).find((p) => get(p, "name") === portName);
          if (cp && get(cp, "containerPort") !== argPort) {
            problem(dep, `spec.template.spec.containers[${ci}].args[${idx + 1}]`, "ERR_CROSS_PORT_MISMATCH", `${flag} port ${argPort} differs from container port "${portName}" (${String(get(cp, "containerPort"))})`);
          }
        }
      });
    }
  }

  // Deployment --policy → a mounted ConfigMap holding that key.
  for (const dep of docs.filter((d) => kindIs(d, "Deployment", "apps"))) {
    const podSpec = get(dep.doc, "spec", "template", "spec");
    arr(get(podSpec, "containers")).forEach((c, ci) => {
      const args = arr(get(c, "args")).map(String);
      const idx = args.indexOf("--policy");
      if (idx < 0) return;
      const policyPath = args[idx + 1] ?? "";
      const mount = arr(get(c, "volumeMounts")).find((vm) => policyPath.startsWith(`${String(get(vm, "mountPath")).replace(/\/$/, "")}/`));
      const argPath = `spec.template.spec.containers[${ci}].args[${idx + 1}]`;
      if (!mount) return problem(dep, argPath, "ERR_CROSS_POLICY_MOUNT", `no volumeMount contains the policy file ${policyPath}`);
      const volume = arr(get(podSpec, "volumes")).find((v) => get(v, "name") === get(mount, "name"));
      const cmName = str(get(volume, "configMap", "name"));
      if (cmName === undefined) return;
      const cm = docs.find((d) => kindIs(d, "ConfigMap", "") && name(d) === cmName && ns(d) === ns(dep));
      const key = posix.relative(String(get(mount, "mountPath")), policyPath);
      if (!cm) {
        if (docs.some((d) => kindIs(d, "ConfigMap", ""))) problem(dep, argPath, "ERR_CROSS_POLICY_MOUNT", `ConfigMap ${cmName} (mounted for the policy) is not among the checked files`);
      } else if (typeof get(cm.doc, "data", key) !== "string") {
        problem(dep, argPath, "ERR_CROSS_POLICY_MOUNT", `ConfigMap ${cmName} has no key "${key}" for the policy file ${policyPath}`);
      }
    });
  }

  // DestinationRule host → a Service.
  for (const dr of docs.filter((d) => kindIs(d, "DestinationRule", "networking.istio.io"))) {
    const host = str(get(dr.doc, "spec", "host"));
    if (host === undefined || findService(docs, host) || !docs.some((d) => kindIs(d, "Service", "") && name(d) === host.split(".")[0])) continue;
    problem(dr, "spec.host", "ERR_CROSS_SERVICE_UNKNOWN", `host "${host}" does not name a checked Service in that namespace`);
  }

  // WasmPlugin / TrafficExtension: our plugin configurations, phases, and routes for every header-router choice.
  const routeMatches = new Map<string, Set<string>>();
  for (const vs of docs.filter((d) => kindIs(d, "VirtualService", "networking.istio.io"))) {
    for (const http of arr(get(vs.doc, "spec", "http"))) {
      for (const match of arr(get(http, "match"))) {
        const headers = get(match, "headers");
        if (!isObj(headers)) continue;
        for (const [h, m] of Object.entries(headers)) {
          const exact = str(get(m, "exact"));
          if (exact === undefined) continue;
          const set = routeMatches.get(h.toLowerCase()) ?? new Set<string>();
          set.add(exact);
          routeMatches.set(h.toLowerCase(), set);
        }
      }
    }
  }
  const haveVirtualServices = docs.some((d) => kindIs(d, "VirtualService", "networking.istio.io"));
  // WasmPlugin keeps the module fields in spec; TrafficExtension (Istio 1.30+) in spec.wasm.
  const wasmExtensions = [
    ...docs.filter((d) => kindIs(d, "WasmPlugin", "extensions.istio.io")).map((d) => ({ wp: d, w: "spec", module: get(d.doc, "spec") })),
    ...docs.filter((d) => kindIs(d, "TrafficExtension", "extensions.istio.io") && isObj(get(d.doc, "spec", "wasm"))).map((d) => ({ wp: d, w: "spec.wasm", module: get(d.doc, "spec", "wasm") })),
  ];
  for (const { wp, w, module } of wasmExtensions) {
    const plugin = str(get(module, "pluginName"));
    if (plugin !== "header-router" && plugin !== "rate-limit") {
      problem(wp, `${w}.pluginName`, "ERR_CROSS_PLUGIN_UNKNOWN", `pluginName ${JSON.stringify(plugin)} is not a meshward filter (header-router, rate-limit)`, "warning");
      continue;
    }
    const result = checkPluginConfig(plugin as PluginName, get(module, "pluginConfig") ?? {}, wp.file, at(wp, `${w}.pluginConfig`));
    out.push(...result.problems);
    const phase = get(wp.doc, "spec", "phase");
    if (plugin === "header-router" && phase !== "STATS") {
      problem(wp, "spec.phase", "ERR_CROSS_PLUGIN_PHASE", `header-router must run in phase STATS (after the CUSTOM ext_authz), not ${JSON.stringify(phase ?? "unset")}`);
    }
    if (plugin === "header-router" && get(module, "failStrategy") === "FAIL_OPEN") {
      problem(wp, `${w}.failStrategy`, "ERR_CROSS_ROUTER_FAIL_OPEN", "header-router with FAIL_OPEN: if the module fails, a client-sent route header picks the route", "warning");
    }
    if (plugin === "header-router" && result.config && haveVirtualServices) {
      const header = String(result.config["routeHeader"]).toLowerCase();
      const matched = routeMatches.get(header) ?? new Set<string>();
      for (const r of routerRoutes(result.config)) {
        if (!matched.has(r)) problem(wp, `${w}.pluginConfig`, "ERR_ROUTE_NOT_MATCHED", `header-router route "${r}" has no VirtualService http route matching header ${header}: exact ${r}`);
      }
    }
    const quota = result.config ? (result.config["quota"] as { cluster?: string; tokenEnv?: string } | undefined) : undefined;
    if (quota?.tokenEnv !== undefined && !arr(get(module, "vmConfig", "env")).some((e) => get(e, "name") === quota.tokenEnv)) {
      problem(wp, `${w}.vmConfig.env`, "ERR_PLUGIN_QUOTA_TOKEN_ENV", `quota.tokenEnv "${quota.tokenEnv}" is not in ${w}.vmConfig.env: the filter would lease without its token`);
    } else if (quota?.cluster !== undefined && quota.tokenEnv === undefined) {
      problem(wp, `${w}.pluginConfig.quota`, "ERR_PLUGIN_QUOTA_NO_TOKEN", "rate-limit leases quota without a token (quota.tokenEnv): a quota service that requires one refuses the leases, one that does not lets anyone take quota", "warning");
    }
    const m = quota?.cluster ? /^outbound\|(\d+)\|[^|]*\|(.+)$/.exec(quota.cluster) : null;
    if (quota?.cluster !== undefined && m === null) {
      problem(wp, `${w}.pluginConfig.quota.cluster`, "ERR_CROSS_QUOTA_CLUSTER", `under Istio the quota cluster is "outbound|<port>||<service host>", got "${quota.cluster}"`);
    } else if (m) {
      const svc = findService(docs, m[2] as string);
      if (svc && !arr(get(svc.doc, "spec", "ports")).some((p) => get(p, "port") === Number(m[1]))) {
        problem(wp, `${w}.pluginConfig.quota.cluster`, "ERR_CROSS_PORT_MISMATCH", `Service ${ns(svc)}/${name(svc)} has no port ${m[1]} for the quota cluster`);
      }
    }
    const sha = str(get(module, "sha256"));
    if (sha !== undefined && /^0{64}$/.test(sha)) {
      problem(wp, `${w}.sha256`, "ERR_CROSS_PLACEHOLDER_DIGEST", "sha256 is a placeholder: after pushing the image, run `npm run pin-wasm-digests` before deploying", "warning");
    }
  }
  return out;
}

/** Kustomization and Component `resources` and `components` must exist next to the kustomization file. */
export function checkKustomization(m: ManifestDoc): Problem[] {
  const out: Problem[] = [];
  for (const key of ["resources", "components"] as const) {
    arr(m.doc[key]).forEach((r, i) => {
      if (typeof r !== "string" || /^[a-z]+:\/\//.test(r)) return;
      const full = join(dirname(m.file), r);
      if (!existsSync(full)) out.push({ file: m.file, path: at(m, `${key}[${i}]`), code: "ERR_CROSS_RESOURCE_MISSING", message: `${key === "resources" ? "resource" : "component"} ${r} does not exist` });
    });
  }
  return out;
}

/** The data keys of a ConfigMap that hold a meshward policy (by file name). */
export function policyKeys(m: ManifestDoc): string[] {
  const data = m.doc["data"];
  if (!isObj(data)) return [];
  return Object.keys(data).filter((k) => /(^|[-_.])policy\.(ya?ml|json)$/.test(basename(k)));
}
