// envoy/local/sidecar.yaml end to end in the stand-in: east-west requests carry the caller's SPIFFE
// principal (peer certificate) and per-route context_extensions into one Check with the user's token.
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { createHash, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PEER_CERTIFICATE_PROPERTY, loadEnvoyConfigChain, type EnvoyConfigChain } from "../../tools/standin/envoy-config-chain.js";
import { StandIn, type RequestSpec } from "../../tools/standin/index.js";
import type { Issuer } from "../../tools/testing/e2e-authz.js";
import { startE2eWorld, type E2eWorld } from "../../tools/testing/e2e-world.js";

const BILLING = "spiffe://cluster.local/ns/billing/sa/billing-api";
const WEB = "spiffe://cluster.local/ns/shop/sa/web";

describe("sidecar chain (envoy/local/sidecar.yaml) through the stand-in", function () {
  let world: E2eWorld;
  let issuer: Issuer;
  let sidecar: EnvoyConfigChain;
  let edge: EnvoyConfigChain;

  before(async function () {
    world = await startE2eWorld(this);
    issuer = world.issuer;
    sidecar = await loadEnvoyConfigChain({ config: "sidecar.yaml", standIn: new StandIn({ logLevel: "warn" }), endpoints: world.endpoints });
    edge = await loadEnvoyConfigChain({ config: "edge.yaml", standIn: new StandIn({ logLevel: "warn" }), endpoints: world.endpoints });
  });

  after(async function () {
    sidecar?.close();
    edge?.close();
    await world?.close();
  });

  const fromPeer = (principal: string, req: RequestSpec): RequestSpec => ({
    authority: "orders.apps.svc.cluster.local",
    source: "10.8.0.5:51000",
    ...req,
    properties: { "connection.mtls": true, "connection.uri_san_peer_certificate": principal },
  });

  it("allows billing-api acting for a reader: user token and mesh principal in one decision", async function () {
    const token = await issuer.sign({ sub: "frank", roles: ["reader"] });
    const r = await sidecar.run(fromPeer(BILLING, { path: "/api/invoices/42", headers: { authorization: `Bearer ${token}` } }));
    assert.equal(r.responseStatus, 200, r.responseBodyText);
    assert.equal(r.upstreamRequest?.headers.get("x-user-id"), "frank");
    assert.equal(r.upstreamRequest?.headers.get("x-route"), "v1");
    assert.equal(r.cluster, "app-v1");
  });

  it("denies the same user through another workload with 403", async function () {
    const token = await issuer.sign({ sub: "frank", roles: ["reader"] });
    const r = await sidecar.run(fromPeer(WEB, { path: "/api/invoices/42", headers: { authorization: `Bearer ${token}` } }));
    assert.equal(r.responseStatus, 403);
    assert.equal(r.upstreamRequest, undefined);
  });

  it("denies billing-api without a user credential where the rule requires one", async function () {
    const r = await sidecar.run(fromPeer(BILLING, { path: "/api/invoices/42" }));
    assert.equal(r.responseStatus, 401);
  });

  it("lets a mesh peer's own roles (bindings) authorize it when no user is present", async function () {
    const r = await sidecar.run(fromPeer(BILLING, { path: "/api/orders/9" }));
    assert.equal(r.responseStatus, 200, r.responseBodyText);
    const denied = await sidecar.run(fromPeer(WEB, { path: "/api/orders/9" }));
    assert.equal(denied.responseStatus, 403, "an identified peer without the permission is forbidden");
  });

  it("sends the route's context_extensions: a rule conditioned on the listener passes on the sidecar, not at the edge", async function () {
    const viaSidecar = await sidecar.run(fromPeer(BILLING, { path: "/internal/reindex" }));
    assert.equal(viaSidecar.responseStatus, 200, viaSidecar.responseBodyText);
    const viaEdge = await edge.run({ path: "/internal/reindex", authority: "orders.apps.svc.cluster.local", properties: { "connection.mtls": true, "connection.uri_san_peer_certificate": BILLING } });
    assert.notEqual(viaEdge.responseStatus, 200);
    assert.equal(viaEdge.upstreamRequest, undefined);
  });

  it("forwards the peer certificate (include_peer_certificate): a certificate-bound token passes only with its certificate", async function () {
    const certs = ["a", "b"].map((n) => selfSignedCertificate(world.tmp.dir, n));
    if (certs.includes(undefined)) {
      console.log("      (skipped: openssl is not installed, cannot create test certificates)");
      this.skip();
    }
    const [bound, other] = certs as [string, string];
    const thumbprint = createHash("sha256").update(new X509Certificate(bound).raw).digest("base64url");
    const token = await issuer.sign({ sub: "grace", roles: ["reader"], cnf: { "x5t#S256": thumbprint } });
    const run = (pem: string): ReturnType<EnvoyConfigChain["run"]> =>
      sidecar.run({ ...fromPeer(BILLING, { path: "/api/invoices/1", headers: { authorization: `Bearer ${token}` } }), properties: { "connection.mtls": true, "connection.uri_san_peer_certificate": BILLING, [PEER_CERTIFICATE_PROPERTY]: pem } });
    const first = await run(other);
    assert.equal(first.responseStatus, 401, first.responseBodyText);
    assert.equal((await run(bound)).responseStatus, 200);
    const again = await run(other);
    assert.equal(again.responseStatus, 401, `after a success with the bound certificate: ${again.responseBodyText}`);
  });

  it("routes callers that ask for the canary to v2 (header-router rule on x-canary)", async function () {
    const r = await sidecar.run(fromPeer(BILLING, { path: "/api/orders/9", headers: { "x-canary": "always" } }));
    assert.equal(r.responseStatus, 200);
    assert.equal(r.cluster, "app-v2");
  });
});

/** A throw-away self-signed certificate (PEM) made with openssl, or undefined without openssl. */
function selfSignedCertificate(dir: string, name: string): string | undefined {
  const cert = join(dir, `${name}.crt`);
  const r = spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(dir, `${name}.key`), "-out", cert, "-days", "1", "-subj", `/CN=${name}`], { stdio: "ignore", timeout: 20_000 });
  return r.status === 0 ? readFileSync(cert, "utf8") : undefined;
}
