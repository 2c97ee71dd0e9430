// Runs a conformance corpus through the stand-in and a real Envoy from the same bootstrap and compares,
// per case, what the upstream received (method, path, headers, body) and what the client received
// (status, headers, body), after removing the headers listed in IGNORED_* (documented in docs/conformance.md).
import { request } from "node:http";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify as stringifyYaml } from "yaml";
import { startEnvoy } from "../envoy/harness.js";
import { PluginLoadError, StandIn, SystemClock, fromByteString } from "../standin/index.js";
import { loadEnvoyConfigChain } from "../standin/envoy-config-chain.js";
import { UPSTREAM_LABELS, type CaseSpec, type SuiteSpec } from "./corpus.js";
import { fixtureModulePath } from "./fixture-modules.js";
import { CASE_HEADER, startLoopback, type Loopback, type Received } from "./loopback.js";

/**
 * Request headers the upstream receives that are not compared: per-request random ids, hop-by-hop
 * headers, and headers only Envoy's router adds (the stand-in has no router timeout header).
 */
export const IGNORED_UPSTREAM_HEADERS: readonly string[] = [
  "x-request-id", // random per request on both sides
  "x-envoy-expected-rq-timeout-ms", // Envoy's router tells the upstream its timeout; no filter sets it
  "connection", "keep-alive", "transfer-encoding", // hop-by-hop, per client library
  "content-length", // framing; the body itself is compared
];
/** Response headers the client receives that are not compared: time, framing, Envoy's own identity. */
export const IGNORED_RESPONSE_HEADERS: readonly string[] = [
  "date", // time of the response
  "server", // Envoy writes `envoy`; the stand-in has no server name
  "x-envoy-upstream-service-time", // upstream latency in ms
  "connection", "keep-alive", "transfer-encoding", // hop-by-hop
  "content-length", // framing; the body itself is compared
];

export interface Observed {
  /** What reached the upstream, or null when no upstream was contacted. */
  readonly upstream: { label: string; method: string; path: string; headers: [string, string][]; body: string } | null;
  readonly status: number;
  readonly headers: [string, string][];
  readonly body: string;
}

export type SuiteOutcome =
  | { readonly kind: "rejected"; readonly detail: string }
  | { readonly kind: "loaded"; readonly cases: readonly Observed[] };

export interface CaseResult {
  readonly suite: string;
  readonly case: string;
  readonly agree: boolean;
  readonly standIn: Observed | "rejected";
  readonly envoy: Observed | "rejected";
  readonly diff: string;
}

export interface CorpusResult {
  readonly cases: readonly CaseResult[];
  /** Envoy's log lines (error/critical, wasm warnings) per suite, for the divergence notes. */
  readonly envoyLog: ReadonlyMap<string, string[]>;
  readonly envoyVersion: string;
  readonly ms: { standIn: number; envoy: number };
}

type Obj = Record<string, unknown>;
const HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

/** The route header a suite's routes key on: header-router's routeHeader, else x-route. */
function routeHeaderOf(suite: SuiteSpec): string {
  const c = suite.configuration as { routeHeader?: unknown } | undefined;
  return typeof c === "object" && c !== null && typeof c.routeHeader === "string" ? c.routeHeader.toLowerCase() : "x-route";
}

async function wasmFile(suite: SuiteSpec): Promise<string> {
  if (suite.module.startsWith("fixture:")) return fixtureModulePath(suite.module.slice("fixture:".length));
  return `filters/build/${suite.module}.wasm`;
}

