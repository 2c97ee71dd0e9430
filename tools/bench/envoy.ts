// Filters through a real Envoy (--concurrency 2) against a loopback upstream, one Envoy per scenario, same
// request in every scenario: open-loop latency added over the router-only floor, closed-loop throughput (h2load),
// Envoy CPU per 1k requests, RSS, and each Wasm VM's linear-memory growth over many requests (the filters' per-VM
// gauges); native counterparts in the same run.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { httpListener, pinVmEnvironment, ROUTER_FILTER } from "../envoy/bootstrap.js";
import { startEnvoy, type RunningEnvoy } from "../envoy/harness.js";
import { ROOT, resolveEnvoy } from "../envoy/resolve.js";
import type { BenchModule } from "./row.js";
import type { ReportRow } from "./lib/report.js";
import { median } from "./lib/percentiles.js";
import { fmt } from "./lib/report.js";
import { runOpenLoop, type OpenLoopResult } from "./lib/open-loop.js";
import { runH2loadHttp } from "./lib/h2load.js";
import { authzBuilt, startAuthzProcess, type AuthzProcess } from "./lib/authz-process.js";
import { BENCH_AUDIENCE, BENCH_HOST, BENCH_ISSUER, BENCH_PATH, benchPolicy, createAuthzFixture, type AuthzFixture } from "./fixtures/authz-fixture.js";
import { routerConfig } from "./filters.js";
import { memoryGrowth, vmMemoryGauges } from "../envoy/memory.js";
import { processCpuMs } from "./lib/process-cpu.js";

const CONCURRENCY = 2;
const WASM = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const STRING_VALUE = "type.googleapis.com/google.protobuf.StringValue";
/** Budgets from the issue, as same-run ratios. */
const ROUTER_VS_NOOP = 0.9;
const LOCAL_VS_NATIVE = 0.85;
const MEMORY_PER_VM = 64 * 1024;
/** A bucket no benchmark empties: the rows measure the cost of passing a limiter, not of shedding. */
const HUGE = 1_000_000;
const README = join(ROOT, "README.md");
const README_START = "<!-- bench:envoy:start (rewritten by npm run bench; do not edit) -->";
const README_END = "<!-- bench:envoy:end -->";

interface Plan {
  readonly rates: readonly number[];
  readonly warmupMs: number;
  readonly windowMs: number;
  readonly h2loadSec: number;
  /** Requests for the memory-growth run of the budgeted Wasm scenarios, and of the others. */
  readonly memoryRequests: number;
  readonly memoryRequestsOthers: number;
  /** Budgeted pairs: both Envoys up at once, closed-loop windows alternating A B A B …, medians. */
  readonly pairReps: number;
  readonly pairSec: number;
}
const QUICK: Plan = { rates: [1000], warmupMs: 500, windowMs: 2000, h2loadSec: 3, memoryRequests: 50_000, memoryRequestsOthers: 20_000, pairReps: 2, pairSec: 2 };
const FULL: Plan = { rates: [1000, 3000], warmupMs: 2000, windowMs: 8000, h2loadSec: 6, memoryRequests: 1_000_000, memoryRequestsOthers: 100_000, pairReps: 5, pairSec: 4 };

/** The budgeted throughput comparisons: ours, its baseline, the least ratio allowed. */
const PAIRS: ReadonlyArray<readonly [string, string, number]> = [
  ["header-router-20", "noop", ROUTER_VS_NOOP],
  ["rate-limit-ip", "native-local-ip", LOCAL_VS_NATIVE],
  ["rate-limit-header", "native-local-header", LOCAL_VS_NATIVE],
];

/** What every scenario is sent: the edge's typical authenticated read. */
interface Mix {
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
}

interface Scenario {
  readonly key: string;
  readonly label: string;
  readonly kind: "floor" | "ours" | "native";
  /** Wasm VMs per worker (for memory growth per VM). */
  readonly vmsPerWorker?: number;
  readonly httpFilters: (ctx: Ctx) => object[];
  readonly routes?: (ctx: Ctx) => object[];
  /** Extra check that the filter acts: a request it must refuse, and the status it must answer. */
  readonly refuse?: { readonly headers: Readonly<Record<string, string>>; readonly status: number };
  /** Held to the memory budget (1M requests in a full run); the other Wasm scenarios run fewer. */
  readonly memoryBudget?: boolean;
  /** Calls authz-server (its CPU is reported too). */
  readonly usesAuthz?: boolean;
  /** A stat (substring) that must be non-zero after the check, proving the filter ran. */
  readonly statProof?: string;
}

interface Ctx {
  readonly upstreamPort: number;
  readonly authz?: AuthzProcess;
  readonly fixture: AuthzFixture;
  readonly jwks: string;
}

const router = { name: "envoy.filters.http.router", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } };

