// Runs a listener of envoy/local/*.yaml in the stand-in: its HTTP filters in order (the real wasm
// filters with their configuration, ext_authz over real gRPC to authz-server built as Envoy builds the
// CheckRequest), then route selection by header and forwarding to loopback upstreams, like the router.
import { readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { parse as parseYaml } from "yaml";
import { envoyProtoDirs } from "../../authz-server/src/grpc/protos.js";
import type { HeadersStatus } from "./abi.js";
import type { FilterChain, RequestSpec, StreamResult, Upstream, UpstreamRequest, UpstreamResponse } from "./filter-chain.js";
import { HeaderMap, type HeaderInit } from "./header-map.js";
import type { BodyBuffer, FilterCallbacks, HttpFilter, HttpFilterFactory, StreamInfo } from "./http-filter.js";
import { fromByteString } from "./pairs.js";
import type { ClusterSpec } from "./http-callout.js";
import type { Plugin, StandIn } from "./stand-in.js";

type Obj = Record<string, any>;

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const WASM_TYPE = "envoy.extensions.filters.http.wasm.v3.Wasm";
const EXT_AUTHZ_TYPE = "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz";
const EXT_AUTHZ_PER_ROUTE_TYPE = "envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute";
const ROUTER_TYPE = "envoy.extensions.filters.http.router.v3.Router";
const HCM_TYPE = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
/** Test-only stream property carrying the client certificate PEM (Envoy reads it from the TLS session). */
export const PEER_CERTIFICATE_PROPERTY = "meshward.test.peer_certificate_pem";

const typeOf = (any: unknown): string => {
  const url = (any as Obj | undefined)?.["@type"];
  return typeof url === "string" ? url.slice(url.lastIndexOf("/") + 1) : "";
};

/** PluginConfig.failure_policy (Envoy 1.40); FAIL_RELOAD (VM reload) is not modelled. */
function failurePolicyOf(config: Obj): { failurePolicy?: "FAIL_CLOSED" | "FAIL_OPEN" } {
  const p = config["failure_policy"];
  if (p === undefined || p === "UNSPECIFIED") return {};
  if (p === "FAIL_CLOSED" || p === "FAIL_OPEN") return { failurePolicy: p };
  throw new Error(`failure_policy ${String(p)} is not modelled`);
}

/** Parses Envoy duration strings ("0.5s", "15s") into milliseconds. */
function durationMs(d: unknown, fallback: number): number {
  if (typeof d !== "string") return fallback;
  const m = /^(\d+(?:\.\d+)?)s$/.exec(d);
  if (!m) throw new Error(`unsupported duration ${d}`);
  return Math.round(Number(m[1]) * 1000);
}

export interface ChainOptions {
  /** envoy/local/<file> (e.g. "edge.yaml"), or an absolute path. */
  readonly config: string;
  /** Listener name (default: the first listener). */
  readonly listener?: string;
  readonly standIn: StandIn;
  /** Overrides cluster endpoints ("127.0.0.1:PORT"); tests run upstreams on port 0. */
  readonly endpoints: Readonly<Record<string, string>>;
  /** Worker VMs per wasm plugin (default 1). */
  readonly workers?: number;
}

export interface ChainRun extends StreamResult {
  /** The route Envoy would have selected (its name), if any. */
  readonly routeName: string | undefined;
  readonly cluster: string | undefined;
  /** The access log line the listener's json_format would write. */
  readonly accessLog: Record<string, unknown> | undefined;
}

/** A listener of a shipped Envoy bootstrap, runnable end to end in the stand-in. */
export interface EnvoyConfigChain {
  readonly plugins: readonly { readonly name: string; readonly rootId: string; readonly plugin: Plugin }[];
  /** HTTP filter names in chain order, as in the YAML (router last). */
  readonly filterNames: readonly string[];
  run(req: RequestSpec, worker?: number): Promise<ChainRun>;
  close(): void;
}

interface Cluster {
  readonly name: string;
  readonly address: string;
  readonly http2: boolean;
}

/** Builds the chain of one listener; loads the wasm filters (fail-closed ones reject bad configs as Envoy does). */
export async function loadEnvoyConfigChain(opts: ChainOptions): Promise<EnvoyConfigChain> {
  const file = opts.config.startsWith("/") ? opts.config : join(REPO_ROOT, "envoy", "local", opts.config);
  const bootstrap = parseYaml(readFileSync(file, "utf8")) as Obj;
  const listeners = bootstrap["static_resources"]["listeners"] as Obj[];
  const listener = opts.listener === undefined ? listeners[0] : listeners.find((l) => l["name"] === opts.listener);
  if (!listener) throw new Error(`${file}: no listener ${opts.listener}`);
  const hcm = (listener["filter_chains"][0]["filters"] as Obj[]).map((f) => f["typed_config"]).find((tc) => typeOf(tc) === HCM_TYPE) as Obj;
  const clusters = new Map<string, Cluster>();
  for (const c of bootstrap["static_resources"]["clusters"] as Obj[]) {
    const sa = c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"];
    const http2 = c["typed_extension_protocol_options"]?.["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]?.["explicit_http_config"]?.["http2_protocol_options"] !== undefined;
    clusters.set(c["name"], { name: c["name"], address: opts.endpoints[c["name"]] ?? `${sa["address"]}:${sa["port_value"]}`, http2 });
  }
  const wasmClusters: Record<string, ClusterSpec> = {};
  for (const c of clusters.values()) if (!c.http2) wasmClusters[c.name] = { url: `http://${c.address}` };

  const factories: HttpFilterFactory[] = [];
  const plugins: { name: string; rootId: string; plugin: Plugin }[] = [];
  const closers: (() => void)[] = [];
  const filterNames: string[] = [];
  const perStream = new Map<number, { route?: Obj; cluster?: string; upstreamHost?: string }>();
  const routeConfig = hcm["route_config"] as Obj;
  let workerIndex = 0;
  const workerSelectors: ((i: number) => void)[] = [];

  for (const f of hcm["http_filters"] as Obj[]) {
    const tc = f["typed_config"] as Obj;
    filterNames.push(f["name"]);
    switch (typeOf(tc)) {
      case WASM_TYPE: {
        const config = tc["config"] as Obj;
        const vm = config["vm_config"] as Obj;
        const plugin = await opts.standIn.loadPlugin({
          wasm: resolve(REPO_ROOT, vm["code"]["local"]["filename"]),
          rootId: config["root_id"],
          name: config["name"],
          vmId: vm["vm_id"],
          configuration: config["configuration"]["value"],
          workers: opts.workers ?? 1,
          // Envoy 1.40: failure_policy replaces the deprecated fail_open; FAIL_OPEN is not the same (see PluginIdentity).
          failOpen: config["fail_open"] === true,
          ...failurePolicyOf(config),
          clusters: wasmClusters,
        });
        plugins.push({ name: config["name"], rootId: config["root_id"], plugin });
        closers.push(() => plugin.shutdown());
        // The worker a stream runs on is chosen per run(); every wasm filter of the chain uses the same one.
        const factory: HttpFilterFactory & { current: HttpFilterFactory } = {
          current: plugin.worker(0),
          createFilter(cb: FilterCallbacks): HttpFilter {
            return this.current.createFilter(cb);
          },
        };
        workerSelectors.push((i) => (factory.current = plugin.worker(i)));
        factories.push(factory);
        break;
      }
      case EXT_AUTHZ_TYPE: {
        const authz = new ExtAuthz(tc, clusters, routeConfig);
        closers.push(() => authz.close());
        factories.push(authz);
        break;
      }
      case ROUTER_TYPE:
        break;
      default:
        throw new Error(`${file}: the stand-in chain has no implementation of ${typeOf(tc)} (${f["name"]})`);
    }
  }

  const upstream: Upstream = async (req: UpstreamRequest): Promise<UpstreamResponse> => {
    const route = selectRoute(routeConfig, req.headers);
    const info: { route?: Obj; cluster?: string; upstreamHost?: string } = route ? { route } : {};
    perStream.set(req.stream.id, info);
    if (!route) return { status: 404, body: "" };
    if (route["direct_response"]) {
      return { status: route["direct_response"]["status"], body: route["direct_response"]["body"]?.["inline_string"] ?? "" };
    }
    const clusterName = route["route"]["cluster"] as string;
    const cluster = clusters.get(clusterName);
    if (!cluster) return { status: 503, body: "no healthy upstream" };
    info.cluster = clusterName;
    info.upstreamHost = cluster.address;
    return forward(cluster.address, req, durationMs(route["route"]["timeout"], 15_000));
  };

  const accessLogFormat = (hcm["access_log"] as Obj[] | undefined)?.[0]?.["typed_config"]?.["log_format"]?.["json_format"] as Record<string, string> | undefined;
  let chain: FilterChain | undefined;

  return {
    plugins,
    filterNames,
    async run(req: RequestSpec, worker = 0): Promise<ChainRun> {
      if (worker !== workerIndex) {
        for (const s of workerSelectors) s(worker);
        workerIndex = worker;
      }
      chain ??= opts.standIn.chain(factories, upstream);
      const result = await chain.run(req.headers === undefined ? req : { ...req, headers: codecHeaders(req.headers) });
      const info = perStream.get(result.stream.id) ?? {};
      perStream.delete(result.stream.id);
      return {
        ...result,
        routeName: info.route?.["name"],
        cluster: info.cluster,
        accessLog: accessLogFormat ? formatAccessLog(accessLogFormat, result, info) : undefined,
      };
    },
    close(): void {
      for (const c of closers) c();
    },
  };
}

/**
 * Request headers as Envoy's HTTP/1 codec hands them to the filters: names lower-cased, leading and
 * trailing whitespace (SP, HTAB) of each value removed (conformance case "header value with spaces").
 */
export function codecHeaders(init: HeaderInit): [string, string][] {
  const pairs: [string, string][] = [];
  const entries: [string, string | readonly string[]][] = Array.isArray(init) ? (init as [string, string][]) : Object.entries(init as Record<string, string | readonly string[]>);
  for (const [k, v] of entries) {
    for (const one of typeof v === "string" ? [v] : v) pairs.push([k.toLowerCase(), one.replace(/^[ \t]+|[ \t]+$/g, "")]);
  }
  return pairs;
}

/** Envoy's route matching for the subset our configs use: domains, prefix/path, header string matchers. */
export function selectRoute(routeConfig: Obj, headers: HeaderMap): Obj | undefined {
  const authority = (headers.get(":authority") ?? "").replace(/:\d+$/, "");
  const path = headers.get(":path") ?? "/";
  const vh = (routeConfig["virtual_hosts"] as Obj[]).find((v) => (v["domains"] as string[]).some((d) => d === "*" || d === authority || (d.startsWith("*") && authority.endsWith(d.slice(1)))));
  if (!vh) return undefined;
  const found = (vh["routes"] as Obj[]).find((r) => routeMatches(r["match"], path, headers));
  return found ? { ...found, virtualHost: vh } : undefined;
}

function routeMatches(match: Obj, path: string, headers: HeaderMap): boolean {
  const pathOnly = path.split("?")[0] as string;
  if (match["prefix"] !== undefined && !pathOnly.startsWith(match["prefix"])) return false;
  if (match["path"] !== undefined && pathOnly !== match["path"]) return false;
  if (match["safe_regex"] !== undefined) throw new Error("safe_regex routes are not modelled");
  for (const h of (match["headers"] as Obj[] | undefined) ?? []) {
    const values = headers.getAll(String(h["name"]).toLowerCase());
    const value = values.length > 0 ? values.join(",") : undefined;
    const sm = h["string_match"] as Obj | undefined;
    let ok: boolean;
    if (h["present_match"] !== undefined) ok = (value !== undefined) === h["present_match"];
    else if (sm?.["exact"] !== undefined) ok = value === sm["exact"];
    else if (sm?.["prefix"] !== undefined) ok = value !== undefined && value.startsWith(sm["prefix"]);
    else if (sm?.["suffix"] !== undefined) ok = value !== undefined && value.endsWith(sm["suffix"]);
    else if (sm?.["contains"] !== undefined) ok = value !== undefined && value.includes(sm["contains"]);
    else throw new Error(`header matcher not modelled: ${JSON.stringify(h)}`);
    if (h["invert_match"] === true) ok = !ok;
    if (!ok) return false;
  }
  return true;
}

/** Forwards the request to a loopback upstream over HTTP/1.1, as the router would (timeout → 504). */
function forward(address: string, req: UpstreamRequest, timeoutMs: number): Promise<UpstreamResponse> {
  const [host, port] = address.split(":") as [string, string];
  if (host !== "127.0.0.1" && host !== "localhost") throw new Error(`upstream ${address} is not loopback`);
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of req.headers.pairs()) {
    if (k.startsWith(":")) continue;
    const prev = headers[k];
    headers[k] = prev === undefined ? fromByteString(v) : [...(Array.isArray(prev) ? prev : [prev]), fromByteString(v)];
  }
  headers["host"] = fromByteString(req.headers.get(":authority") ?? "");
  return new Promise((resolve) => {
    const r = httpRequest(
      { host, port: Number(port), method: req.headers.get(":method") ?? "GET", path: fromByteString(req.headers.get(":path") ?? "/"), headers, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const out: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined && k !== "connection" && k !== "transfer-encoding") out[k] = Array.isArray(v) ? v.join(",") : v;
          resolve({ status: res.statusCode ?? 502, headers: out, body: Buffer.concat(chunks) });
        });
      },
    );
    r.on("timeout", () => {
      r.destroy();
      resolve({ status: 504, body: "upstream request timeout" });
    });
    r.on("error", () => resolve({ status: 503, body: "upstream connect error or disconnect/reset before headers" }));
    r.end(Buffer.from(req.body));
  });
}