async function listenerOf(suite: SuiteSpec): Promise<Obj> {
  const header = routeHeaderOf(suite);
  const routes: Obj[] = UPSTREAM_LABELS.filter((l) => l !== "default").map((label) => ({
    name: `route-${label}`,
    match: { prefix: "/", headers: [{ name: header, string_match: { exact: label } }] },
    route: { cluster: `up-${label}`, timeout: "5s" },
  }));
  routes.push({ name: "route-default", match: { prefix: "/" }, route: { cluster: "up-default", timeout: "5s" } });
  const configuration = typeof suite.configuration === "string" ? suite.configuration : JSON.stringify(suite.configuration);
  return {
    name: suite.name,
    address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
    filter_chains: [{
      filters: [{
        name: "envoy.filters.network.http_connection_manager",
        typed_config: {
          "@type": HCM,
          stat_prefix: suite.name,
          route_config: { name: suite.name, virtual_hosts: [{ name: "all", domains: ["*"], routes }] },
          http_filters: [
            {
              name: `conformance.${suite.name}`,
              typed_config: {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                config: {
                  name: suite.name,
                  root_id: suite.rootId ?? suite.module.replace(/^fixture:.*/, "fixture"),
                  vm_config: { vm_id: `vm-${suite.name}`, runtime: "envoy.wasm.runtime.v8", code: { local: { filename: await wasmFile(suite) } } },
                  ...(suite.failOpen ? { fail_open: true } : {}),
                  ...(suite.failurePolicy ? { failure_policy: suite.failurePolicy } : {}),
                  configuration: { "@type": "type.googleapis.com/google.protobuf.StringValue", value: configuration },
                },
              },
            },
            { name: "envoy.filters.http.router", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } },
          ],
        },
      }],
    }],
  };
}

function bootstrapOf(listeners: Obj[], endpoints: Readonly<Record<string, string>>): Obj {
  const clusters = Object.entries(endpoints).map(([name, address]) => {
    const [host, port] = address.split(":") as [string, string];
    return {
      name,
      type: "STATIC",
      connect_timeout: "1s",
      load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: host, port_value: Number(port) } } } }] }] },
    };
  });
  return { static_resources: { listeners, clusters } };
}

const caseId = (suite: SuiteSpec, i: number) => `${suite.name}/${i}`;

function requestHeaders(suite: SuiteSpec, c: CaseSpec, i: number): Record<string, string | readonly string[]> {
  return { host: "conformance.test", ...(c.headers ?? {}), [CASE_HEADER]: caseId(suite, i) };
}

function sortedPairs(pairs: Iterable<[string, string]>, ignored: readonly string[]): [string, string][] {
  const out = [...pairs].filter(([k]) => !k.startsWith(":") && !ignored.includes(k));
  // Stable sort by name: the order of values of one name is kept, the order between names is not compared.
  return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

function upstreamOf(r: Received | undefined): Observed["upstream"] {
  if (!r) return null;
  return { label: r.label, method: r.method, path: r.path, headers: sortedPairs(r.headers, IGNORED_UPSTREAM_HEADERS), body: r.body };
}

// --- stand-in ------------------------------------------------------------------------------------

async function runStandIn(suite: SuiteSpec, configFile: string, loop: Loopback): Promise<SuiteOutcome> {
  const standIn = new StandIn({ clock: new SystemClock(), logLevel: "info" });
  let chain;
  try {
    chain = await loadEnvoyConfigChain({ config: configFile, listener: suite.name, standIn, endpoints: loop.endpoints, workers: suite.concurrency ?? 1 });
  } catch (err) {
    if (err instanceof PluginLoadError) return { kind: "rejected", detail: err.message };
    throw err;
  }
  const cases: Observed[] = [];
  try {
    for (const [i, c] of suite.cases.entries()) {
      const headers = requestHeaders(suite, c, i);
      const r = await chain.run({
        method: c.method ?? "GET",
        path: c.path,
        authority: headers["host"] as string,
        headers: Object.entries(headers).filter(([k]) => k !== "host").flatMap(([k, v]): [string, string][] => (typeof v === "string" ? [[k, v]] : v.map((one): [string, string] => [k, one]))),
        ...(c.body !== undefined ? { body: c.body } : {}),
        source: "127.0.0.1:40000",
        destination: "127.0.0.1:10000",
      }, i % (suite.concurrency ?? 1));
      const resHeaders: [string, string][] = (r.responseHeaders?.pairs() ?? []).map(([k, v]) => [k, fromByteString(v)]);
      cases.push({
        upstream: upstreamOf(loop.received.get(caseId(suite, i))),
        status: r.responseStatus ?? 0,
        headers: sortedPairs(resHeaders, IGNORED_RESPONSE_HEADERS),
        body: r.responseBodyText,
      });
    }
  } finally {
    chain.close();
  }
  return { kind: "loaded", cases };
}

// --- Envoy ---------------------------------------------------------------------------------------

function send(port: number, suite: SuiteSpec, c: CaseSpec, i: number): Promise<{ status: number; headers: [string, string][]; body: string }> {
  const headers = requestHeaders(suite, c, i) as Record<string, string | string[]>;
  if (c.body !== undefined) headers["content-length"] = String(Buffer.byteLength(c.body));
  return new Promise((resolve, reject) => {
    // A new connection per request: with several workers Envoy spreads them over its worker threads.
    const r = request({ host: "127.0.0.1", port, method: c.method ?? "GET", path: c.path, headers, agent: false, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (b: Buffer) => chunks.push(b));
      res.on("end", () => {
        const pairs: [string, string][] = [];
        for (let k = 0; k + 1 < res.rawHeaders.length; k += 2) pairs.push([(res.rawHeaders[k] as string).toLowerCase(), res.rawHeaders[k + 1] as string]);
        resolve({ status: res.statusCode ?? 0, headers: pairs, body: Buffer.concat(chunks).toString("utf8") });
      });
    });
    r.on("timeout", () => r.destroy(new Error(`${caseId(suite, i)}: timeout`)));
    r.on("error", reject);
    r.end(c.body);
  });
}