function wasmFilter(name: string, file: string, rootId: string, vmId: string, configuration: object | string): object {
  return {
    name,
    typed_config: {
      "@type": WASM,
      config: {
        name,
        root_id: rootId,
        vm_config: { vm_id: vmId, runtime: "envoy.wasm.runtime.v8", code: { local: { filename: join(ROOT, file) } } },
        configuration: { "@type": STRING_VALUE, value: typeof configuration === "string" ? configuration : JSON.stringify(configuration) },
      },
    },
  };
}

const rateLimitConfig = (key: object[], global = false): object => ({
  domain: "bench",
  enforcement: "enforce",
  failureMode: global ? "local" : "allow",
  responseHeaders: true,
  ...(global ? { quota: { cluster: "meshward-quota", authority: "meshward-authz", timeoutMs: 200, tokenEnv: "MESHWARD_QUOTA_TOKEN" } } : {}),
  limits: [{ name: "bench", key, capacity: HUGE, refillPerSecond: HUGE, ...(global ? { global: { lease: 1000 } } : {}) }],
  maxKeysPerLimit: 65536,
});

const extAuthz = {
  name: "envoy.filters.http.ext_authz",
  typed_config: {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
    transport_api_version: "V3",
    grpc_service: { envoy_grpc: { cluster_name: "meshward-authz", authority: "meshward-authz" }, timeout: "0.5s" },
    failure_mode_allow: false,
    status_on_error: { code: "ServiceUnavailable" },
    stat_prefix: "meshward",
  },
};

const defaultRoutes = (): object[] => [{ name: "all", match: { prefix: "/" }, route: { cluster: "upstream" } }];

/** Native header routing: one route per header-router rule (path prefix + header), then a sticky weighted split. */
function nativeHeaderRoutes(n: number): object[] {
  const routes: object[] = [];
  for (let i = 0; i < n - 1; i++) {
    routes.push({ name: `svc-${i}`, match: { prefix: `/svc-${i}/`, headers: [{ name: "x-tier", string_match: { exact: `tier-${i}` } }] }, route: { cluster: "upstream" } });
  }
  routes.push({
    name: "split",
    match: { prefix: "/" },
    route: { weighted_clusters: { header_name: "x-split-key", clusters: [{ name: "upstream", weight: 90 }, { name: "upstream-b", weight: 10 }] } },
  });
  return routes;
}

function scenarios(n20 = 20): Scenario[] {
  const noopVm = (ctx: Ctx) => [wasmFilter("noop", "filters/build/noop.wasm", "noop", "bench-noop", "{}"), router];
  const hr = (n: number): Scenario => ({
    key: `header-router-${n}`, label: `header-router, ${n} rules`, kind: "ours", vmsPerWorker: 1, memoryBudget: n === 20,
    httpFilters: () => [wasmFilter("header-router", "filters/build/header-router.wasm", "header-router", "bench-header-router", routerConfig(n)), router],
  });
  return [
    { key: "floor", label: "router only (floor)", kind: "floor", httpFilters: () => [router] },
    { key: "noop", label: "no-op wasm filter", kind: "ours", vmsPerWorker: 1, httpFilters: noopVm },
    hr(5), hr(n20), hr(50),
    {
      key: "rate-limit-ip", label: "rate-limit local, per IP", kind: "ours", vmsPerWorker: 1, memoryBudget: true,
      httpFilters: () => [wasmFilter("rate-limit", "filters/build/rate-limit.wasm", "rate-limit", "bench-rate-limit", rateLimitConfig([{ source: "remote_address" }])), router],
    },
    {
      key: "rate-limit-header", label: "rate-limit local, per header", kind: "ours", vmsPerWorker: 1, memoryBudget: true,
      httpFilters: () => [wasmFilter("rate-limit", "filters/build/rate-limit.wasm", "rate-limit", "bench-rate-limit", rateLimitConfig([{ header: "x-user-id" }])), router],
    },
    {
      key: "rate-limit-global", label: "rate-limit global, leased pool (healthy)", kind: "ours", vmsPerWorker: 1, memoryBudget: true,
      httpFilters: () => [withVmEnv(wasmFilter("rate-limit", "filters/build/rate-limit.wasm", "rate-limit", "bench-rate-limit", rateLimitConfig([{ header: "x-user-id" }], true))), router],
      statProof: "cluster.meshward-quota.upstream_rq_200",
      usesAuthz: true,
    },
    {
      key: "ext-authz", label: "ext_authz → authz-server (cached JWT)", kind: "ours",
      httpFilters: () => [extAuthz, router],
      refuse: { headers: { authorization: "" }, status: 401 },
      statProof: "ext_authz.meshward.ok",
      usesAuthz: true,
    },
    {
      key: "edge", label: "full edge chain (envoy/local/edge.yaml filters)", kind: "ours", vmsPerWorker: 2,
      httpFilters: () => edgeFilters(),
      routes: () => edgeRoutes(),
      refuse: { headers: { authorization: "" }, status: 401 },
      statProof: "cluster.meshward-quota.upstream_rq_200",
      usesAuthz: true,
    },
    { key: "native-routes", label: `native: ${n20} header routes + header_name weighted split`, kind: "native", httpFilters: () => [router], routes: () => nativeHeaderRoutes(n20) },
    {
      key: "native-local-ip", label: "native: local_ratelimit, per-IP descriptor", kind: "native",
      httpFilters: () => [nativeLocalRateLimit("remote_address"), router],
      routes: () => [{ name: "all", match: { prefix: "/" }, route: { cluster: "upstream", rate_limits: [{ actions: [{ remote_address: {} }] }] } }],
      statProof: "bench_rl.http_local_rate_limit.ok",
    },
    {
      key: "native-local-header", label: "native: local_ratelimit, per-header descriptor", kind: "native",
      httpFilters: () => [nativeLocalRateLimit("user"), router],
      routes: () => [{ name: "all", match: { prefix: "/" }, route: { cluster: "upstream", rate_limits: [{ actions: [{ request_headers: { header_name: "x-user-id", descriptor_key: "user" } }] }] } }],
      statProof: "bench_rl.http_local_rate_limit.ok",
    },
    {
      key: "native-jwt-rbac", label: "native: jwt_authn (cached) + rbac", kind: "native",
      httpFilters: (ctx) => [nativeJwt(ctx.jwks), nativeRbac, router],
      refuse: { headers: { authorization: "" }, status: 401 },
      statProof: "rbac.allowed",
    },
  ];
}