// --- ext_authz -----------------------------------------------------------------------------------

function authorizationClientCtor(): grpc.ServiceClientConstructor {
  const def = loadSync("envoy/service/auth/v3/external_auth.proto", {
    keepCase: true,
    longs: String,
    enums: Number,
    defaults: false,
    oneofs: false,
    includeDirs: envoyProtoDirs(),
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { envoy: { service: { auth: { v3: { Authorization: grpc.ServiceClientConstructor } } } } };
  return pkg.envoy.service.auth.v3.Authorization;
}

type CheckClient = grpc.Client & { Check(req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Obj) => void): void };

/** google.protobuf.Struct (proto-loader object form) → plain JSON. */
function structToJson(s: Obj | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries((s?.["fields"] as Obj | undefined) ?? {})) out[k] = valueToJson(v as Obj);
  return out;
}

/** google.protobuf.Value; proto-loader names its fields in either case depending on how Struct was loaded. */
function valueToJson(v: Obj): unknown {
  const pick = (snake: string): unknown => v[snake] ?? v[snake.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase())];
  for (const k of ["string_value", "number_value", "bool_value"]) if (pick(k) !== undefined) return pick(k);
  const struct = pick("struct_value");
  if (struct !== undefined) return structToJson(struct as Obj);
  const list = pick("list_value") as Obj | undefined;
  if (list !== undefined) return ((list["values"] ?? []) as Obj[]).map(valueToJson);
  return null;
}

