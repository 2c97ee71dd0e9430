// `withEnvoy`: a real Envoy around your own header-router / rate-limit configuration, with loopback
// upstreams that record what they receive. For mocha tests (docs/testing-with-envoy.md).
import { request as httpRequest, type OutgoingHttpHeaders } from "node:http";
import { startEcho, type EchoUpstream } from "../testing/echo-upstream.js";
import { httpListener, loopbackCluster, wasmFilter, type Obj, type WasmFilterOptions } from "./bootstrap.js";
import { startEnvoy, type RunningEnvoy } from "./harness.js";

export interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

export interface SendOptions {
  readonly method?: string;
  readonly headers?: OutgoingHttpHeaders;
  readonly body?: string;
  /** Default 10 s. */
  readonly timeoutMs?: number;
  /** Reuse connections (default: a new connection per request, so requests spread over Envoy's workers). */
  readonly agent?: import("node:http").Agent;
}

/** One HTTP/1.1 request to 127.0.0.1:`port`; the path is sent exactly as given (no normalisation). */
export function send(port: number, path: string, o: SendOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const r = httpRequest(
      { host: "127.0.0.1", port, path, method: o.method ?? "GET", headers: { host: "api.example.com", ...(o.headers ?? {}) }, agent: o.agent ?? false, timeout: o.timeoutMs ?? 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
      },
    );
    r.on("timeout", () => r.destroy(new Error(`${o.method ?? "GET"} ${path}: timeout`)));
    r.on("error", reject);
    r.end(o.body);
  });
}

export interface WithEnvoyOptions {
  /** Wasm filters in order (the router is appended). */
  readonly filters: readonly WasmFilterOptions[];
  /** Loopback upstreams by name (default ["default"]). Each is an Envoy cluster of the same name. */
  readonly upstreams?: readonly string[];
  /**
   * The header your header-router sets (its `routeHeader`): a request whose header equals an upstream's
   * name goes to that upstream. Requests without it go to the first upstream. Omit to send everything there.
   */
  readonly routeHeader?: string;
  /** Extra clusters (name → host:port), e.g. a quota service for global limits. */
  readonly clusters?: Readonly<Record<string, string>>;
  /** Envoy worker threads (one Wasm VM each), default 2. */
  readonly concurrency?: number;
  /** Envoy log level, default warn. */
  readonly logLevel?: string;
}

export interface EnvoyUnderTest {
  readonly envoy: RunningEnvoy;
  /** The listener's port on 127.0.0.1. */
  readonly port: number;
  readonly upstreams: Readonly<Record<string, EchoUpstream>>;
  /** Sends a request through Envoy. */
  send(path: string, options?: SendOptions): Promise<Reply>;
  /** Every request the upstreams received (each upstream's in arrival order), with the upstream's name. */
  received(): { upstream: string; method: string; path: string; headers: Record<string, string | string[] | undefined> }[];
  /** Forgets what the upstreams received. */
  clear(): void;
  /** Stops Envoy and the upstreams. */
  stop(): Promise<void>;
}

/** The bootstrap withEnvoy runs (exported so you can inspect or extend it). */
export function withEnvoyBootstrap(o: WithEnvoyOptions, upstreamAddresses: Readonly<Record<string, string>>): Obj {
  const names = Object.keys(upstreamAddresses);
  const routes: Obj[] = [];
  if (o.routeHeader !== undefined) {
    for (const n of names) routes.push({ name: `to-${n}`, match: { prefix: "/", headers: [{ name: o.routeHeader, string_match: { exact: n } }] }, route: { cluster: n, timeout: "10s" } });
  }
  routes.push({ name: "fallback", match: { prefix: "/" }, route: { cluster: names[0], timeout: "10s" } });
  return {
    static_resources: {
      listeners: [httpListener("under-test", o.filters.map(wasmFilter), routes)],
      clusters: [
        ...names.map((n) => loopbackCluster(n, upstreamAddresses[n] as string)),
        ...Object.entries(o.clusters ?? {}).map(([n, a]) => loopbackCluster(n, a)),
      ],
    },
  };
}

/** Starts the upstreams and Envoy; call `stop()` in `after`. */
export async function withEnvoy(o: WithEnvoyOptions): Promise<EnvoyUnderTest> {
  const names = o.upstreams ?? ["default"];
  if (names.length === 0) throw new Error("withEnvoy: at least one upstream");
  const echoes = await Promise.all(names.map((n) => startEcho(n)));
  const upstreams = Object.fromEntries(echoes.map((e) => [e.name, e]));
  let envoy: RunningEnvoy;
  try {
    envoy = await startEnvoy({
      config: withEnvoyBootstrap(o, Object.fromEntries(echoes.map((e) => [e.name, e.address]))),
      concurrency: o.concurrency ?? 2,
      ...(o.logLevel ? { logLevel: o.logLevel } : {}),
    });
  } catch (err) {
    await Promise.all(echoes.map((e) => e.close()));
    throw err;
  }
  const port = envoy.listenerPort("under-test");
  return {
    envoy,
    port,
    upstreams,
    send: (path, options) => send(port, path, options),
    received: () => echoes.flatMap((e) => e.received.map((r) => ({ upstream: e.name, ...r }))),
    clear: () => {
      for (const e of echoes) e.received.length = 0;
    },
    async stop() {
      await envoy.stop();
      await Promise.all(echoes.map((e) => e.close()));
    },
  };
}