/** Envoy's local_ratelimit with one dynamic descriptor (a bucket per distinct value of `key`). */
function nativeLocalRateLimit(key: string): object {
  const bucket = { max_tokens: HUGE, tokens_per_fill: HUGE, fill_interval: "1s" };
  const percent = (k: string) => ({ runtime_key: k, default_value: { numerator: 100, denominator: "HUNDRED" } });
  return {
    name: "envoy.filters.http.local_ratelimit",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
      stat_prefix: "bench_rl",
      token_bucket: bucket,
      filter_enabled: percent("bench_rl_enabled"),
      filter_enforced: percent("bench_rl_enforced"),
      max_dynamic_descriptors: 65536,
      descriptors: [{ entries: [{ key }], token_bucket: bucket }],
    },
  };
}

function nativeJwt(jwks: string): object {
  return {
    name: "envoy.filters.http.jwt_authn",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
      providers: {
        bench: {
          issuer: BENCH_ISSUER,
          audiences: [BENCH_AUDIENCE],
          local_jwks: { inline_string: jwks },
          payload_in_metadata: "jwt_payload",
          jwt_cache_config: { jwt_cache_size: 100 },
        },
      },
      rules: [{ match: { prefix: "/" }, requires: { provider_name: "bench" } }],
    },
  };
}

/** GET /api/orders/** for a token whose realm_access.roles holds `reader` (the authz-server policy's rule, natively). */
const nativeRbac = {
  name: "envoy.filters.http.rbac",
  typed_config: {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
    rules: {
      action: "ALLOW",
      policies: {
        "orders-read": {
          permissions: [{ and_rules: { rules: [
            { url_path: { path: { prefix: "/api/orders/" } } },
            { header: { name: ":method", string_match: { exact: "GET" } } },
          ] } }],
          principals: [{ metadata: {
            filter: "envoy.filters.http.jwt_authn",
            path: [{ key: "jwt_payload" }, { key: "realm_access" }, { key: "roles" }],
            value: { list_match: { one_of: { string_match: { exact: "reader" } } } },
          } }],
        },
      },
    },
  },
};

function edgeYaml(): any {
  return parseYaml(readFileSync(join(ROOT, "envoy/local/edge.yaml"), "utf8"));
}

function edgeHcm(): any {
  return edgeYaml().static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
}

/** The lease token the edge chain's rate-limit plugin reads from its VM environment (quota.tokenEnv) and authz-server requires. */
const QUOTA_TOKEN = randomBytes(24).toString("hex");

/** A bench wasm filter whose VM environment carries the quota token (as Envoy's host_env_keys would). */
function withVmEnv(filter: object): object {
  (filter as any).typed_config.config.vm_config.environment_variables = { key_values: { MESHWARD_QUOTA_TOKEN: QUOTA_TOKEN } };
  return filter;
}