/** Envoy's HeaderValueOption semantics (append_action, else the legacy append flag: unset = overwrite). */
function applyHeaderOption(map: HeaderMap, opt: Obj): void {
  const key = String(opt["header"]?.["key"] ?? "").toLowerCase();
  const value = String(opt["header"]?.["value"] ?? (opt["header"]?.["raw_value"] ? Buffer.from(opt["header"]["raw_value"]).toString("latin1") : ""));
  if (key === "" || key.startsWith(":") || key === "host") return;
  const action = opt["append_action"] as number | undefined;
  const append = opt["append"]?.["value"] === true;
  if (action === 1) {
    if (!map.has(key)) map.add(key, value);
  } else if (action === 2 || (action === undefined && !append)) {
    map.set(key, value);
  } else if (action === 3) {
    if (map.has(key)) map.set(key, value);
  } else {
    map.add(key, value);
  }
}

/** The ext_authz HTTP filter (gRPC v3), as envoy.extensions.filters.http.ext_authz.v3.ExtAuthz configures it. */
class ExtAuthz implements HttpFilterFactory {
  private readonly client: CheckClient;
  private readonly timeoutMs: number;
  private readonly statusOnError: number;
  private readonly failureModeAllow: boolean;
  private readonly includePeerCertificate: boolean;

