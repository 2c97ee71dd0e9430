// Certificate-bound tokens (RFC 8705): self-signed client certificates made at test time with the
// openssl CLI (node:crypto can parse X.509 but not issue it), checked through the credentials stage.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { certBoundPlugin, certificateThumbprint } from "../../../authz-server/src/credentials/cert-bound.js";
import type { Runtime } from "../../../authz-server/src/policy-holder.js";
import { attributes } from "./fixtures/attributes.js";
import { newKey, signJwt, type IdpKey } from "./fixtures/idp-server.js";
import { buildTestRuntime, jwtPolicy } from "./fixtures/runtime.js";

function makeCert(dir: string, name: string): { pem: string; der: Buffer } {
  const pemPath = join(dir, `${name}.pem`);
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(dir, `${name}.key`), "-out", pemPath, "-subj", `/CN=${name}`, "-days", "1"], { stdio: "ignore" });
  const der = execFileSync("openssl", ["x509", "-in", pemPath, "-outform", "DER"]);
  return { pem: readFileSync(pemPath, "utf8"), der };
}

/** Envoy's encoding of `attributes.source.certificate`. */
const envoyEncode = (pem: string): string => encodeURIComponent(pem);

describe("credentials/cert-bound: RFC 8705 certificate-bound access tokens", function () {
  let good: { pem: string; der: Buffer };
  let other: { pem: string; der: Buffer };
  let key: IdpKey;
  let runtime: Runtime;
  const issuer = "https://idp.example.com/";
  const now = 1_800_000_000;
  const clock = { now: () => now * 1000 };

  before(function () {
    if (spawnSync("openssl", ["version"], { stdio: "ignore" }).status !== 0) {
      if (process.env.CI === "true") throw new Error("openssl CLI is required to make test certificates");
      this.skip();
    }
    const dir = mkdtempSync(join(tmpdir(), "meshward-certs-"));
    good = makeCert(dir, "client-a");
    other = makeCert(dir, "client-b");
    key = newKey("ES256");
    runtime = buildTestRuntime(jwtPolicy(issuer, [key.jwk]), [certBoundPlugin()], clock);
  });
  after(() => runtime?.credentials.close());

  const boundToken = (thumb: string): string => signJwt({ iss: issuer, sub: "svc-a", exp: now + 600, cnf: { "x5t#S256": thumb } }, key);

  it("computes the thumbprint as base64url SHA-256 of the DER, as openssl sees it", async () => {
    const { createHash } = await import("node:crypto");
    assert.equal(certificateThumbprint(good.pem), createHash("sha256").update(good.der).digest("base64url"));
    assert.notEqual(certificateThumbprint(good.pem), certificateThumbprint(other.pem));
  });

  it("accepts a bound token presented with the matching client certificate", async () => {
    const token = boundToken(certificateThumbprint(good.pem));
    const r = await runtime.credentials.authenticate(attributes({ headers: { authorization: `Bearer ${token}` }, certificate: envoyEncode(good.pem) }));
    assert.equal(r.error, undefined);
    assert.equal(r.user?.subject, "svc-a");
  });

  it("refuses a bound token with another client certificate (401, certificate_mismatch), even after a cached success", async () => {
    const token = boundToken(certificateThumbprint(good.pem));
    const first = await runtime.credentials.authenticate(attributes({ headers: { authorization: `Bearer ${token}` }, certificate: envoyEncode(good.pem) }));
    assert.equal(first.user?.subject, "svc-a", "verified and now in the token cache");
    const r = await runtime.credentials.authenticate(attributes({ headers: { authorization: `Bearer ${token}` }, certificate: envoyEncode(other.pem) }));
    assert.equal(r.user, undefined);
    assert.equal(r.error?.kind, "unauthenticated");
    assert.equal(r.error?.reason, "certificate_mismatch");
  });

  it("refuses a bound token without a client certificate (401, certificate_required)", async () => {
    const token = boundToken(certificateThumbprint(good.pem));
    const r = await runtime.credentials.authenticate(attributes({ headers: { authorization: `Bearer ${token}` } }));
    assert.equal(r.error?.reason, "certificate_required");
  });

  it("refuses an unparseable certificate and a malformed cnf thumbprint", async () => {
    const token = boundToken(certificateThumbprint(good.pem));
    const garbled = await runtime.credentials.authenticate(attributes({ headers: { authorization: `Bearer ${token}` }, certificate: envoyEncode("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n") }));
    assert.equal(garbled.error?.reason, "certificate_mismatch");
    const bad = signJwt({ iss: issuer, sub: "svc-a", exp: now + 600, cnf: { "x5t#S256": 42 } }, key);
    const r = await runtime.credentials.authenticate(attributes({ headers: { authorization: `Bearer ${bad}` }, certificate: envoyEncode(good.pem) }));
    assert.equal(r.error?.reason, "token_malformed");
  });

  it("leaves unbound tokens alone, with or without a certificate", async () => {
    const token = signJwt({ iss: issuer, sub: "plain", exp: now + 600 }, key);
    assert.equal((await runtime.credentials.authenticate(attributes({ headers: { authorization: `Bearer ${token}` } }))).user?.subject, "plain");
    assert.equal((await runtime.credentials.authenticate(attributes({ headers: { authorization: `Bearer ${token}` }, certificate: envoyEncode(other.pem) }))).user?.subject, "plain");
  });
});