/** edge.yaml's HTTP filters, wasm paths made absolute, the quota token pinned and limits raised so nothing is shed. */
function edgeFilters(): object[] {
  const filters = edgeHcm().http_filters as any[];
  pinVmEnvironment(filters, { MESHWARD_QUOTA_TOKEN: QUOTA_TOKEN });
  for (const f of filters) {
    const cfg = f.typed_config?.config;
    if (!cfg) continue;
    const local = cfg.vm_config?.code?.local;
    if (local?.filename) local.filename = join(ROOT, local.filename);
    delete cfg.fail_open;
    const parsed = JSON.parse(cfg.configuration.value);
    for (const l of parsed.limits ?? []) {
      l.capacity = HUGE;
      l.refillPerSecond = HUGE;
    }
    cfg.configuration.value = JSON.stringify(parsed);
  }
  return filters;
}

function edgeRoutes(): object[] {
  const routes = edgeHcm().route_config.virtual_hosts[0].routes as any[];
  for (const r of routes) if (r.route) r.route.cluster = "upstream";
  return routes;
}

function bootstrap(s: Scenario, ctx: Ctx): Record<string, unknown> {
  const cluster = (name: string, port: number, h2 = false): object => ({
    name,
    type: "STATIC",
    connect_timeout: "1s",
    ...(h2 ? { typed_extension_protocol_options: { "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": { "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions", explicit_http_config: { http2_protocol_options: {} } } } } : {}),
    circuit_breakers: { thresholds: [{ max_connections: 100_000, max_pending_requests: 100_000, max_requests: 100_000 }] },
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: port } } } }] }] },
  });
  const clusters = [cluster("upstream", ctx.upstreamPort), cluster("upstream-b", ctx.upstreamPort)];
  if (ctx.authz) clusters.push(cluster("meshward-authz", ctx.authz.port, true), cluster("meshward-quota", ctx.authz.httpPort));
  // httpListener adds the router last; the scenarios' chains end with theirs.
  const filters = (s.httpFilters(ctx) as Array<{ name?: string }>).filter((f) => f.name !== ROUTER_FILTER["name"]);
  return { static_resources: { listeners: [httpListener("bench", filters, (s.routes ?? defaultRoutes)(ctx))], clusters } };
}

/** The loopback upstream: another Envoy (1 worker) answering 200 with a short body, no proxying. */
function upstreamBootstrap(): Record<string, unknown> {
  const answer = { match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: "{\"ok\":true}" } } };
  return { static_resources: { listeners: [httpListener("upstream", [], [answer])] } };
}

/** utime + stime of a process in ms; a process that is gone is an error here. */
function cpuMs(pid: number): number {
  const ms = processCpuMs(pid);
  if (ms === undefined) throw new Error(`no CPU time for process ${pid} (exited?)`);
  return ms;
}

/**
 * Envoy's resident memory outside its C++ heap: RSS minus what tcmalloc holds (admin /memory). Wasm linear
 * memories live there (V8 maps them itself), so its growth bounds the VMs' linear-memory growth from above.
 */
async function outsideHeap(envoy: RunningEnvoy): Promise<number> {
  const mem = JSON.parse((await envoy.admin("/memory")).body) as { total_physical_bytes?: string; heap_size?: string; pageheap_unmapped?: string };
  const heap = Number(mem.total_physical_bytes ?? Number(mem.heap_size ?? 0) - Number(mem.pageheap_unmapped ?? 0));
  return (envoy.rssBytes() ?? Number.NaN) - heap;
}

/** One request through Envoy with node's fetch (HTTP/1.1): its status. */
async function probe(port: number, mix: Mix, override: Readonly<Record<string, string>> = {}): Promise<number> {
  const headers: Record<string, string> = { ...mix.headers, host: BENCH_HOST };
  for (const [k, v] of Object.entries(override)) {
    if (v === "") delete headers[k];
    else headers[k] = v;
  }
  delete headers[":authority"];
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, path: mix.path, headers, timeout: 10_000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("timeout", () => req.destroy(new Error("probe: timeout")));
    req.on("error", reject);
    req.end();
  });
}

interface Measured {
  readonly scenario: Scenario;
  readonly openLoop: Map<number, OpenLoopResult>;
  readonly reqPerSec: number;
  readonly cpuMsPer1k: number;
  /** authz-server's CPU per 1k requests in the same window, for scenarios that call it. */
  readonly authzCpuMsPer1k?: number;
  readonly rssBytes: number;
  readonly memory?: Memory;
}

/** Memory over the memory run: each VM's linear-memory gauge (exact) and Envoy's RSS outside tcmalloc (an upper bound). */
interface Memory {
  readonly requests: number;
  /** The largest growth of one VM's linear memory (filters/lib/host.ts MemoryGauge, `…_memory_bytes_vm_<n>`); absent for filters without the gauge. */
  readonly linearGrowthPerVm?: number;
  /** Each VM's gauge before → after. */
  readonly linearPerVm?: readonly string[];
  readonly rssGrowthPerVm: number;
}

