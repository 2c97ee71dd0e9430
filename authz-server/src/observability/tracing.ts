// Tracing of Checks with the OpenTelemetry JS SDK: continues the W3C trace context Envoy sends (gRPC
// metadata first, else the CheckRequest's headers), records one server span per Check with the decision
// as attributes (never credentials, headers or subjects) and exports it over OTLP/HTTP.
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes as SpanAttributes, type TextMapGetter } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { AlwaysOnSampler, BatchSpanProcessor, ParentBasedSampler, TracerProvider, type SpanExporter } from "@opentelemetry/sdk-trace";
import type { Attributes, Decision } from "../model.js";

/** The trace context a decision-log line carries. */
export interface TraceIds {
  readonly traceId: string;
  readonly spanId?: string;
}

/** What the server knows about one Check when it records its span. */
export interface CheckRecord {
  /** Epoch milliseconds (fractional) when the Check arrived. */
  readonly startMs: number;
  /** `traceparent`/`tracestate` from the gRPC metadata, when Envoy sent them there. */
  readonly metadata: { readonly traceparent?: string; readonly tracestate?: string };
  readonly attrs?: Attributes;
  readonly decision?: Decision;
  readonly policyVersion?: string;
  /** Set when the pipeline itself failed (internal error). */
  readonly error?: string;
}

export interface CheckTracer {
  /** Records the Check's span (parented on the incoming trace context) and returns its ids. */
  record(r: CheckRecord): TraceIds | undefined;
  /** Exports what is buffered (tests, shutdown). */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

export interface CheckTracerOptions {
  /** OTLP/HTTP base URL (OTEL_EXPORTER_OTLP_ENDPOINT semantics): spans go to `<endpoint>/v1/traces`. */
  readonly endpoint?: string;
  /** Instead of OTLP (tests). */
  readonly exporter?: SpanExporter;
  readonly serviceName?: string;
  readonly serviceVersion: string;
  /** Batch delay before an export, default 1000 ms. */
  readonly exportDelayMs?: number;
}

const propagator = new W3CTraceContextPropagator();
const getter: TextMapGetter<Record<string, string | undefined>> = {
  keys: (c) => Object.keys(c),
  get: (c, k) => c[k],
};

/** Trace endpoint for an OTLP base URL: `http://c:4318` → `http://c:4318/v1/traces`. */
export function tracesUrl(endpoint: string): string {
  return `${endpoint.replace(/\/+$/, "")}/v1/traces`;
}

export function createCheckTracer(o: CheckTracerOptions): CheckTracer {
  const exporter = o.exporter ?? new OTLPTraceExporter({ url: tracesUrl(o.endpoint ?? "http://localhost:4318"), timeoutMillis: 5000 });
  const provider = new TracerProvider({
    // Follows Envoy's sampling decision; a Check without a parent is sampled.
    sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
    resource: resourceFromAttributes({ "service.name": o.serviceName ?? "meshward-authz-server", "service.version": o.serviceVersion }),
    spanProcessors: [new BatchSpanProcessor({ exporter, scheduledDelayMillis: o.exportDelayMs ?? 1000, maxQueueSize: 4096 })],
  });
  const tracer = provider.getTracer("meshward-authz-server", o.serviceVersion);
  return {
    record(r) {
      const carrier = r.metadata.traceparent !== undefined ? r.metadata : r.attrs?.headers.traceparent !== undefined ? { traceparent: r.attrs.headers.traceparent, tracestate: r.attrs.headers.tracestate } : undefined;
      const parent = carrier ? propagator.extract(ROOT_CONTEXT, carrier, getter) : ROOT_CONTEXT;
      const span = tracer.startSpan("envoy.service.auth.v3.Authorization/Check", { kind: SpanKind.SERVER, startTime: r.startMs, attributes: spanAttributes(r) }, parent);
      if (r.error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: r.error });
      span.end();
      const ctx = span.spanContext();
      return trace.isSpanContextValid(ctx) ? { traceId: ctx.traceId, spanId: ctx.spanId } : undefined;
    },
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}

/** The decision as span attributes: outcome, reason, rule, provider kind and the request's route — no credentials. */
function spanAttributes(r: CheckRecord): SpanAttributes {
  const a: SpanAttributes = { "rpc.system": "grpc", "rpc.service": "envoy.service.auth.v3.Authorization", "rpc.method": "Check" };
  if (r.attrs) {
    a["http.request.method"] = r.attrs.method;
    a["server.address"] = r.attrs.host;
    a["url.path"] = r.attrs.path;
  }
  const d = r.decision;
  if (d) {
    a["meshward.decision.id"] = d.id;
    a["meshward.decision.allowed"] = d.allowed;
    a["meshward.decision.result"] = d.allowed ? "allow" : d.unavailable ? "unavailable" : "deny";
    a["meshward.decision.reason"] = d.reason;
    if (d.rule !== undefined) a["meshward.decision.rule"] = d.rule;
    if (Number.isFinite(d.httpStatus)) a["http.response.status_code"] = d.httpStatus;
    if (d.identity.user) a["meshward.credential.provider"] = d.identity.user.provider;
    if (d.dryRun.length) a["meshward.decision.dry_run_rules"] = d.dryRun.map((x) => x.rule);
  }
  if (r.policyVersion !== undefined) a["meshward.policy.version"] = r.policyVersion;
  return a;
}

/** The incoming trace id when tracing is off, so decision-log lines still join Envoy's traces. */
export function incomingTraceId(metadataTraceparent: string | undefined, attrs: Attributes): string | undefined {
  const tp = metadataTraceparent ?? attrs.headers.traceparent;
  if (tp === undefined) return undefined;
  const m = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}/.exec(tp);
  return m && m[1] !== "00000000000000000000000000000000" ? m[1] : undefined;
}
