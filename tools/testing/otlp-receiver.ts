// A loopback OTLP/HTTP trace receiver for tests: accepts POST /v1/traces as JSON (OpenTelemetry JS
// exporters) or protobuf (Envoy's OpenTelemetry tracer) and keeps the spans it received, flattened.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import protobuf from "protobufjs";

export interface ReceivedSpan {
  readonly service: string;
  readonly traceId: string;
  readonly spanId: string;
  /** Empty for a root span. */
  readonly parentSpanId: string;
  readonly name: string;
  /** OTLP SpanKind number (2 = server, 3 = client). */
  readonly kind: number;
  readonly attributes: Readonly<Record<string, unknown>>;
}

export interface OtlpReceiver {
  /** Base URL, as OTEL_EXPORTER_OTLP_ENDPOINT takes it. */
  readonly url: string;
  readonly port: number;
  readonly spans: ReceivedSpan[];
  /** Content types of the requests received (to tell JSON from protobuf exporters). */
  readonly contentTypes: string[];
  waitFor(pred: (s: ReceivedSpan) => boolean, timeoutMs?: number): Promise<ReceivedSpan>;
  close(): Promise<void>;
}

// The parts of opentelemetry/proto/collector/trace/v1 ExportTraceServiceRequest the tests read (field numbers from the OTLP protos).
const OTLP = protobuf.Root.fromJSON({
  nested: {
    otlp: {
      nested: {
        Export: { fields: { resourceSpans: { rule: "repeated", type: "ResourceSpans", id: 1 } } },
        ResourceSpans: { fields: { resource: { type: "Resource", id: 1 }, scopeSpans: { rule: "repeated", type: "ScopeSpans", id: 2 } } },
        Resource: { fields: { attributes: { rule: "repeated", type: "KeyValue", id: 1 } } },
        ScopeSpans: { fields: { spans: { rule: "repeated", type: "Span", id: 2 } } },
        Span: {
          fields: {
            traceId: { type: "bytes", id: 1 },
            spanId: { type: "bytes", id: 2 },
            parentSpanId: { type: "bytes", id: 4 },
            name: { type: "string", id: 5 },
            kind: { type: "int32", id: 6 },
            attributes: { rule: "repeated", type: "KeyValue", id: 9 },
          },
        },
        KeyValue: { fields: { key: { type: "string", id: 1 }, value: { type: "AnyValue", id: 2 } } },
        AnyValue: { fields: { stringValue: { type: "string", id: 1 }, boolValue: { type: "bool", id: 2 }, intValue: { type: "int64", id: 3 }, doubleValue: { type: "double", id: 4 } } },
      },
    },
  },
}).lookupType("otlp.Export");

interface KeyValue {
  key: string;
  value?: { stringValue?: string; boolValue?: boolean; intValue?: string | number; doubleValue?: number; arrayValue?: { values?: unknown[] } };
}

function attributeMap(kvs: readonly KeyValue[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of kvs ?? []) {
    const v = kv.value ?? {};
    out[kv.key] = v.stringValue ?? v.boolValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.doubleValue ?? v.arrayValue;
  }
  return out;
}

const hex = (v: unknown): string => (typeof v === "string" ? v : v instanceof Uint8Array ? Buffer.from(v).toString("hex") : "");

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const contentTypes: string[] = [];
  const waiters = new Set<() => void>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method !== "POST" || req.url !== "/v1/traces") {
        res.writeHead(404).end();
        return;
      }
      const type = String(req.headers["content-type"] ?? "");
      contentTypes.push(type);
      const body = Buffer.concat(chunks);
      let doc: { resourceSpans?: { resource?: { attributes?: KeyValue[] }; scopeSpans?: { spans?: Record<string, unknown>[] }[] }[] };
      try {
        doc = type.includes("json") ? JSON.parse(body.toString("utf8")) : (OTLP.toObject(OTLP.decode(body), { longs: String, bytes: Array }) as typeof doc);
      } catch {
        res.writeHead(400).end();
        return;
      }
      for (const rs of doc.resourceSpans ?? []) {
        const service = String(attributeMap(rs.resource?.attributes)["service.name"] ?? "");
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) {
            const bytes = (k: string) => (Array.isArray(s[k]) ? Buffer.from(s[k] as number[]).toString("hex") : hex(s[k]));
            spans.push({ service, traceId: bytes("traceId"), spanId: bytes("spanId"), parentSpanId: bytes("parentSpanId"), name: String(s.name ?? ""), kind: Number(s.kind ?? 0), attributes: attributeMap(s.attributes as KeyValue[]) });
          }
        }
      }
      for (const w of waiters) w();
      res.writeHead(200, { "content-type": type.includes("json") ? "application/json" : "application/x-protobuf" }).end(type.includes("json") ? "{}" : "");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    spans,
    contentTypes,
    waitFor(pred, timeoutMs = 10_000) {
      const found = spans.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const check = () => {
          const s = spans.find(pred);
          if (!s) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(s);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching span within ${timeoutMs} ms; received: ${JSON.stringify(spans.map((x) => [x.service, x.name, x.traceId]))}`));
        }, timeoutMs);
        waiters.add(check);
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