interface Started {
  readonly envoy: RunningEnvoy;
  readonly target: string;
}

/** Starts Envoy for a scenario, proves the filter acts (status, refusal, stat) and warms it up. */
async function start(s: Scenario, ctx: Ctx, mix: Mix): Promise<Started> {
  const envoy: RunningEnvoy = await startEnvoy({ config: bootstrap(s, ctx), concurrency: CONCURRENCY });
  try {
    const port = envoy.listenerPort("bench");
    const target = `127.0.0.1:${port}`;
    const ok = await probe(port, mix);
    if (ok !== 200) throw new Error(`${s.label}: the benchmark request got ${ok}, not 200: ${envoy.errorLines().slice(-3).join(" | ")}`);
    if (s.refuse) {
      const refused = await probe(port, mix, s.refuse.headers);
      if (refused !== s.refuse.status) throw new Error(`${s.label}: a request it must refuse got ${refused}, not ${s.refuse.status}: the filter is not acting`);
    }
    // Warm-up: JIT, connections, token caches, lease pools.
    await runH2loadHttp({ target, path: mix.path, headers: mix.headers, requests: 2000, clients: 2, streams: 8 });
    if (s.statProof) {
      const stats = await envoy.stats(s.statProof);
      const total = [...stats.values()].reduce((a, b) => a + b, 0);
      if (total === 0) throw new Error(`${s.label}: stat ${s.statProof} is 0 after the warm-up: the filter did not run`);
    }
    const errors = envoy.errorLines();
    if (errors.length) throw new Error(`${s.label}: Envoy logged errors: ${errors.slice(-3).join(" | ")}`);
    return { envoy, target };
  } catch (err) {
    await envoy.stop();
    throw err;
  }
}

interface Window {
  readonly reqPerSec: number;
  readonly cpuMsPer1k: number;
  readonly authzCpuMsPer1k?: number;
}

/** One closed-loop window with Envoy's (and authz-server's) CPU sampled around it. */
async function closedLoop(st: Started, s: Scenario, ctx: Ctx, mix: Mix, sec: number): Promise<Window> {
  const usesAuthz = s.usesAuthz === true && ctx.authz !== undefined;
  const cpu0 = cpuMs(st.envoy.pid);
  const authz0 = usesAuthz ? cpuMs(ctx.authz!.pid) : 0;
  const tp = await runH2loadHttp({ target: st.target, path: mix.path, headers: mix.headers, durationSec: sec, clients: 4, streams: 16 });
  const cpu1 = cpuMs(st.envoy.pid);
  const authz1 = usesAuthz ? cpuMs(ctx.authz!.pid) : 0;
  return {
    reqPerSec: tp.reqPerSec,
    cpuMsPer1k: (cpu1 - cpu0) / (tp.succeeded / 1000),
    ...(usesAuthz ? { authzCpuMsPer1k: (authz1 - authz0) / (tp.succeeded / 1000) } : {}),
  };
}

async function measure(s: Scenario, ctx: Ctx, mix: Mix, plan: Plan, progress: (m: string) => void): Promise<Measured> {
  const st = await start(s, ctx, mix);
  const { envoy, target } = st;
  try {
    const openLoop = new Map<number, OpenLoopResult>();
    for (const rate of plan.rates) {
      progress(`${s.key}: open loop ${rate} req/s`);
      openLoop.set(rate, await runOpenLoop({ target, request: Buffer.alloc(0), protocol: "http", path: mix.path, metadata: mix.headers, ratePerSec: rate, durationMs: plan.windowMs, warmupMs: plan.warmupMs, channels: 2, drainMs: 2000 }));
    }

    progress(`${s.key}: closed loop ${plan.h2loadSec} s`);
    const tp = await closedLoop(st, s, ctx, mix, plan.h2loadSec);
    const rssBytes = envoy.rssBytes() ?? Number.NaN;

    let memory: Memory | undefined;
    if (s.vmsPerWorker) {
      const requests = s.memoryBudget ? plan.memoryRequests : plan.memoryRequestsOthers;
      progress(`${s.key}: ${requests.toLocaleString("en-US")} requests for memory growth`);
      // A further warm-up first (a tenth as many requests) so allocator and JIT settling is not counted as growth.
      await runH2loadHttp({ target, path: mix.path, headers: mix.headers, requests: Math.max(20_000, requests / 10), clients: 4, streams: 16, limitSec: 300 });
      const before = await outsideHeap(envoy);
      const gaugesBefore = await vmMemoryGauges(envoy);
      await runH2loadHttp({ target, path: mix.path, headers: mix.headers, requests, clients: 4, streams: 16, limitSec: 900 });
      const after = await outsideHeap(envoy);
      const gaugesAfter = await vmMemoryGauges(envoy);
      const growth = memoryGrowth(gaugesBefore, gaugesAfter);
      memory = {
        requests,
        rssGrowthPerVm: (after - before) / (CONCURRENCY * s.vmsPerWorker),
        ...(gaugesAfter.size > 0 ? { linearGrowthPerVm: growth.max, linearPerVm: [...gaugesAfter].map(([vm, b]) => `${vm} ${fmt((gaugesBefore.get(vm) ?? 0) / 1024)} → ${fmt(b / 1024)} KiB`) } : {}),
      };
    }
    return { scenario: s, openLoop, ...tp, rssBytes, ...(memory ? { memory } : {}) };
  } finally {
    await envoy.stop();
  }
}