  constructor(
    config: Obj,
    clusters: ReadonlyMap<string, Cluster>,
    private readonly routeConfig: Obj,
  ) {
    const clusterName = config["grpc_service"]["envoy_grpc"]["cluster_name"] as string;
    const cluster = clusters.get(clusterName);
    if (!cluster) throw new Error(`ext_authz cluster ${clusterName} is not defined`);
    if (config["with_request_body"] !== undefined) throw new Error("with_request_body is not modelled");
    const Ctor = authorizationClientCtor();
    this.client = new Ctor(cluster.address, grpc.credentials.createInsecure()) as unknown as CheckClient;
    this.timeoutMs = durationMs(config["grpc_service"]["timeout"], 200);
    this.statusOnError = STATUS_CODES[config["status_on_error"]?.["code"] as string] ?? 403;
    this.failureModeAllow = config["failure_mode_allow"] === true;
    this.includePeerCertificate = config["include_peer_certificate"] === true;
  }

  close(): void {
    this.client.close();
  }

  createFilter(cb: FilterCallbacks): HttpFilter {
    const self = this;
    let responseHeadersToAdd: Obj[] = [];
    let deniedOrError = false;
    return {
      name: "envoy.filters.http.ext_authz",
      decodeHeaders(headers: HeaderMap): HeadersStatus {
        const req = self.checkRequest(headers, cb.stream);
        self.client.Check(req, { deadline: Date.now() + self.timeoutMs }, (err, res) => {
          if (err) {
            if (self.failureModeAllow) return cb.continueDecoding();
            deniedOrError = true;
            cb.sendLocalReply({ status: self.statusOnError, body: new Uint8Array(0), headers: [], details: "ext_authz_error", from: "envoy.filters.http.ext_authz" });
            return;
          }
          if (res["dynamic_metadata"]) cb.stream.dynamicMetadata.set("envoy.filters.http.ext_authz", structToJson(res["dynamic_metadata"]));
          const code = (res["status"]?.["code"] as number | undefined) ?? 0;
          if (code === 0) {
            const ok = (res["ok_response"] ?? {}) as Obj;
            for (const h of (ok["headers"] ?? []) as Obj[]) applyHeaderOption(headers, h);
            for (const name of (ok["headers_to_remove"] ?? []) as string[]) {
              const n = name.toLowerCase();
              if (!n.startsWith(":") && n !== "host") headers.remove(n);
            }
            responseHeadersToAdd = (ok["response_headers_to_add"] ?? []) as Obj[];
            cb.continueDecoding();
            return;
          }
          // Any non-OK status is a denial; the HTTP status comes from denied_response (403 when absent).
          deniedOrError = true;
          const denied = (res["denied_response"] ?? {}) as Obj;
          const replyHeaders = new HeaderMap();
          for (const h of (denied["headers"] ?? []) as Obj[]) applyHeaderOption(replyHeaders, h);
          const status = (denied["status"]?.["code"] as number | undefined) || 403;
          cb.sendLocalReply({ status, body: Buffer.from(String(denied["body"] ?? ""), "utf8"), headers: replyHeaders.pairs(), details: "ext_authz_denied", from: "envoy.filters.http.ext_authz" });
        });
        return "StopAllIterationAndWatermark";
      },
      decodeData: () => "Continue",
      decodeTrailers: () => "Continue",
      encodeHeaders(headers: HeaderMap): HeadersStatus {
        if (!deniedOrError) for (const h of responseHeadersToAdd) applyHeaderOption(headers, h);
        return "Continue";
      },
      encodeData: (_d: BodyBuffer) => "Continue",
      encodeTrailers: () => "Continue",
      onStreamComplete: () => undefined,
    };
  }

