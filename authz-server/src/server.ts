// The server shell: gRPC (ext_authz Check, grpc.health.v1, the quota service's RateLimitService) and
// HTTP (/healthz, /readyz, /metrics, the quota routes). createAuthzServer returns it unstarted.
import { createLimitedHttpServer, type HttpLimits } from "./http-limits.js";
import { type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { createIdGenerator, type Clock } from "./clock.js";
import { InternalFailure } from "./errors.js";
import { decodeCheckRequest } from "./grpc/decode-check-request.js";
import { encodeCheckResponse } from "./grpc/encode-check-response.js";
import { serveUnaryDirectly, type UnaryCall, type UnaryHandler } from "./grpc/unary-fast-path.js";
import { authorizationService, healthService, rateLimitService } from "./grpc/protos.js";
import { attributesFromCheckRequest, type CheckRequestObject } from "./attributes/from-check-request.js";
import type { Attributes } from "./model.js";
import { logDecision } from "./observability/decision-log.js";
import { authzMetrics } from "./observability/metrics.js";
import { incomingTraceId, type CheckTracer } from "./observability/tracing.js";
import { runPipeline } from "./pipeline.js";
import { CACHE_EPOCH_PATH, type CacheEpoch } from "./response/cache-epoch.js";
import type { PolicyHolder, Runtime } from "./policy-holder.js";
import type { QuotaService } from "./quota/contract.js";
import { renderCheckResponse, type CheckResponseObject } from "./response/check-response.js";
import { decideFromError } from "./response/decide.js";

export interface AuthzServerDeps {
  readonly holder: PolicyHolder;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly clock: Clock;
  readonly newId?: () => string;
  readonly quota?: QuotaService;
  /** The decision-cache epoch, served at GET /cache/epoch and bumped on every policy change. */
  readonly cacheEpoch?: CacheEpoch;
  /** host:port; default 0.0.0.0:9191. Port 0 picks a free port. */
  readonly grpcAddress?: string;
  /** host:port; default 0.0.0.0:8181. */
  readonly httpAddress?: string;
  /** Timeouts and connection cap of the HTTP listener (default HTTP_LIMITS). */
  readonly httpLimits?: HttpLimits;
  /** The /metrics text; default: this registry's (a --workers group passes the aggregated scrape). */
  readonly scrape?: () => Promise<string>;
  /** Records one span per Check (observability/tracing.ts); absent = tracing off. */
  readonly tracer?: CheckTracer;
}

export interface AuthzServer {
  /** `checkTransport`: "direct" when Check skips grpc-js's call layer (grpc/unary-fast-path.ts), else "grpc-js". */
  start(): Promise<{ readonly grpcPort: number; readonly httpPort: number; readonly checkTransport: "direct" | "grpc-js" }>;
  /** Readiness false first, then drains in-flight Checks for at most `graceMs` before closing. */
  stop(graceMs?: number): Promise<void>;
  /** Readiness as /readyz computes it. */
  readiness(): Promise<{ ready: boolean; checks: Record<string, string> }>;
}

export function createAuthzServer(deps: AuthzServerDeps): AuthzServer {
  const { holder, logger, registry, clock, quota, tracer } = deps;
  const metrics = authzMetrics(registry);
  const pipelineDeps = { clock, newId: deps.newId ?? createIdGenerator(), ...(deps.cacheEpoch ? { cacheEpoch: deps.cacheEpoch } : {}) };
  let draining = false;
  let inflight = 0;
  let grpcServer: grpc.Server | undefined;
  let httpServer: HttpServer | undefined;

  const applyPolicy = (r: Runtime) => {
    metrics.policyInfo.reset();
    metrics.policyInfo.set({ version: r.policy.version }, 1);
    quota?.setLimits(r.policy.rateLimits);
  };
  if (holder.current) applyPolicy(holder.current);
  holder.onChange(applyPolicy);
  if (deps.cacheEpoch) {
    if (holder.current) deps.cacheEpoch.policyChanged(holder.current.policy.version);
    holder.onChange((r) => deps.cacheEpoch!.policyChanged(r.policy.version));
    deps.cacheEpoch.keysFrom(() => holder.current?.credentials.keySetId() ?? "");
  }
  holder.onResult = (result) => metrics.policyReloads.inc({ result });

  const check: UnaryHandler<CheckRequestObject, CheckResponseObject> = (call, callback) => {
    const runtime = holder.current;
    if (!runtime) {
      callback({ code: grpc.status.UNAVAILABLE, details: "no policy loaded" });
      return;
    }
    inflight++;
    const started = process.hrtime.bigint();
    const startMs = tracer ? performance.timeOrigin + performance.now() : 0;
    runPipeline(call.request, runtime, pipelineDeps).then(
      ({ attrs, decision, response }) => {
        inflight--;
        const us = Number(process.hrtime.bigint() - started) / 1000;
        // Answer first: metrics, the span and the decision log are not on the caller's critical path.
        callback(null, response);
        const result = decision.allowed ? "allow" : decision.unavailable ? "unavailable" : "deny";
        counted(result, decision.reason).inc();
        timed(result).observe(us / 1e6);
        for (const d of decision.dryRun) metrics.dryRunDisagreements.inc({ rule: d.rule, would: d.wouldDeny ? "deny" : "allow" });
        const traceparent = call.metadata.get("traceparent")[0] as string | undefined;
        let ids;
        if (tracer) ids = tracer.record({ startMs, metadata: traceMetadata(call.metadata, traceparent), attrs, decision, policyVersion: runtime.policy.version });
        else {
          const traceId = incomingTraceId(traceparent, attrs);
          if (traceId) ids = { traceId };
        }
        logDecision(logger, decision, attrs, us, runtime.policy.version, ids);
      },
      (err: unknown) => {
        inflight--;
        // A bug in a stage, not an outage: its own answer (INTERNAL, 500, internal_error), and like every
        // answer it is counted and writes a decision-log line (with what the request's attributes allow).
        const us = Number(process.hrtime.bigint() - started) / 1000;
        const failure = new InternalFailure({ cause: err });
        const decision = decideFromError(pipelineDeps.newId(), failure, {});
        callback(null, renderCheckResponse(decision, runtime.policy));
        logger.error({ code: failure.code, decisionId: decision.id, err: err instanceof Error ? `${err.name}: ${err.message}` : String(err) }, "decision pipeline failed");
        counted("error", decision.reason).inc();
        timed("error").observe(us / 1e6);
        const ids = tracer?.record({ startMs, metadata: traceMetadata(call.metadata, call.metadata.get("traceparent")[0] as string | undefined), decision, error: "pipeline failed" });
        logDecision(logger, decision, bestEffortAttributes(call.request), us, runtime.policy.version, ids);
      },
    );
  };

  const watchers = new Set<grpc.ServerWritableStream<object, object>>();
  // Labelled children are cached: prom-client hashes the label object on every inc() otherwise.
  const decisionCounters = new Map<string, ReturnType<typeof metrics.decisions.labels>>();
  const counted = (result: string, reason: string) => {
    const key = `${result}\u0000${reason}`;
    let c = decisionCounters.get(key);
    if (!c) decisionCounters.set(key, (c = metrics.decisions.labels(result, reason)));
    return c;
  };
  const latencyByResult = new Map<string, ReturnType<typeof metrics.latency.labels>>();
  const timed = (result: string) => {
    let h = latencyByResult.get(result);
    if (!h) latencyByResult.set(result, (h = metrics.latency.labels(result)));
    return h;
  };

  // grpc.health.v1: "" is the whole server; each service it serves answers for itself, others are unknown.
  const services = new Set(["", "envoy.service.auth.v3.Authorization", "grpc.health.v1.Health", ...(quota ? ["envoy.service.ratelimit.v3.RateLimitService"] : [])]);
  const servingStatus = (service: string) => (!services.has(service) ? "SERVICE_UNKNOWN" : holder.current && !draining ? "SERVING" : "NOT_SERVING");
  const lastSent = new Map<grpc.ServerWritableStream<object, object>, string>();
  /** Pushes the status to every Watch stream whose status changed (policy loaded, drain started). */
  const notifyWatchers = () => {
    for (const call of watchers) {
      const service = (call.request as { service?: string }).service ?? "";
      const status = servingStatus(service);
      if (lastSent.get(call) === status) continue;
      lastSent.set(call, status);
      call.write({ status });
    }
  };
  const health = {
    Check: (call: grpc.ServerUnaryCall<{ service?: string }, object>, callback: grpc.sendUnaryData<object>) => {
      const service = call.request.service ?? "";
      if (!services.has(service)) callback({ code: grpc.status.NOT_FOUND, details: `unknown service '${service.slice(0, 200)}'` });
      else callback(null, { status: servingStatus(service) });
    },
    Watch: (call: grpc.ServerWritableStream<object, object>) => {
      // Sends the current status, then every change, until the client cancels or the server has drained.
      watchers.add(call);
      notifyWatchers();
      call.on("cancelled", () => {
        watchers.delete(call);
        lastSent.delete(call);
      });
    },
  };
  holder.onChange(() => notifyWatchers());

  async function readiness(): Promise<{ ready: boolean; checks: Record<string, string> }> {
    const checks: Record<string, string> = {};
    const runtime = holder.current;
    checks.policy = runtime ? `ok (${runtime.policy.version})` : "not loaded";
    const creds = runtime?.credentials.status();
    checks.credentials = !runtime ? "no policy" : creds?.ready ? "ok" : `not ready: ${creds?.detail ?? ""}`;
    if (quota) {
      const q = await quota.ready().catch((err: unknown) => ({ ok: false, detail: String(err) }));
      checks.quota = q.ok ? "ok" : `not ready: ${q.detail ?? ""}`;
    }
    if (draining) checks.shutdown = "draining";
    return { ready: !draining && Object.values(checks).every((v) => v.startsWith("ok")), checks };
  }

  async function handleHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (quota && (await quota.handleHttp(req, res))) return;
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, { error: "method_not_allowed" });
    if (path === "/healthz") return send(res, 200, { status: "ok" });
    if (path === CACHE_EPOCH_PATH && deps.cacheEpoch) {
      const epoch = deps.cacheEpoch.value();
      res.writeHead(200, { "content-type": "text/plain", "content-length": Buffer.byteLength(epoch), "cache-control": "no-store" });
      res.end(epoch);
      return;
    }
    if (path === "/readyz") {
      const r = await readiness();
      return send(res, r.ready ? 200 : 503, r);
    }
    if (path === "/metrics") {
      const text = await (deps.scrape ?? (() => registry.metrics()))();
      res.writeHead(200, { "content-type": registry.contentType });
      res.end(text);
      return;
    }
    send(res, 404, { error: "not_found" });
  }

  return {
    readiness,
    async start() {
      // Channelz off: nothing serves it, and with it on grpc-js stamps every call (Date objects, per-call
      // trackers and closures) for its call counters — measured here as a share of every Check's transport cost.
      const server = new grpc.Server({ "grpc.enable_channelz": 0 });
      const authz = authorizationService();
      // Our own CheckRequest decoder and CheckResponse encoder: see grpc/decode-check-request.ts and grpc/encode-check-response.ts for why.
      const checkMethod = { ...authz.Check!, requestDeserialize: decodeCheckRequest, responseSerialize: encodeCheckResponse as (v: unknown) => Buffer };
      server.addService({ ...authz, Check: checkMethod }, { Check: check as grpc.handleUnaryCall<CheckRequestObject, CheckResponseObject> });
      server.addService(healthService(), health);
      if (quota) server.addService(rateLimitService(), quota.rateLimitService);
      const grpcPort = await new Promise<number>((resolve, reject) =>
        server.bindAsync(deps.grpcAddress ?? "0.0.0.0:9191", grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
      );
      // The hot method skips grpc-js's per-call layer (grpc/unary-fast-path.ts); grpc-js keeps the sessions,
      // every other method and any Check it is handed back (compressed, malformed timeout, wrong content-type).
      const directCheck = serveUnaryDirectly(server, { path: checkMethod.path, deserialize: decodeCheckRequest, serialize: encodeCheckResponse, handler: check });
      if (!directCheck) logger.warn("this grpc-js does not expose its HTTP/2 servers as expected: Check is served by grpc-js (slower)");
      grpcServer = server;
      const checkTransport = directCheck ? "direct" : "grpc-js";
      const http = createLimitedHttpServer((req, res) => {
        handleHttp(req, res).catch((err: unknown) => {
          logger.error({ err: String(err) }, "http handler failed");
          if (!res.headersSent) send(res, 500, { error: "internal_error" });
          else res.destroy();
        });
      }, deps.httpLimits);
      const { host, port } = splitAddress(deps.httpAddress ?? "0.0.0.0:8181");
      await new Promise<void>((resolve, reject) => {
        http.once("error", reject);
        http.listen(port, host, () => {
          http.off("error", reject);
          resolve();
        });
      });
      httpServer = http;
      return { grpcPort, httpPort: (http.address() as AddressInfo).port, checkTransport };
    },
    async stop(graceMs = 10_000) {
      draining = true;
      notifyWatchers();
      const deadline = Date.now() + graceMs;
      while (inflight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      for (const w of watchers) w.end();
      watchers.clear();
      lastSent.clear();
      await Promise.all([
        new Promise<void>((resolve) => {
          if (!grpcServer) return resolve();
          const s = grpcServer;
          const timer = setTimeout(() => s.forceShutdown(), Math.max(0, deadline - Date.now())).unref();
          s.tryShutdown(() => {
            clearTimeout(timer);
            resolve();
          });
        }),
        new Promise<void>((resolve) => {
          if (!httpServer) return resolve();
          httpServer.close(() => resolve());
          httpServer.closeAllConnections();
        }),
      ]);
      grpcServer = undefined;
      httpServer = undefined;
    },
  };
}

function traceMetadata(md: UnaryCall<unknown>["metadata"], traceparent: string | undefined): { traceparent?: string; tracestate?: string } {
  if (traceparent === undefined) return {};
  const tracestate = md.get("tracestate")[0];
  return typeof tracestate === "string" ? { traceparent, tracestate } : { traceparent };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** Splits `host:port` / `[v6]:port`; throws on anything else. */
export function splitAddress(address: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):([0-9]{1,5})$/.exec(address);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`invalid address '${address}' (expected HOST:PORT)`);
  return { host: (m[1] ?? m[2])!, port };
}

const NO_ATTRIBUTES: Attributes = Object.freeze({
  method: "",
  path: "",
  query: {},
  host: "",
  scheme: "",
  headers: {},
  source: { address: "", principal: "", certificate: "" },
  destination: { address: "", principal: "" },
  contextExtensions: {},
  headerBytes: 0,
  headerCount: 0,
});

/** The request's attributes for the decision log of a failed pipeline; empty when they cannot be read either. */
function bestEffortAttributes(request: CheckRequestObject): Attributes {
  try {
    return attributesFromCheckRequest(request);
  } catch {
    return NO_ATTRIBUTES;
  }
}