/** A budgeted comparison: both Envoys up at once, closed-loop windows alternating so drift hits both alike. */
async function pair(a: Scenario, b: Scenario, budget: number, ctx: Ctx, mix: Mix, plan: Plan): Promise<ReportRow> {
  const sa = await start(a, ctx, mix);
  let sb: Started | undefined;
  try {
    sb = await start(b, ctx, mix);
    const wa: Window[] = [];
    const wb: Window[] = [];
    for (let rep = 0; rep < plan.pairReps; rep++) {
      const order: Array<[Started, Scenario, Window[]]> = [[sa, a, wa], [sb, b, wb]];
      if (rep % 2 === 1) order.reverse();
      for (const [st, sc, out] of order) out.push(await closedLoop(st, sc, ctx, mix, plan.pairSec));
    }
    const ra = median(wa.map((w) => w.reqPerSec));
    const rb = median(wb.map((w) => w.reqPerSec));
    const ratio = ra / rb;
    return {
      area: "envoy",
      name: `${a.label} vs ${b.label}: closed-loop throughput (budget)`,
      unit: "req/s",
      ours: ra,
      baseline: rb,
      baselineName: b.label,
      ratio,
      budget: `≥ ${budget}×`,
      met: ratio >= budget,
      note: `both Envoys up at once, ${plan.pairReps} alternating ${plan.pairSec} s windows each, medians; Envoy CPU per 1k requests ${fmt(median(wa.map((w) => w.cpuMsPer1k)))} vs ${fmt(median(wb.map((w) => w.cpuMsPer1k)))} ms (ratio ${fmt(median(wb.map((w) => w.cpuMsPer1k)) / median(wa.map((w) => w.cpuMsPer1k)))}× by CPU); windows ${wa.map((w) => fmt(w.reqPerSec)).join(", ")} vs ${wb.map((w) => fmt(w.reqPerSec)).join(", ")}`,
    };
  } finally {
    await sa.envoy.stop();
    await sb?.envoy.stop();
  }
}

const rateLabel = (rate: number): string => (rate % 1000 === 0 ? `${rate / 1000}k` : String(rate));

