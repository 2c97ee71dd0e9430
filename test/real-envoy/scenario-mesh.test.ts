// Seed scenario 3: the gateway (envoy/local/edge.yaml) in front of a sidecar Envoy (envoy/local/sidecar.yaml),
// with mTLS between the two Envoys. Certificates are made at test time and carry SPIFFE URI SANs only,
// so authz-server learns the caller (source.principal) from the sidecar Envoy itself, and the mesh rules
// (peer principals, namespaces, "a workload acting for a user") are decided on what Envoy really sends.
import { strict as assert } from "node:assert";
import { request as httpsRequest } from "node:https";
import { requireEnvoy, startEnvoy, type RunningEnvoy } from "../../tools/envoy/harness.js";
import { socketAddress } from "../../tools/envoy/bootstrap.js";
import { scenarioBootstrap, startWorld, type World } from "../../tools/envoy/scenario.js";
import { send, type Reply } from "../../tools/envoy/with-envoy.js";
import { e2eJwtProvider } from "../../tools/testing/e2e-authz.js";
import { policyYaml } from "../../tools/testing/policy.js";
import { createCa, requireOpenssl, type Leaf, type TestCa } from "../../tools/testing/spiffe-certs.js";

const GATEWAY_ID = "spiffe://cluster.local/ns/edge/sa/meshward-gateway";
const ORDERS_ID = "spiffe://cluster.local/ns/apps/sa/orders";
const BILLING_ID = "spiffe://cluster.local/ns/billing/sa/billing-api";

/** Gateway rules apply where Envoy sends no context_extensions; sidecar rules where it says sidecar-inbound. */
function meshPolicy(jwksFile: string): string {
  return policyYaml({ providers: { jwt: [e2eJwtProvider(jwksFile, { claimsToHeaders: [{ claim: "sub", header: "x-user-id" }] })], mesh: { trustDomains: ["cluster.local"] } } }, `  roles:
    reader: ["orders:read"]
  bindings:
    - subjects: ["${BILLING_ID}"]
      roles: [reader]
  rules:
    - name: gateway-users
      match: { paths: ["/api/**"] }
      require: { user: true, roles: [reader] }
      when: '!("listener" in context)'
    - name: invoices-gateway-for-user
      match: { paths: ["/api/invoices/**"] }
      require: { user: true, roles: [reader], peer: { principals: ["${GATEWAY_ID}"] } }
      when: 'context["listener"] == "sidecar-inbound"'
    - name: orders-billing-only
      match: { paths: ["/api/orders/**"] }
      require: { peer: { namespaces: [billing] } }
      when: 'context["listener"] == "sidecar-inbound"'
  rateLimits:
    - { domain: edge, name: per-user, capacity: 1000, refillPerSecond: 100 }
`);
}

function tlsFiles(leaf: Leaf, ca: TestCa, peerMatch: Record<string, string>): Record<string, unknown> {
  return {
    tls_certificates: [{ certificate_chain: { filename: leaf.certFile }, private_key: { filename: leaf.keyFile } }],
    validation_context: { trusted_ca: { filename: ca.certFile }, match_typed_subject_alt_names: [{ san_type: "URI", matcher: peerMatch }] },
  };
}

/** An HTTPS request straight to the sidecar with a client certificate (a mesh workload calling it). */
function meshCall(port: number, path: string, o: { leaf?: Leaf; ca: TestCa; headers?: Record<string, string> }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const r = httpsRequest(
      { host: "127.0.0.1", port, path, headers: { host: "orders.apps", ...(o.headers ?? {}) }, ca: o.ca.cert, ...(o.leaf ? { cert: o.leaf.cert, key: o.leaf.key } : {}), checkServerIdentity: () => undefined, agent: false, timeout: 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
      },
    );
    r.on("timeout", () => r.destroy(new Error("timeout")));
    r.on("error", reject);
    r.end();
  });
}