async function runEnvoyGroup(suites: readonly SuiteSpec[], concurrency: number, loop: Loopback, bin: string, out: Map<string, SuiteOutcome>, logs: Map<string, string[]>): Promise<void> {
  const listeners = await Promise.all(suites.map(listenerOf));
  let envoy;
  try {
    envoy = await startEnvoy({ bin, config: bootstrapOf(listeners, loop.endpoints), concurrency, logLevel: "warn" });
  } catch (err) {
    const lines = String((err as Error).message).split("\n").filter((l) => /\[(critical|error)\]/.test(l));
    for (const s of suites) {
      out.set(s.name, { kind: "rejected", detail: lines.join("\n") });
      logs.set(s.name, lines);
    }
    return;
  }
  try {
    for (const suite of suites) {
      const port = envoy.listenerPort(suite.name);
      const cases: Observed[] = [];
      const before = envoy.log().length;
      for (const [i, c] of suite.cases.entries()) {
        const r = await send(port, suite, c, i);
        cases.push({ upstream: upstreamOf(loop.received.get(caseId(suite, i))), status: r.status, headers: sortedPairs(r.headers, IGNORED_RESPONSE_HEADERS), body: r.body });
      }
      out.set(suite.name, { kind: "loaded", cases });
      const lines = envoy.log().slice(before).split("\n").filter((l) => /\]\[(error|critical)\]/.test(l) || /\]\[(warning|error|critical)\]\[wasm\]/.test(l));
      if (lines.length > 0) logs.set(suite.name, lines);
    }
  } finally {
    await envoy.stop();
  }
}

// --- comparison ----------------------------------------------------------------------------------

function describe(o: Observed | "rejected"): string {
  return o === "rejected" ? "rejected" : JSON.stringify(o);
}

function diffOf(a: Observed | "rejected", b: Observed | "rejected"): string {
  if (a === "rejected" || b === "rejected") return a === b ? "" : `stand-in ${a === "rejected" ? "rejected" : "loaded"}, Envoy ${b === "rejected" ? "rejected" : "loaded"}`;
  const parts: string[] = [];
  if (a.status !== b.status) parts.push(`status ${a.status} vs ${b.status}`);
  if (a.body !== b.body) parts.push(`body ${JSON.stringify(a.body)} vs ${JSON.stringify(b.body)}`);
  if (JSON.stringify(a.headers) !== JSON.stringify(b.headers)) parts.push(`response headers ${JSON.stringify(a.headers)} vs ${JSON.stringify(b.headers)}`);
  if (JSON.stringify(a.upstream) !== JSON.stringify(b.upstream)) parts.push(`upstream ${JSON.stringify(a.upstream)} vs ${JSON.stringify(b.upstream)}`);
  return parts.join("; ");
}