function rowsFor(m: Measured, floor: Measured | undefined, plan: Plan): ReportRow[] {
  const s = m.scenario;
  const rows: ReportRow[] = [];
  for (const [rate, r] of m.openLoop) {
    const f = floor?.openLoop.get(rate);
    const bad = r.errors > 0 || r.achievedRate < 0.9 * rate;
    const note = [
      bad ? `INVALID: ${r.errors} errors (${Object.entries(r.errorCodes).map(([k, v]) => `${v} ${k}`).join(", ")}), achieved ${fmt(r.achievedRate)}/s` : `achieved ${fmt(r.achievedRate)}/s`,
      `p99.9 ${fmt(r.latencyMs.p999)} ms${f ? ` (floor ${fmt(f.latencyMs.p999)})` : ""}`,
      f && s.key !== "floor" ? `added over the floor: p50 ${fmt(r.latencyMs.p50 - f.latencyMs.p50)}, p99 ${fmt(r.latencyMs.p99 - f.latencyMs.p99)}, p99.9 ${fmt(r.latencyMs.p999 - f.latencyMs.p999)} ms` : "",
      `generator CPU ${fmt(r.generatorCpu * 100)}% of a core, send lag p99 ${fmt(r.sendLagMs.p99)} ms`,
    ].filter(Boolean).join("; ");
    rows.push({
      area: "envoy",
      name: `${s.label}: latency @${rateLabel(rate)} req/s open loop${s.key === "floor" ? "" : ", added over the floor (p99)"}`,
      unit: "ms",
      ours: s.key === "floor" || !f ? r.latencyMs.p99 : r.latencyMs.p99 - f.latencyMs.p99,
      ...(f && s.key !== "floor" ? { baseline: f.latencyMs.p99, baselineName: "floor p99", baselineP50: f.latencyMs.p50, baselineP99: f.latencyMs.p99, baselineP999: f.latencyMs.p999 } : {}),
      p50: r.latencyMs.p50,
      p99: r.latencyMs.p99,
      p999: r.latencyMs.p999,
      note,
    });
  }
  // Throughput against the floor (informative; the budgeted pairs have rows of their own).
  const base = floor;
  const ratio = base ? m.reqPerSec / base.reqPerSec : undefined;
  rows.push({
    area: "envoy",
    name: `${s.label}: closed-loop throughput (h2load -c4 -m16)`,
    unit: "req/s",
    ours: m.reqPerSec,
    ...(base && base !== m ? { baseline: base.reqPerSec, baselineName: base.scenario.label, ratio } : {}),
    note: `Envoy CPU ${fmt(m.cpuMsPer1k)} ms per 1k requests${floor && floor !== m ? ` (floor ${fmt(floor.cpuMsPer1k)})` : ""}${m.authzCpuMsPer1k !== undefined ? `; authz-server CPU ${fmt(m.authzCpuMsPer1k)} ms per 1k` : ""}; RSS ${fmt(m.rssBytes / 2 ** 20)} MiB${floor && floor !== m ? ` (floor ${fmt(floor.rssBytes / 2 ** 20)})` : ""}`,
  });
  const mem = m.memory;
  if (mem) {
    const exact = mem.linearGrowthPerVm !== undefined;
    const ours = exact ? mem.linearGrowthPerVm! : mem.rssGrowthPerVm;
    const rssNote = `Envoy's RSS outside its tcmalloc heap (admin /memory) grew ${fmt(mem.rssGrowthPerVm / 1024)} KiB per VM (÷ ${CONCURRENCY * (s.vmsPerWorker ?? 1)} worker VMs; an upper bound: V8's own heaps and thread stacks count too)`;
    rows.push({
      area: "envoy",
      name: `${s.label}: ${exact ? "linear memory growth per Wasm VM (largest)" : "memory growth per Wasm VM (RSS upper bound)"} over ${mem.requests.toLocaleString("en-US")} requests`,
      unit: "bytes",
      ours,
      ...(s.memoryBudget
        ? mem.requests >= 1_000_000
          ? { budget: "≤ 64 KiB per VM over 1M", met: ours <= MEMORY_PER_VM }
          : { budget: "≤ 64 KiB per VM over 1M (a full run)" }
        : {}),
      note: exact
        ? `after warm-up, the filters' own gauges per VM (meshward_<filter>_memory_bytes_vm_<n>, from memory.size(), exact to the 64 KiB page): ${mem.linearPerVm!.join(", ")}; ${rssNote}`
        : `this filter publishes no linear-memory gauge: ${rssNote}`,
    });
  }
  return rows;
}

/** Rewrites the marked block in README.md with a short table of this run's Envoy figures. */
function writeReadmeBlock(all: Measured[], budgetRows: readonly ReportRow[], quick: boolean, envoyVersion: string): void {
  let text: string;
  try {
    text = readFileSync(README, "utf8");
  } catch {
    return;
  }
  const start = text.indexOf(README_START);
  const end = text.indexOf(README_END);
  if (start < 0 || end < start) return;
  const floor = all.find((m) => m.scenario.key === "floor");
  const rate = all[0]?.openLoop.keys().next().value as number | undefined;
  const lines = [
    README_START,
    "",
    `On this machine (${new Date().toISOString().slice(0, 10)}, ${quick ? "quick run, not for quoting" : "full run"}), Envoy ${envoyVersion}, --concurrency ${CONCURRENCY}, loopback upstream; added latency is over the router-only floor at ${rate ?? "?"} req/s open loop:`,
    "",
    "| Filter | added p50 / p99 ms | throughput req/s | × floor | Envoy CPU ms / 1k req |",
    "|---|---|---|---|---|",
  ];
  for (const m of all) {
    const r = rate !== undefined ? m.openLoop.get(rate) : undefined;
    const f = rate !== undefined ? floor?.openLoop.get(rate) : undefined;
    const added = r && f && m !== floor ? `${fmt(r.latencyMs.p50 - f.latencyMs.p50)} / ${fmt(r.latencyMs.p99 - f.latencyMs.p99)}` : r ? `(${fmt(r.latencyMs.p50)} / ${fmt(r.latencyMs.p99)})` : "—";
    lines.push(`| ${m.scenario.label} | ${added} | ${fmt(m.reqPerSec)} | ${floor ? fmt(m.reqPerSec / floor.reqPerSec) : "—"} | ${fmt(m.cpuMsPer1k)} |`);
  }
  if (budgetRows.length) {
    lines.push("", "Budgets (same-run ratios):", "");
    for (const r of budgetRows) {
      const verdict = r.failed ? "FAILED" : r.met === undefined ? "not judged" : r.met ? "met" : "**missed**";
      lines.push(`- ${r.name}: ${r.failed ? (r.note ?? "") : r.ratio !== undefined ? `${fmt(r.ratio)}×` : `${fmt(r.ours)} ${r.unit}`} (budget ${r.budget ?? "—"}): ${verdict}`);
    }
  }
  lines.push("", "Every row, the charts and the method: `npm run bench` (tools/bench/README.md).", "", README_END);
  writeFileSync(README, text.slice(0, start) + lines.join("\n") + text.slice(end + README_END.length));
}