describe("real Envoy, scenario 3: gateway + sidecar Envoy with mTLS (SPIFFE identities from Envoy)", function () {
  this.timeout(60_000);
  let world: World | undefined;
  let sidecar: RunningEnvoy | undefined;
  let gateway: RunningEnvoy | undefined;
  let ca: TestCa;
  let billing: Leaf;
  let gwPort: number;
  let scPort: number;

  before(async function () {
    const bin = requireEnvoy(this);
    requireOpenssl(this);
    world = await startWorld({ policy: meshPolicy });
    ca = createCa(world.dir);
    const gw = ca.issue("gateway", GATEWAY_ID);
    const orders = ca.issue("orders", ORDERS_ID);
    billing = ca.issue("billing", BILLING_ID);

    const sc = scenarioBootstrap("envoy/local/sidecar.yaml", world);
    sc.static_resources.listeners[0].filter_chains[0].transport_socket = {
      name: "envoy.transport_sockets.tls",
      typed_config: {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
        require_client_certificate: true,
        common_tls_context: tlsFiles(orders, ca, { prefix: "spiffe://cluster.local/" }),
      },
    };
    sidecar = await startEnvoy({ bin, config: sc, concurrency: 4 });
    scPort = sidecar.listenerPort("sidecar-inbound");

    // The gateway's services are the sidecar, over mTLS with the gateway's own SPIFFE identity.
    const gwConfig = scenarioBootstrap("envoy/local/edge.yaml", world, { endpoints: { "app-v1": `127.0.0.1:${scPort}`, "app-v2": `127.0.0.1:${scPort}` } });
    for (const c of gwConfig.static_resources.clusters as Record<string, any>[]) {
      if (c.name !== "app-v1" && c.name !== "app-v2") continue;
      c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address = socketAddress(`127.0.0.1:${scPort}`);
      c.transport_socket = {
        name: "envoy.transport_sockets.tls",
        typed_config: { "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext", common_tls_context: tlsFiles(gw, ca, { exact: ORDERS_ID }) },
      };
    }
    gateway = await startEnvoy({ bin, config: gwConfig, concurrency: 4 });
    gwPort = gateway.listenerPort("edge");
  });

  after(async function () {
    await gateway?.stop();
    await sidecar?.stop();
    await world?.stop();
  });

  const decisionsFor = (id: unknown) => world!.authz.logs.filter((l) => l["msg"] === "decision" && l["decisionId"] === id);
  const sidecarDecisions = () => world!.authz.logs.filter((l) => l["msg"] === "decision" && typeof l["peer"] === "string");

  it("allows the gateway acting for a reader at the sidecar: the principal comes from the gateway's certificate", async function () {
    const token = await world!.issuer.sign({ sub: "dana", roles: ["reader"] });
    const n = sidecarDecisions().length;
    const r = await send(gwPort, "/api/invoices/3", { headers: { authorization: `Bearer ${token}`, "x-forwarded-client-cert": `By=${ORDERS_ID};URI=${BILLING_ID}` } });
    assert.equal(r.status, 200, r.body);
    const seen = JSON.parse(r.body) as { upstream: string; headers: Record<string, string> };
    assert.equal(seen.upstream, "app-v1");
    assert.equal(seen.headers["x-user-id"], "dana");
    // The sidecar sets XFCC from the TLS peer (SANITIZE_SET): the client's forged value is gone.
    assert.match(String(seen.headers["x-forwarded-client-cert"]), new RegExp(`URI=${GATEWAY_ID.replace(/[/.]/g, "\\$&")}`));
    assert.doesNotMatch(String(seen.headers["x-forwarded-client-cert"]), /billing-api/);
    const atSidecar = sidecarDecisions().slice(n);
    assert.equal(atSidecar.length, 1, JSON.stringify(world!.authz.logs.slice(-3)));
    assert.equal(atSidecar[0]!["peer"], GATEWAY_ID);
    assert.equal(atSidecar[0]!["rule"], "invoices-gateway-for-user");
    assert.equal(atSidecar[0]!["allowed"], true);
  });

  it("denies at the sidecar what the gateway allowed when the peer is not allowed (orders: billing namespace only)", async function () {
    const token = await world!.issuer.sign({ sub: "dana", roles: ["reader"] });
    const before = world!.v1.received.length + world!.v2.received.length;
    const n = sidecarDecisions().length;
    const r = await send(gwPort, "/api/orders/3", { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 403, r.body);
    assert.equal(world!.v1.received.length + world!.v2.received.length, before);
    // The gateway allowed (its decision id is on the response); the sidecar refused the gateway's principal.
    const atSidecar = sidecarDecisions().slice(n);
    assert.equal(atSidecar.length, 1);
    assert.equal(atSidecar[0]!["peer"], GATEWAY_ID);
    assert.equal(atSidecar[0]!["allowed"], false);
    assert.equal(atSidecar[0]!["status"], 403);
  });

  it("denies a user request for invoices that reaches the sidecar from another workload than the gateway", async function () {
    const token = await world!.issuer.sign({ sub: "erin", roles: ["reader"] });
    const r = await meshCall(scPort, "/api/invoices/4", { leaf: billing, ca, headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 403, r.body);
    const d = decisionsFor(r.headers["x-meshward-decision-id"])[0]!;
    assert.equal(d["peer"], BILLING_ID);
    assert.equal(d["allowed"], false);
  });

  it("allows the billing workload (namespace billing, bound to reader) to read orders through the sidecar", async function () {
    const r = await meshCall(scPort, "/api/orders/5", { leaf: billing, ca });
    assert.equal(r.status, 200, r.body);
    const d = decisionsFor(r.headers["x-meshward-decision-id"])[0]!;
    assert.equal(d["peer"], BILLING_ID);
    assert.equal(d["rule"], "orders-billing-only");
  });

  it("refuses a caller without a client certificate at the TLS handshake", async function () {
    await assert.rejects(meshCall(scPort, "/api/orders/5", { ca }), (err: Error & { code?: string }) => /ECONNRESET|alert|certificate|socket hang up/i.test(`${err.code} ${err.message}`));
  });

  it("refuses a certificate from another CA", async function () {
    const rogue = createCa(world!.dir, "rogue").issue("rogue-billing", BILLING_ID);
    await assert.rejects(meshCall(scPort, "/api/orders/5", { leaf: rogue, ca }), (err: Error & { code?: string }) => /ECONNRESET|alert|certificate|unknown ca|socket hang up/i.test(`${err.code} ${err.message}`));
  });

  it("carries traceparent across the mTLS hop, and the sidecar's decision id to the service", async function () {
    const token = await world!.issuer.sign({ sub: "tracy", roles: ["reader"] });
    const tp = "00-55555555555555555555555555555555-6666666666666666-01";
    const n = sidecarDecisions().length;
    const r = await send(gwPort, "/api/invoices/9", { headers: { authorization: `Bearer ${token}`, traceparent: tp } });
    assert.equal(r.status, 200, r.body);
    const seen = JSON.parse(r.body) as { headers: Record<string, string> };
    assert.equal(seen.headers["traceparent"], tp);
    const atSidecar = sidecarDecisions().slice(n);
    assert.equal(atSidecar.length, 1);
    assert.equal(seen.headers["x-meshward-decision-id"], atSidecar[0]!["decisionId"]);
  });

  it("keeps both Envoys' logs free of Wasm errors", function () {
    assert.deepEqual(gateway!.errorLines(), []);
    assert.deepEqual(sidecar!.errorLines(), []);
  });

  it("fails closed at both Envoys when authz-server is down: 503 from the gateway, and from the sidecar to a mesh caller", async function () {
    await world!.authz.stop();
    const token = await world!.issuer.sign({ sub: "dana", roles: ["reader"] });
    assert.equal((await send(gwPort, "/api/invoices/3", { headers: { authorization: `Bearer ${token}` } })).status, 503);
    assert.equal((await meshCall(scPort, "/api/orders/5", { leaf: billing, ca })).status, 503);
  });
});
