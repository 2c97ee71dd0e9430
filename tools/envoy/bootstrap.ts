// Building blocks for Envoy bootstraps on loopback: clusters to local servers, wasm filters for the
// built artifacts, file access logs, TLS contexts, and the shipped configs rewritten to port-0 listeners.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { ROOT } from "./resolve.js";
import { localiseWasmPaths } from "./validate.js";

export type Obj = Record<string, any>;

const WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";

/** `host:port` → an Envoy socket address. */
export function socketAddress(address: string): Obj {
  const i = address.lastIndexOf(":");
  return { socket_address: { address: address.slice(0, i), port_value: Number(address.slice(i + 1)) } };
}

/** A STATIC cluster with one loopback endpoint; `http2` for gRPC, `tls` for an UpstreamTlsContext. */
export function loopbackCluster(name: string, address: string, opts: { http2?: boolean; tls?: Obj; connectTimeout?: string } = {}): Obj {
  const cluster: Obj = {
    name,
    type: "STATIC",
    connect_timeout: opts.connectTimeout ?? "0.25s",
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(address) } }] }] },
  };
  if (opts.http2) {
    cluster["typed_extension_protocol_options"] = {
      "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        explicit_http_config: { http2_protocol_options: {} },
      },
    };
  }
  if (opts.tls) cluster["transport_socket"] = { name: "envoy.transport_sockets.tls", typed_config: { "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext", ...opts.tls } };
  return cluster;
}

/** The built filters (filters/build/<name>.wasm) by name; any other value is taken as a path to a .wasm file. */
export function wasmFile(plugin: string): string {
  return plugin.endsWith(".wasm") ? plugin : join(ROOT, "filters/build", `${plugin}.wasm`);
}

export interface WasmFilterOptions {
  /** "header-router", "rate-limit", "noop" (filters/build) or a path to a .wasm file. */
  readonly plugin: string;
  /** The plugin configuration (an object is sent as JSON). */
  readonly config: unknown;
  /** Default: the plugin name (our filters register root ids equal to their names). */
  readonly rootId?: string;
  /** Plugins with the same vm_id share VMs (one per worker). Default: `meshward-<plugin>`. */
  readonly vmId?: string;
  /** Default FAIL_CLOSED. */
  readonly failurePolicy?: "FAIL_CLOSED" | "FAIL_OPEN";
  readonly name?: string;
}

/** An HTTP filter running a proxy-wasm module in Envoy's V8 runtime. */
export function wasmFilter(o: WasmFilterOptions): Obj {
  const name = o.name ?? `meshward.${o.plugin.replace(/\.wasm$/, "").replace(/^.*\//, "")}`;
  const rootId = o.rootId ?? o.plugin.replace(/\.wasm$/, "").replace(/^.*\//, "");
  return {
    name,
    typed_config: {
      "@type": WASM_TYPE,
      config: {
        name,
        root_id: rootId,
        vm_config: { vm_id: o.vmId ?? `meshward-${rootId}`, runtime: "envoy.wasm.runtime.v8", code: { local: { filename: wasmFile(o.plugin) } } },
        failure_policy: o.failurePolicy ?? "FAIL_CLOSED",
        configuration: { "@type": "type.googleapis.com/google.protobuf.StringValue", value: typeof o.config === "string" ? o.config : JSON.stringify(o.config) },
      },
    },
  };
}

export const ROUTER_FILTER: Obj = { name: "envoy.filters.http.router", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } };

/** An access log writing one JSON object per request to `path`. */
export function fileAccessLog(path: string, fields: Record<string, string>): Obj {
  return {
    name: "envoy.access_loggers.file",
    typed_config: { "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog", path, log_format: { json_format: fields } },
  };
}