function envoyVersion(bin: string): string {
  try {
    const out = execFileSync(bin, ["--version"], { encoding: "utf8" });
    return /version: [0-9a-f]+\/(\d+\.\d+\.\d+)/.exec(out)?.[1] ?? "?";
  } catch {
    return "?";
  }
}

/** One Envoy per scenario, 14 scenarios: longer than the runner's default module limit. */
export const limitMs = { quick: 420_000, full: 3_000_000 };

export const bench: BenchModule = async ({ quick, progress }) => {
  const plan = quick ? QUICK : FULL;
  const bin = resolveEnvoy().bin;
  const version = envoyVersion(bin);
  let upstream: RunningEnvoy | undefined;
  let authz: AuthzProcess | undefined;
  const fixture = await createAuthzFixture();
  const rows: ReportRow[] = [];
  try {
    progress(`Envoy ${version}: starting the loopback upstream`);
    upstream = await startEnvoy({ config: upstreamBootstrap(), concurrency: 1 });
    if (authzBuilt()) {
      // The benchmark policy plus quota limits for the leased pools (bench domain and the edge chain's).
      const policy = benchPolicy(fixture.jwksPath) as { spec: Record<string, unknown> };
      policy.spec["rateLimits"] = [
        { domain: "bench", name: "bench", capacity: HUGE, refillPerSecond: HUGE },
        { domain: "edge", name: "per-user", capacity: HUGE, refillPerSecond: HUGE },
      ];
      const { stringify } = await import("yaml");
      writeFileSync(fixture.policyPath, stringify(policy));
      authz = await startAuthzProcess({ policyPath: fixture.policyPath, env: { MESHWARD_QUOTA_TOKEN: QUOTA_TOKEN } });
    }
    const ctx: Ctx = { upstreamPort: upstream.listenerPort("upstream"), fixture, jwks: readFileSync(fixture.jwksPath, "utf8"), ...(authz ? { authz } : {}) };
    const mix: Mix = {
      path: BENCH_PATH,
      headers: { ":authority": BENCH_HOST, authorization: `Bearer ${fixture.token}`, "x-user-id": "bench-user", "x-split-key": "4242", "user-agent": "meshward-bench" },
    };
    const all: Measured[] = [];
    const byKey = new Map<string, Measured>();
    // MESHWARD_BENCH_ENVOY=floor,noop,… runs some scenarios only (while working on one filter).
    const only = process.env["MESHWARD_BENCH_ENVOY"]?.split(",").map((k) => k.trim()).filter(Boolean);
    for (const s of scenarios().filter((x) => !only || x.key === "floor" || only.includes(x.key))) {
      if ((s.key === "ext-authz" || s.key === "edge" || s.key === "rate-limit-global") && !authz) {
        rows.push({ area: "envoy", name: `${s.label}`, unit: "", ours: Number.NaN, failed: true, note: "authz-server not built (npm run build)" });
        continue;
      }
      progress(`${s.key}: starting Envoy`);
      try {
        const m = await measure(s, ctx, mix, plan, progress);
        all.push(m);
        byKey.set(s.key, m);
      } catch (err) {
        rows.push({ area: "envoy", name: s.label, unit: "", ours: Number.NaN, failed: true, note: `failed: ${err instanceof Error ? err.message : String(err)}`.slice(0, 400) });
      }
    }
    const floor = byKey.get("floor");
    for (const m of all) rows.push(...rowsFor(m, floor, plan));
    const list = scenarios();
    for (const [oursKey, baseKey, budget] of PAIRS) {
      const a = list.find((x) => x.key === oursKey)!;
      const b = list.find((x) => x.key === baseKey)!;
      if (only && !(only.includes(oursKey) && only.includes(baseKey))) continue;
      progress(`budget: ${a.label} vs ${b.label}, ${plan.pairReps} alternating windows each`);
      try {
        rows.push(await pair(a, b, budget, ctx, mix, plan));
      } catch (err) {
        rows.push({ area: "envoy", name: `${a.label} vs ${b.label}: throughput`, unit: "", ours: Number.NaN, failed: true, note: `failed: ${err instanceof Error ? err.message : String(err)}`.slice(0, 400) });
      }
    }
    writeReadmeBlock(all, rows.filter((r) => r.budget !== undefined && (r.met !== undefined || r.failed)), quick, version);
    return rows;
  } finally {
    await upstream?.stop();
    await authz?.stop();
    fixture.remove();
  }
};
