// Tracing, through the real entry point and a loopback OTLP/HTTP receiver: one span per Check continuing
// the W3C trace context from gRPC metadata or from the CheckRequest's headers, the decision as
// attributes and never a credential, and trace_id/span_id on the decision-log line.
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { grpcClients } from "../../authz-server/src/grpc/protos.js";
import { incomingTraceId, tracesUrl } from "../../authz-server/src/observability/tracing.js";
import { checkRequest } from "../../tools/testing/authz-harness.js";
import { startMain, type MainProcess } from "../../tools/testing/main-process.js";
import { startOtlpReceiver, type OtlpReceiver } from "../../tools/testing/otlp-receiver.js";
import { writePolicyFile, type PolicyFile } from "../../tools/testing/policy.js";

const POLICY = `apiVersion: meshward.io/v1
kind: AuthzPolicy
spec:
  rules:
    - { name: public, match: { paths: ["/public/**"] }, allow: anonymous }
`;
const TOKEN = "opaque-credential-that-must-never-be-exported-0123456789";

function check(port: number, request: object, traceparent?: string): Promise<{ status?: { code?: number } }> {
  const { Authorization } = grpcClients();
  const client = new (Authorization as any)(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  if (traceparent) md.set("traceparent", traceparent);
  return new Promise((resolve, reject) =>
    client.Check(request, md, { deadline: Date.now() + 10_000 }, (err: Error | null, res: any) => {
      client.close();
      if (err) reject(err);
      else resolve(res);
    }),
  );
}

function decisionLines(main: MainProcess): Record<string, unknown>[] {
  return main
    .output()
    .split("\n")
    .filter((l) => l.includes('"msg":"decision"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function decisionLine(main: MainProcess, path: string): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const line = decisionLines(main).find((l) => l.path === path);
    if (line) return line;
    if (Date.now() > deadline) throw new Error(`no decision line for ${path}:\n${main.output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT = "00f067aa0ba902b7";

describe("tracing (OTLP/HTTP to a loopback receiver)", function () {
  this.timeout(60_000);
  let policy: PolicyFile;
  let receiver: OtlpReceiver;
  let main: MainProcess;

  before(async () => {
    policy = writePolicyFile(POLICY);
    receiver = await startOtlpReceiver();
    main = await startMain({ policy: policy.file, env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SERVICE_NAME: "authz-under-test" } });
  });

  after(async () => {
    await main?.stop();
    await receiver?.close();
    policy?.remove();
  });

  it("continues the traceparent from gRPC metadata: one server span with the decision, and its ids on the decision-log line", async () => {
    const res = await check(main.grpcPort, checkRequest({ path: "/public/a", headers: { authorization: `Bearer ${TOKEN}` } }), `00-${TRACE}-${PARENT}-01`);
    assert.equal(res.status?.code ?? 0, 0);
    const span = await receiver.waitFor((s) => s.attributes["url.path"] === "/public/a");
    assert.equal(span.service, "authz-under-test");
    assert.equal(span.traceId, TRACE);
    assert.equal(span.parentSpanId, PARENT);
    assert.equal(span.kind, 2, "SERVER");
    assert.equal(span.name, "envoy.service.auth.v3.Authorization/Check");
    assert.equal(span.attributes["meshward.decision.allowed"], true);
    assert.equal(span.attributes["meshward.decision.rule"], "public");
    assert.equal(span.attributes["meshward.decision.result"], "allow");
    assert.ok(!JSON.stringify(receiver.spans).includes(TOKEN), "no credential in any span");
    const line = await decisionLine(main, "/public/a");
    assert.equal(line.trace_id, TRACE);
    assert.equal(line.span_id, span.spanId);
    assert.equal(line.decisionId, span.attributes["meshward.decision.id"]);
    assert.ok(receiver.contentTypes.every((t) => t.startsWith("application/json")), receiver.contentTypes.join());
  });

  it("continues the traceparent from the CheckRequest's headers when the metadata has none, and records denials", async () => {
    const trace = "0af7651916cd43dd8448eb211c80319c";
    const res = await check(main.grpcPort, checkRequest({ path: "/private/b", headers: { traceparent: `00-${trace}-b7ad6b7169203331-01` } }));
    assert.notEqual(res.status?.code ?? 0, 0);
    const span = await receiver.waitFor((s) => s.attributes["url.path"] === "/private/b");
    assert.equal(span.traceId, trace);
    assert.equal(span.parentSpanId, "b7ad6b7169203331");
    assert.equal(span.attributes["meshward.decision.allowed"], false);
    assert.equal(typeof span.attributes["meshward.decision.reason"], "string");
    assert.equal(span.attributes["http.response.status_code"], 403);
    assert.equal((await decisionLine(main, "/private/b")).trace_id, trace);
  });

  it("starts a new trace for a Check without trace context, and follows an unsampled parent by exporting nothing", async () => {
    await check(main.grpcPort, checkRequest({ path: "/public/root" }));
    const root = await receiver.waitFor((s) => s.attributes["url.path"] === "/public/root");
    assert.equal(root.parentSpanId, "");
    assert.match(root.traceId, /^[0-9a-f]{32}$/);
    assert.equal((await decisionLine(main, "/public/root")).trace_id, root.traceId);
    const unsampled = "11111111111111111111111111111111";
    await check(main.grpcPort, checkRequest({ path: "/public/unsampled" }), `00-${unsampled}-${PARENT}-00`);
    const line = await decisionLine(main, "/public/unsampled");
    assert.equal(line.trace_id, unsampled, "the log still names the caller's trace");
    await check(main.grpcPort, checkRequest({ path: "/public/after" }));
    await receiver.waitFor((s) => s.attributes["url.path"] === "/public/after");
    assert.equal(receiver.spans.filter((s) => s.traceId === unsampled).length, 0);
  });
});

describe("tracing off", function () {
  this.timeout(60_000);
  it("exports nothing but still puts the incoming trace id on the decision-log line", async () => {
    const policy = writePolicyFile(POLICY);
    const main = await startMain({ policy: policy.file, env: { OTEL_EXPORTER_OTLP_ENDPOINT: "" } });
    try {
      await check(main.grpcPort, checkRequest({ path: "/public/off" }), `00-${TRACE}-${PARENT}-01`);
      const line = await decisionLine(main, "/public/off");
      assert.equal(line.trace_id, TRACE);
      assert.equal(line.span_id, undefined);
      await check(main.grpcPort, checkRequest({ path: "/public/none" }));
      assert.equal((await decisionLine(main, "/public/none")).trace_id, undefined);
    } finally {
      await main.stop();
      policy.remove();
    }
  });

  it("reads a trace id only from a well-formed traceparent", () => {
    const attrs = { headers: { traceparent: `00-${TRACE}-${PARENT}-01` } } as never;
    assert.equal(incomingTraceId(undefined, attrs), TRACE);
    assert.equal(incomingTraceId(`00-${"0".repeat(32)}-${PARENT}-01`, attrs), undefined);
    assert.equal(incomingTraceId("garbage", attrs), undefined);
    assert.equal(tracesUrl("http://c:4318/"), "http://c:4318/v1/traces");
  });
});