  /** The CheckRequest Envoy's ext_authz filter sends (attributes.request.http, peers, context_extensions). */
  private checkRequest(headers: HeaderMap, stream: StreamInfo): object {
    const flat: Record<string, string> = {};
    for (const [k, v] of headers.pairs()) flat[k] = flat[k] === undefined ? fromByteString(v) : `${flat[k]},${fromByteString(v)}`;
    const route = selectRoute(this.routeConfig, headers);
    const perRoute = [route?.["virtualHost"]?.["typed_per_filter_config"], route?.["typed_per_filter_config"]]
      .map((m) => (m as Obj | undefined)?.["envoy.filters.http.ext_authz"])
      .filter((c) => typeOf(c) === EXT_AUTHZ_PER_ROUTE_TYPE) as Obj[];
    const contextExtensions = Object.assign({}, ...perRoute.map((c) => c["check_settings"]?.["context_extensions"] ?? {})) as Record<string, string>;
    const principal = stream.properties.get("connection.uri_san_peer_certificate");
    const pem = stream.properties.get(PEER_CERTIFICATE_PROPERTY);
    const [srcHost, srcPort] = splitHostPort(stream.sourceAddress);
    const [dstHost, dstPort] = splitHostPort(stream.destinationAddress);
    const contentLength = flat["content-length"];
    return {
      attributes: {
        source: {
          address: { socket_address: { address: srcHost, port_value: srcPort } },
          ...(typeof principal === "string" ? { principal } : {}),
          ...(this.includePeerCertificate && typeof pem === "string" ? { certificate: encodeURIComponent(pem) } : {}),
        },
        destination: { address: { socket_address: { address: dstHost, port_value: dstPort } } },
        request: {
          time: { seconds: String(Math.floor(Date.now() / 1000)), nanos: 0 },
          http: {
            id: String(stream.id),
            method: flat[":method"] ?? "",
            headers: flat,
            path: flat[":path"] ?? "",
            host: flat[":authority"] ?? "",
            scheme: flat[":scheme"] ?? "http",
            protocol: stream.protocol,
            size: contentLength !== undefined ? String(contentLength) : "-1",
          },
        },
        context_extensions: contextExtensions,
      },
    };
  }
}