export interface RunOptions {
  readonly bin: string;
  readonly envoyVersion?: string;
  /** Envoy processes started at the same time for rejected-configuration suites (default 2). */
  readonly parallelRejections?: number;
}

/** Runs every suite in the stand-in, then in Envoy (one process per concurrency, one per expected rejection), and compares. */
export async function runCorpus(suites: readonly SuiteSpec[], options: RunOptions): Promise<CorpusResult> {
  const names = new Set<string>();
  for (const s of suites) {
    if (!/^[a-z0-9-]{1,60}$/.test(s.name) || names.has(s.name)) throw new Error(`suite name ${s.name} is invalid or repeated`);
    names.add(s.name);
  }
  const loop = await startLoopback();
  const dir = mkdtempSync(join(tmpdir(), "meshward-conformance-"));
  try {
    // One bootstrap file per suite for the stand-in (parsing the whole corpus per suite is slow); Envoy
    // gets the same listeners grouped by worker count.
    const configFiles = new Map<string, string>();
    for (const s of suites) {
      const file = join(dir, `${s.name}.yaml`);
      writeFileSync(file, stringifyYaml(bootstrapOf([await listenerOf(s)], loop.endpoints), { aliasDuplicateObjects: false }));
      configFiles.set(s.name, file);
    }

    const t0 = Date.now();
    const standIn = new Map<string, SuiteOutcome>();
    const slowest: [string, number][] = [];
    for (const s of suites) {
      const t = Date.now();
      standIn.set(s.name, await runStandIn(s, configFiles.get(s.name) as string, loop));
      slowest.push([s.name, Date.now() - t]);
    }
    if (process.env["CONFORMANCE_TIMINGS"]) console.log(slowest.sort((a, b) => b[1] - a[1]).slice(0, 15));
    const t1 = Date.now();

    loop.reset();
    const envoy = new Map<string, SuiteOutcome>();
    const logs = new Map<string, string[]>();
    for (const conc of [1, 4]) {
      const group = suites.filter((s) => !s.expectRejected && (s.concurrency ?? 1) === conc);
      if (group.length > 0) await runEnvoyGroup(group, conc, loop, options.bin, envoy, logs);
    }
    const alone = suites.filter((s) => s.expectRejected);
    const width = options.parallelRejections ?? 2;
    for (let i = 0; i < alone.length; i += width) {
      await Promise.all(alone.slice(i, i + width).map((s) => runEnvoyGroup([s], s.concurrency ?? 1, loop, options.bin, envoy, logs)));
    }
    const t2 = Date.now();

    const cases: CaseResult[] = [];
    for (const s of suites) {
      const a = standIn.get(s.name) as SuiteOutcome;
      const b = envoy.get(s.name) as SuiteOutcome;
      if (a.kind === "rejected" || b.kind === "rejected" || s.cases.length === 0) {
        const sa = a.kind === "rejected" ? "rejected" : (a.cases[0] ?? "rejected");
        const sb = b.kind === "rejected" ? "rejected" : (b.cases[0] ?? "rejected");
        const agree = a.kind === b.kind;
        const n = Math.max(1, s.cases.length);
        for (let i = 0; i < n; i++) {
          cases.push({ suite: s.name, case: s.cases[i]?.name ?? "configuration", agree, standIn: a.kind === "rejected" ? "rejected" : sa, envoy: b.kind === "rejected" ? "rejected" : sb, diff: agree ? "" : `stand-in ${a.kind}, Envoy ${b.kind}${b.kind === "rejected" ? `: ${b.detail}` : ""}${a.kind === "rejected" ? ` (stand-in: ${a.detail})` : ""}` });
        }
        continue;
      }
      for (const [i, c] of s.cases.entries()) {
        const x = a.cases[i] as Observed;
        const y = b.cases[i] as Observed;
        const diff = diffOf(x, y);
        cases.push({ suite: s.name, case: c.name, agree: diff === "", standIn: x, envoy: y, diff });
      }
    }
    return { cases, envoyLog: logs, envoyVersion: options.envoyVersion ?? "", ms: { standIn: t1 - t0, envoy: t2 - t1 } };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await loop.close();
  }
}

export { describe as describeObserved };
