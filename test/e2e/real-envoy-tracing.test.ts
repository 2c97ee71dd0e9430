// One trace through a real Envoy: Envoy's OpenTelemetry tracer and authz-server export to the same
// loopback OTLP receiver; the authz span continues Envoy's ext_authz client span, and the upstream
// sees a traceparent of the same trace. Skipped only where no Envoy can be had (never under CI=true).
import { strict as assert } from "node:assert";
import { request } from "node:http";
import { startEnvoy, requireEnvoy, type RunningEnvoy } from "../../tools/envoy/harness.js";
import { startEcho, type EchoUpstream } from "../../tools/testing/echo-upstream.js";
import { startMain, type MainProcess } from "../../tools/testing/main-process.js";
import { startOtlpReceiver, type OtlpReceiver } from "../../tools/testing/otlp-receiver.js";
import { writePolicyFile, type PolicyFile } from "../../tools/testing/policy.js";

const POLICY = `apiVersion: meshward.io/v1
kind: AuthzPolicy
spec:
  rules:
    - { name: public, match: { paths: ["/public/**"] }, allow: anonymous }
`;

const cluster = (name: string, port: number, http2 = false) => ({
  name,
  type: "STATIC",
  connect_timeout: "1s",
  ...(http2 ? { typed_extension_protocol_options: { "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": { "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions", explicit_http_config: { http2_protocol_options: {} } } } } : {}),
  load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: port } } } }] }] },
});

function bootstrap(authzPort: number, upstreamPort: number, otlpPort: number): Record<string, unknown> {
  return {
    static_resources: {
      listeners: [
        {
          name: "edge",
          address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
          filter_chains: [
            {
              filters: [
                {
                  name: "envoy.filters.network.http_connection_manager",
                  typed_config: {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    stat_prefix: "edge",
                    generate_request_id: true,
                    tracing: {
                      random_sampling: { value: 100 },
                      provider: {
                        name: "envoy.tracers.opentelemetry",
                        typed_config: {
                          "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
                          service_name: "envoy-edge",
                          http_service: { http_uri: { uri: `http://127.0.0.1:${otlpPort}/v1/traces`, cluster: "otlp", timeout: "2s" } },
                        },
                      },
                    },
                    http_filters: [
                      {
                        name: "envoy.filters.http.ext_authz",
                        typed_config: {
                          "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
                          transport_api_version: "V3",
                          failure_mode_allow: false,
                          grpc_service: { envoy_grpc: { cluster_name: "authz" }, timeout: "2s" },
                        },
                      },
                      { name: "envoy.filters.http.router", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } },
                    ],
                    route_config: { virtual_hosts: [{ name: "all", domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster: "app" } }] }] },
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters: [cluster("authz", authzPort, true), cluster("app", upstreamPort), cluster("otlp", otlpPort)],
    },
  };
}

function get(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const r = request({ host: "127.0.0.1", port, path, headers: { host: "api.example.com" }, timeout: 10_000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    r.on("timeout", () => r.destroy(new Error("timeout")));
    r.on("error", reject);
    r.end();
  });
}

describe("one trace through a real Envoy and authz-server (ENVOY_BIN)", function () {
  this.timeout(90_000);
  let policy: PolicyFile | undefined;
  let receiver: OtlpReceiver;
  let main: MainProcess;
  let app: EchoUpstream;
  let envoy: RunningEnvoy | undefined;

  before(async function () {
    const bin = requireEnvoy(this);
    policy = writePolicyFile(POLICY);
    receiver = await startOtlpReceiver();
    app = await startEcho("app");
    main = await startMain({ policy: policy.file, args: ["--otlp-endpoint", receiver.url] });
    envoy = await startEnvoy({ bin, config: bootstrap(main.grpcPort, Number(app.address.split(":")[1]), receiver.port), concurrency: 1 });
  });

  after(async function () {
    await envoy?.stop();
    await Promise.all([main?.stop(), app?.close(), receiver?.close()]);
    policy?.remove();
  });

  it("the authz span, Envoy's spans and the upstream's traceparent share one trace id; the authz span's parent is an Envoy span", async function () {
    const port = envoy!.listenerPort("edge");
    assert.equal(await get(port, "/public/traced"), 200);
    const authz = await receiver.waitFor((s) => s.service === "meshward-authz-server" && s.attributes["url.path"] === "/public/traced", 15_000);
    const upstream = app.received.find((r) => r.path === "/public/traced");
    assert.ok(upstream, "the upstream got the request");
    const tp = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/.exec(String(upstream.headers.traceparent ?? ""));
    assert.ok(tp, `upstream traceparent: ${String(upstream.headers.traceparent)}`);
    assert.equal(tp[1], authz.traceId, "upstream and authz span in one trace");
    // Envoy exports its own spans (server span of the request, client span of the ext_authz call) in the same trace.
    const envoySpans = await waitForEnvoySpans(receiver, authz.traceId);
    const seen = JSON.stringify(envoySpans.map((s) => [s.name, s.spanId, s.parentSpanId, s.kind]));
    // Envoy 1.40's async gRPC client emits the ext_authz client span itself ("async … egress", kind CLIENT)
    // under the ingress server span, and sends its context in the gRPC metadata.
    const client = envoySpans.find((s) => s.spanId === authz.parentSpanId);
    assert.ok(client, `the authz span's parent ${authz.parentSpanId} is one of Envoy's spans: ${seen}`);
    assert.equal(client.kind, 3, "CLIENT");
    assert.equal(client.name, "async envoy.service.auth.v3.Authorization.Check egress");
    const ingress = envoySpans.find((s) => s.spanId === client.parentSpanId);
    assert.ok(ingress && ingress.kind === 2 && ingress.parentSpanId === "", `the client span hangs under Envoy's root server span: ${seen}`);
    assert.equal(tp[2] !== authz.spanId, true, "the upstream's parent is Envoy's span, not the authz span");
    assert.deepEqual(envoy!.errorLines(), []);
  });
});

async function waitForEnvoySpans(receiver: OtlpReceiver, traceId: string): Promise<OtlpReceiver["spans"]> {
  await receiver.waitFor((s) => s.service === "envoy-edge" && s.traceId === traceId, 20_000);
  // Envoy flushes its spans in batches (every 5 s by default): give the ext_authz client span a moment to follow.
  const deadline = Date.now() + 8_000;
  while (Date.now() < deadline && receiver.spans.filter((s) => s.service === "envoy-edge" && s.traceId === traceId).length < 2) await new Promise((r) => setTimeout(r, 100));
  return receiver.spans.filter((s) => s.service === "envoy-edge" && s.traceId === traceId);
}