function splitHostPort(a: string): [string, number] {
  const i = a.lastIndexOf(":");
  return i < 0 ? [a, 0] : [a.slice(0, i).replace(/^\[|\]$/g, ""), Number(a.slice(i + 1))];
}

/** envoy.type.v3.StatusCode names used in status_on_error. */
const STATUS_CODES: Record<string, number> = {
  Forbidden: 403,
  Unauthorized: 401,
  ServiceUnavailable: 503,
  InternalServerError: 500,
  BadGateway: 502,
  GatewayTimeout: 504,
};

// --- access log ----------------------------------------------------------------------------------

/** Renders the listener's json_format for one stream (the command operators our configs use). */
function formatAccessLog(format: Record<string, string>, r: StreamResult, info: { route?: Obj; cluster?: string; upstreamHost?: string }): Record<string, unknown> {
  // Envoy logs the request headers as the filters left them: what went upstream, when it did.
  const req = r.upstreamRequest?.headers ?? r.stream.requestHeaders;
  const res = r.responseHeaders;
  const reqHeader = (spec: string): string | null => {
    for (const name of spec.split("?")) {
      const v = req.get(name.toLowerCase());
      if (v !== undefined) return fromByteString(v);
    }
    return null;
  };
  const op = (name: string, arg: string | undefined): unknown => {
    switch (name) {
      case "START_TIME":
        return new Date(r.stream.startMs).toISOString();
      case "REQ":
        return reqHeader(arg ?? "");
      case "RESP": {
        const v = res?.get((arg ?? "").toLowerCase());
        return v === undefined ? null : fromByteString(v);
      }
      case "RESPONSE_CODE":
        return r.responseStatus ?? 0;
      case "RESPONSE_CODE_DETAILS":
        return r.localReply?.details ?? (r.upstreamRequest ? "via_upstream" : null);
      case "RESPONSE_FLAGS":
        return r.localReply && r.localReply.from !== "router" ? "UAEX" : "-";
      case "ROUTE_NAME":
        return info.route?.["name"] ?? null;
      case "UPSTREAM_CLUSTER":
        return info.cluster ?? null;
      case "UPSTREAM_HOST":
        return info.upstreamHost ?? null;
      case "DURATION":
        return (r.stream.endMs ?? r.stream.startMs) - r.stream.startMs;
      case "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT":
        return splitHostPort(r.stream.sourceAddress)[0];
      case "DYNAMIC_METADATA": {
        const [ns, key] = (arg ?? "").split(":");
        const md = r.stream.dynamicMetadata.get(ns ?? "");
        if (!md) return null;
        return key === undefined ? md : (md[key] ?? null);
      }
      default:
        throw new Error(`access log operator %${name}% is not modelled`);
    }
  };
  const out: Record<string, unknown> = {};
  for (const [field, template] of Object.entries(format)) {
    const whole = /^%([A-Z_]+)(?:\(([^)]*)\))?%$/.exec(template);
    if (whole) {
      out[field] = op(whole[1] as string, whole[2]);
    } else {
      out[field] = template.replace(/%([A-Z_]+)(?:\(([^)]*)\))?%/g, (_m, n: string, a: string | undefined) => String(op(n, a) ?? "-"));
    }
  }
  return out;
}
