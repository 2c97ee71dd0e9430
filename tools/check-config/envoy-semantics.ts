// Checks of an Envoy bootstrap that its protos cannot express: meshward filter order, plugin
// configurations, clusters the filters and routes name, and routes for every header-router choice.
import { existsSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { checkPluginConfig, routerRoutes, type PluginName } from "./plugin-config.js";
import type { ProblemCode } from "./problem-codes.js";
import { childPath, type Problem } from "./problem.js";

type Obj = Record<string, unknown>;

const HCM_TYPE = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const WASM_TYPE = "envoy.extensions.filters.http.wasm.v3.Wasm";
const EXT_AUTHZ_TYPE = "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz";
const ROUTER_TYPE = "envoy.extensions.filters.http.router.v3.Router";

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Reads a field by its proto name or its lowerCamelCase JSON name (Envoy accepts both). */
export function field(o: unknown, snake: string): unknown {
  if (!isObj(o)) return undefined;
  if (snake in o) return o[snake];
  const camel = snake.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
  return o[camel];
}

/** The key actually used for a field in `o` (for paths in messages). */
function keyOf(o: unknown, snake: string): string {
  if (isObj(o) && !(snake in o)) {
    const camel = snake.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
    if (camel in o) return camel;
  }
  return snake;
}

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function typeName(anyValue: unknown): string {
  const url = isObj(anyValue) ? anyValue["@type"] : undefined;
  return typeof url === "string" ? url.slice(url.lastIndexOf("/") + 1) : "";
}

/** A meshward wasm filter found in an HTTP filter chain. */
export interface WasmFilterUse {
  readonly plugin: PluginName;
  readonly index: number;
  /** Path of the HTTP filter entry. */
  readonly path: string;
  /** Path of its JSON configuration (the StringValue's value). */
  readonly configPath?: string;
  readonly config?: Record<string, unknown>;
}

export interface SemanticsOptions {
  /** Directory that relative wasm `filename`s are resolved against (Envoy's working directory). */
  readonly baseDir: string;
  /** Whether missing local wasm files are reported (not for bootstraps meant for another filesystem). */
  readonly checkLocalFiles: boolean;
  /** Receives every valid meshward plugin configuration found (for cross-file checks). */
  readonly onPlugin?: (use: WasmFilterUse) => void;
}

/** All cross-field problems of one bootstrap document (already proto-valid). */
export function checkEnvoySemantics(doc: unknown, file: string, base: string, opts: SemanticsOptions): Problem[] {
  const out: Problem[] = [];
  const problem = (path: string, code: ProblemCode, message: string, severity?: "warning"): void => {
    out.push(severity ? { file, path, code, message, severity } : { file, path, code, message });
  };
  const sr = field(doc, "static_resources");
  const srPath = childPath(base, keyOf(doc, "static_resources"));
  const clusters = new Set(list(field(sr, "clusters")).map((c) => String(field(c, "name"))));
  const clustersKey = keyOf(sr, "clusters");

  list(field(sr, "listeners")).forEach((listener, li) => {
    const lPath = childPath(childPath(srPath, keyOf(sr, "listeners")), li);
    list(field(listener, "filter_chains")).forEach((chain, ci) => {
      const cPath = childPath(childPath(lPath, keyOf(listener, "filter_chains")), ci);
      list(field(chain, "filters")).forEach((netFilter, fi) => {
        const tc = field(netFilter, "typed_config");
        if (typeName(tc) !== HCM_TYPE) return;
        const hcmPath = childPath(childPath(childPath(cPath, keyOf(chain, "filters")), fi), keyOf(netFilter, "typed_config"));
        checkHcm(tc as Obj, hcmPath, clusters, clustersKey, opts, problem);
      });
    });
  });
  return out;
}

type Report = (path: string, code: ProblemCode, message: string, severity?: "warning") => void;

function checkHcm(hcm: Obj, hcmPath: string, clusters: ReadonlySet<string>, clustersKey: string, opts: SemanticsOptions, problem: Report): void {
  const filtersKey = keyOf(hcm, "http_filters");
  const filters = list(field(hcm, "http_filters"));
  const uses: WasmFilterUse[] = [];
  let extAuthzAt = -1;
  let routerAt = -1;
  filters.forEach((f, i) => {
    const fPath = childPath(childPath(hcmPath, filtersKey), i);
    const tc = field(f, "typed_config");
    const tcPath = childPath(fPath, keyOf(f, "typed_config"));
    const t = typeName(tc);
    if (t === ROUTER_TYPE) routerAt = i;
    if (t === EXT_AUTHZ_TYPE) {
      extAuthzAt = i;
      const grpc = field(tc, "grpc_service");
      const cluster = field(field(grpc, "envoy_grpc"), "cluster_name");
      if (typeof cluster === "string" && !clusters.has(cluster)) {
        problem(childPath(tcPath, "grpc_service.envoy_grpc.cluster_name"), "ERR_ENVOY_UNKNOWN_CLUSTER", `ext_authz cluster "${cluster}" is not defined in static_resources.${clustersKey}`);
      }
      if (grpc !== undefined && field(grpc, "timeout") === undefined) {
        problem(childPath(tcPath, "grpc_service"), "ERR_ENVOY_NO_TIMEOUT", "ext_authz grpc_service has no timeout (Envoy's default is 200ms; set it explicitly)", "warning");
      }
      if (field(tc, "failure_mode_allow") === true) {
        problem(childPath(tcPath, "failure_mode_allow"), "ERR_ENVOY_FAIL_OPEN_AUTHZ", "ext_authz fails open: requests pass unauthenticated when authz-server is down", "warning");
      }
    }
    if (t === WASM_TYPE) {
      const config = field(tc, "config");
      const cfgPath = childPath(tcPath, keyOf(tc, "config"));
      const rootId = field(config, "root_id");
      if (rootId !== "header-router" && rootId !== "rate-limit") return;
      const plugin = rootId as PluginName;
      if (plugin === "header-router" && (field(config, "failure_policy") === "FAIL_OPEN" || field(config, "fail_open") === true)) {
        const key = field(config, "failure_policy") === "FAIL_OPEN" ? "failure_policy" : "fail_open";
        problem(childPath(cfgPath, key), "ERR_ENVOY_ROUTER_FAIL_OPEN", "header-router fails open: if the module fails, a client-sent route header picks the route", "warning");
      }
      if (field(config, "fail_open") !== undefined) {
        problem(childPath(cfgPath, "fail_open"), "ERR_ENVOY_DEPRECATED", "fail_open is deprecated in Envoy 1.40 (warning at load): use failure_policy FAIL_OPEN or FAIL_CLOSED", "warning");
      }
      const code = field(field(field(config, "vm_config"), "code"), "local");
      const filename = field(code, "filename");
      if (opts.checkLocalFiles && typeof filename === "string") {
        const full = isAbsolute(filename) ? filename : resolve(opts.baseDir, filename);
        if (!existsSync(full)) problem(childPath(cfgPath, "vm_config.code.local.filename"), "ERR_ENVOY_WASM_MISSING", `${filename} does not exist (run npm run build:filters)`, "warning");
      }
      const configuration = field(config, "configuration");
      const confPath = childPath(cfgPath, keyOf(config, "configuration"));
      const value = isObj(configuration) ? configuration["value"] : undefined;
      if (typeName(configuration) !== "google.protobuf.StringValue" || typeof value !== "string") {
        problem(confPath, "ERR_PLUGIN_CONFIG_MISSING", `${plugin} needs its configuration as a google.protobuf.StringValue holding JSON`);
        uses.push({ plugin, index: i, path: fPath });
        return;
      }
      const result = checkPluginConfig(plugin, value, "", childPath(confPath, "value"));
      for (const p of result.problems) problem(p.path, p.code, p.message);
      const use: WasmFilterUse = result.config ? { plugin, index: i, path: fPath, configPath: childPath(confPath, "value"), config: result.config } : { plugin, index: i, path: fPath };
      uses.push(use);
      if (use.config) opts.onPlugin?.(use);
      const quotaCluster = result.config ? (result.config["quota"] as { cluster?: string } | undefined)?.cluster : undefined;
      if (quotaCluster !== undefined && !clusters.has(quotaCluster)) {
        problem(childPath(confPath, "value"), "ERR_ENVOY_UNKNOWN_CLUSTER", `rate-limit quota cluster "${quotaCluster}" is not defined in static_resources.${clustersKey}`);
      }
      const tokenEnv = result.config ? (result.config["quota"] as { tokenEnv?: string } | undefined)?.tokenEnv : undefined;
      if (quotaCluster !== undefined && tokenEnv === undefined) {
        problem(childPath(confPath, "value"), "ERR_PLUGIN_QUOTA_NO_TOKEN", "rate-limit leases quota without a token (quota.tokenEnv): a quota service that requires one refuses the leases, one that does not lets anyone take quota", "warning");
      } else if (tokenEnv !== undefined) {
        const env = field(field(config, "vm_config"), "environment_variables");
        const keys = [...list(field(env, "host_env_keys")), ...Object.keys((field(env, "key_values") as Obj | undefined) ?? {})];
        if (!keys.includes(tokenEnv)) {
          problem(childPath(cfgPath, "vm_config.environment_variables"), "ERR_PLUGIN_QUOTA_TOKEN_ENV", `quota.tokenEnv "${tokenEnv}" is not among the VM's environment_variables (host_env_keys or key_values): the filter would lease without its token`);
        }
      }
    }
  });

  checkPathHandling(hcm, hcmPath, problem);
  if (routerAt !== filters.length - 1) {
    problem(childPath(hcmPath, filtersKey), "ERR_ENVOY_FILTER_ORDER", "the router filter must be the last HTTP filter");
  }
  for (const u of uses) {
    if (u.plugin === "header-router" && extAuthzAt >= 0 && u.index < extAuthzAt) {
      problem(u.path, "ERR_ENVOY_FILTER_ORDER", "header-router must come after ext_authz (it may route on identity headers, and authz must see the request first)");
    }
  }
  const firstRateLimit = uses.find((u) => u.plugin === "rate-limit");
  if (firstRateLimit && extAuthzAt >= 0 && firstRateLimit.index > extAuthzAt) {
    problem(firstRateLimit.path, "ERR_ENVOY_FILTER_ORDER", "a rate-limit filter should come before ext_authz to shed load before authentication", "warning");
  }

  const routeConfig = field(hcm, "route_config");
  if (routeConfig === undefined) return;
  const rcPath = childPath(hcmPath, keyOf(hcm, "route_config"));
  const routes: { path: string; route: unknown }[] = [];
  list(field(routeConfig, "virtual_hosts")).forEach((vh, vi) => {
    const vhPath = childPath(childPath(rcPath, keyOf(routeConfig, "virtual_hosts")), vi);
    list(field(vh, "routes")).forEach((r, ri) => routes.push({ path: childPath(childPath(vhPath, keyOf(vh, "routes")), ri), route: r }));
  });
  for (const { path, route } of routes) {
    const action = field(route, "route");
    const cluster = field(action, "cluster");
    if (typeof cluster === "string" && !clusters.has(cluster)) {
      problem(childPath(path, "route.cluster"), "ERR_ENVOY_UNKNOWN_CLUSTER", `route cluster "${cluster}" is not defined in static_resources.${clustersKey}`);
    }
    list(field(field(action, "weighted_clusters"), "clusters")).forEach((wc, wi) => {
      const name = field(wc, "name");
      if (typeof name === "string" && !clusters.has(name)) {
        problem(childPath(path, `route.weighted_clusters.clusters[${wi}].name`), "ERR_ENVOY_UNKNOWN_CLUSTER", `route cluster "${name}" is not defined in static_resources.${clustersKey}`);
      }
    });
    if (action !== undefined && field(action, "timeout") === undefined) {
      problem(childPath(path, "route"), "ERR_ENVOY_NO_TIMEOUT", "route has no timeout (Envoy's default is 15s; set it explicitly)", "warning");
    }
  }
  for (const u of uses) {
    if (u.plugin !== "header-router" || !u.config) continue;
    const header = String(u.config["routeHeader"]).toLowerCase();
    const matched = new Set<string>();
    for (const { route } of routes) {
      for (const h of list(field(field(route, "match"), "headers"))) {
        if (String(field(h, "name")).toLowerCase() !== header) continue;
        const exact = field(field(h, "string_match"), "exact") ?? field(h, "exact_match");
        if (typeof exact === "string") matched.add(exact);
      }
    }
    for (const r of routerRoutes(u.config)) {
      if (!matched.has(r)) {
        problem(rcPath, "ERR_ROUTE_NOT_MATCHED", `header-router route "${r}" has no Envoy route matching header ${header}: ${r}`);
      }
    }
  }
}

const SAFE_ESCAPED_SLASHES = new Set(["REJECT_REQUEST", "UNESCAPE_AND_REDIRECT"]);

/**
 * What is authorised must be what is routed: ext_authz, the route table and the upstream must all see
 * one canonical path and host, so a policy on `/admin/**` cannot be bypassed by `/public/../admin`.
 */
function checkPathHandling(hcm: Obj, hcmPath: string, problem: Report): void {
  const missing: string[] = [];
  if (field(hcm, "normalize_path") !== true) missing.push("normalize_path: true");
  if (field(hcm, "merge_slashes") !== true) missing.push("merge_slashes: true");
  const escaped = field(hcm, "path_with_escaped_slashes_action");
  if (typeof escaped !== "string" || !SAFE_ESCAPED_SLASHES.has(escaped)) missing.push("path_with_escaped_slashes_action: REJECT_REQUEST (or UNESCAPE_AND_REDIRECT)");
  if (missing.length) {
    problem(hcmPath, "ERR_ENVOY_PATH_NOT_NORMALIZED", `the path is not normalised before ext_authz and routing (/public/../admin would be authorised as /public): set ${missing.join(", ")}`);
  }
  if (field(hcm, "strip_trailing_host_dot") !== true) {
    problem(hcmPath, "ERR_ENVOY_HOST_NOT_NORMALIZED", "strip_trailing_host_dot is not true: api.example.com. and api.example.com are different hosts to host-scoped rules", "warning");
  }
}