/** An HTTP listener on 127.0.0.1:0 with the given filters and routes; `routeConfig` adds members to its route_config. */
export function httpListener(name: string, httpFilters: readonly Obj[], routes: readonly Obj[], extra: { accessLog?: Obj[]; hcm?: Obj; routeConfig?: Obj; transportSocket?: Obj } = {}): Obj {
  const chain: Obj = {
    filters: [
      {
        name: "envoy.filters.network.http_connection_manager",
        typed_config: {
          "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
          stat_prefix: name.replace(/[^A-Za-z0-9_]/g, "_"),
          codec_type: "AUTO",
          ...(extra.accessLog ? { access_log: extra.accessLog } : {}),
          route_config: { name: `${name}-routes`, virtual_hosts: [{ name: "all", domains: ["*"], routes }], ...(extra.routeConfig ?? {}) },
          http_filters: [...httpFilters, ROUTER_FILTER],
          ...(extra.hcm ?? {}),
        },
      },
    ],
  };
  if (extra.transportSocket) chain["transport_socket"] = extra.transportSocket;
  return { name, address: { socket_address: { address: "127.0.0.1", port_value: 0 } }, filter_chains: [chain] };
}

/**
 * A shipped bootstrap (envoy/local/*.yaml, or the `envoy.yaml` of a ConfigMap) made runnable on this
 * machine: listeners on 127.0.0.1:0, each named cluster pointed at a loopback address (STATIC), wasm
 * paths pointing at the built filters. A cluster missing from `endpoints` is an error; `vmEnv` pins
 * the Wasm VMs' environment (pinVmEnvironment).
 */
export function shippedBootstrap(file: string, endpoints: Readonly<Record<string, string>>, opts: { vmEnv?: Readonly<Record<string, string>> } = {}): Obj {
  const text = readFileSync(join(ROOT, file), "utf8");
  let doc = parseYaml(text) as Obj;
  if (doc["kind"] === "ConfigMap") doc = parseYaml(String(doc["data"]["envoy.yaml"])) as Obj;
  const config = localiseWasmPaths(doc) as Obj;
  for (const l of config["static_resources"]["listeners"] as Obj[]) l["address"] = { socket_address: { address: "127.0.0.1", port_value: 0 } };
  for (const c of config["static_resources"]["clusters"] as Obj[]) {
    const address = endpoints[c["name"]];
    if (address === undefined) throw new Error(`${file}: no loopback address given for cluster ${c["name"]}`);
    c["type"] = "STATIC";
    c["load_assignment"] = { cluster_name: c["name"], endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(address) } }] }] };
    delete c["dns_lookup_family"];
  }
  if (opts.vmEnv) pinVmEnvironment(config, opts.vmEnv);
  return config;
}

/**
 * Every Wasm VM's `host_env_keys` replaced by `key_values` taken from `env`, so a bootstrap run here does
 * not depend on this process's environment (the quota token of the rate-limit VMs).
 */
export function pinVmEnvironment(config: unknown, env: Readonly<Record<string, string>>): void {
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(visit);
    if (typeof v !== "object" || v === null) return;
    const o = v as Record<string, unknown>;
    const ev = o["environment_variables"] as { host_env_keys?: string[]; key_values?: Record<string, string> } | undefined;
    if (ev?.host_env_keys) {
      o["environment_variables"] = { key_values: { ...Object.fromEntries(ev.host_env_keys.flatMap((k) => (env[k] !== undefined ? [[k, env[k]]] : []))), ...ev.key_values } };
    }
    Object.values(o).forEach(visit);
  };
  visit(config);
}


/** The HttpConnectionManager of a bootstrap's listener (by name, default the first). */
export function hcmOf(config: Obj, listener?: string): Obj {
  const listeners = config["static_resources"]["listeners"] as Obj[];
  const l = listener === undefined ? listeners[0] : listeners.find((x) => x["name"] === listener);
  if (!l) throw new Error(`no listener ${listener}`);
  return l["filter_chains"][0]["filters"][0]["typed_config"];
}

/** The wasm filter of an HCM whose plugin `name` is given, to read or change its configuration. */
export function pluginConfigOf(hcm: Obj, name: string): { get(): Obj; set(value: Obj): void } {
  const f = (hcm["http_filters"] as Obj[]).find((x) => x["typed_config"]?.["config"]?.["name"] === name);
  if (!f) throw new Error(`no wasm plugin named ${name}`);
  const conf = f["typed_config"]["config"]["configuration"];
  return { get: () => JSON.parse(conf["value"]) as Obj, set: (v) => void (conf["value"] = JSON.stringify(v)) };
}
