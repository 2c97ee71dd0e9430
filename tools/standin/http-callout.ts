// proxy_http_call dispatch: per cluster either a test handler, a real loopback HTTP server, or manual completion.
import { request as httpRequest } from "node:http";
import type { Clock } from "./clock.js";
import { HeaderMap, type HeaderInit } from "./header-map.js";
import { fromByteString } from "./pairs.js";

export interface HttpCallRequest {
  cluster: string;
  /** Request headers including :method, :path, :authority (byte strings). */
  headers: HeaderMap;
  body: Uint8Array;
  trailers: HeaderMap;
  timeoutMs: number;
}

/** How a handler answers: a response, or a simulated failure (Envoy semantics). */
export type HttpCallOutcome =
  | { status: number; headers?: HeaderInit; body?: string | Uint8Array; trailers?: HeaderInit }
  /** Envoy's timeout answer: a 504 response "upstream request timeout". */
  | { timeout: true }
  /** Stream reset: the module gets (token, 0, 0, 0) and get_status 11 "reset". */
  | { reset: true };

export type HttpCallResult =
  | { kind: "response"; headers: HeaderMap; body: Uint8Array; trailers: HeaderMap }
  | { kind: "reset" };

export type HttpCallHandler = (req: HttpCallRequest) => HttpCallOutcome | Promise<HttpCallOutcome>;

/** A cluster: a handler function, a real HTTP server (loopback only), or manual completion by the test. */
export type ClusterSpec = { handler: HttpCallHandler } | { url: string } | { manual: true };

/** A call held for a manual cluster; the test completes it. */
export interface PendingHttpCall {
  readonly request: HttpCallRequest;
  respond(outcome: HttpCallOutcome): void;
}

const enc = (s: string): Uint8Array => Buffer.from(s, "utf8");

export function envoyReply(status: number, body: string): HttpCallResult {
  const headers = new HeaderMap();
  headers.add(":status", String(status));
  headers.add("content-length", String(Buffer.byteLength(body)));
  headers.add("content-type", "text/plain");
  return { kind: "response", headers, body: enc(body), trailers: new HeaderMap() };
}

export function outcomeToResult(o: HttpCallOutcome): HttpCallResult {
  if ("reset" in o) return { kind: "reset" };
  if ("timeout" in o) return envoyReply(504, "upstream request timeout");
  const headers = new HeaderMap();
  headers.add(":status", String(o.status));
  const extra = HeaderMap.from(o.headers);
  for (let i = 0; i < extra.size; i++) headers.add(extra.keys[i]!, extra.values[i]!);
  const body = o.body === undefined ? new Uint8Array(0) : typeof o.body === "string" ? enc(o.body) : o.body;
  if (body.byteLength && !headers.has("content-length")) headers.add("content-length", String(body.byteLength));
  return { kind: "response", headers, body, trailers: HeaderMap.from(o.trailers) };
}

/** Throws unless every url cluster points at a loopback address (tests never leave the machine). */
export function assertLoopbackClusters(clusters: ReadonlyMap<string, ClusterSpec>): void {
  for (const [name, spec] of clusters) {
    if (!("url" in spec)) continue;
    const host = new URL(spec.url).hostname;
    if (!isLoopback(host)) throw new Error(`cluster ${name}: url must be loopback (127.0.0.1, ::1, localhost), got ${host}`);
  }
}

function isLoopback(host: string): boolean {
  return host === "127.0.0.1" || host === "localhost" || host === "[::1]" || host === "::1";
}

async function fetchLoopback(base: string, req: HttpCallRequest): Promise<HttpCallResult> {
  const url = new URL(base);
  if (!isLoopback(url.hostname)) throw new Error(`stand-in cluster url must be loopback, got ${url.hostname}`);
  const headers: Record<string, string | string[]> = {};
  for (let i = 0; i < req.headers.size; i++) {
    const k = req.headers.keys[i]!;
    const v = fromByteString(req.headers.values[i]!);
    if (k === ":authority") headers["host"] = v;
    else if (!k.startsWith(":")) headers[k] = k in headers ? ([] as string[]).concat(headers[k]!, v) : v;
  }
  return await new Promise<HttpCallResult>((resolve) => {
    const r = httpRequest({ host: url.hostname, port: url.port, method: req.headers.get(":method"), path: req.headers.get(":path"), headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const h = new HeaderMap();
        h.add(":status", String(res.statusCode ?? 0));
        for (let i = 0; i < res.rawHeaders.length; i += 2) {
          const k = res.rawHeaders[i]!.toLowerCase();
          if (k === "connection" || k === "keep-alive" || k === "transfer-encoding") continue;
          h.add(k, Buffer.from(res.rawHeaders[i + 1]!, "utf8").toString("latin1"));
        }
        const t = new HeaderMap();
        for (let i = 0; i < res.rawTrailers.length; i += 2) t.add(res.rawTrailers[i]!.toLowerCase(), res.rawTrailers[i + 1]!);
        resolve({ kind: "response", headers: h, body: Buffer.concat(chunks), trailers: t });
      });
      res.on("error", () => resolve({ kind: "reset" }));
    });
    r.on("error", () => resolve(envoyReply(503, "upstream connect error or disconnect/reset before headers. reset reason: connection failure")));
    if (req.body.byteLength) r.write(req.body);
    r.end();
  });
}

/**
 * Routes calls to clusters. Completion is always asynchronous; a timeout (test clock) answers 504 as Envoy does,
 * and a late answer after it is dropped.
 */
export class HttpCallDispatcher {
  readonly pending: PendingHttpCall[] = [];

  constructor(private readonly clusters: ReadonlyMap<string, ClusterSpec>, private readonly clock: Clock) {}

  has(cluster: string): boolean {
    return this.clusters.has(cluster);
  }

  dispatch(req: HttpCallRequest, done: (r: HttpCallResult) => void): void {
    const spec = this.clusters.get(req.cluster)!;
    let settled = false;
    let timer: { id: number } | undefined;
    let call: PendingHttpCall | undefined;
    const finish = (r: HttpCallResult): void => {
      if (settled) return;
      settled = true;
      if (timer) this.clock.cancel(timer);
      const i = call ? this.pending.indexOf(call) : -1;
      if (i >= 0) this.pending.splice(i, 1);
      done(r);
    };
    if (req.timeoutMs > 0) timer = this.clock.schedule(req.timeoutMs, () => finish(envoyReply(504, "upstream request timeout")));
    if ("manual" in spec) {
      call = { request: req, respond: (o) => finish(outcomeToResult(o)) };
      this.pending.push(call);
      return;
    }
    if ("handler" in spec) {
      queueMicrotask(() => {
        Promise.resolve()
          .then(() => spec.handler(req))
          .then((o) => finish(outcomeToResult(o)), () => finish({ kind: "reset" }));
      });
      return;
    }
    fetchLoopback(spec.url, req).then(finish, () => finish({ kind: "reset" }));
  }
}
