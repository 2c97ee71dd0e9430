// Published vectors through the real server: RFC 7515 Appendix A, RFC 7520 §4, Istio's sample JWTs,
// and real Envoy CheckRequests (protojson) from Istio and OPA-Envoy docs, from test/fixtures/.
import assert from "node:assert/strict";
import { createPublicKey } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fixturePath, readFixture, readJsonFixture } from "../fixtures/index.js";
import { verifyWith } from "../../authz-server/src/credentials/jwt.js";
import { checkRequest, startHarness, testClock, type Harness } from "../../tools/testing/authz-harness.js";

const readJson = (rel: string) => readJsonFixture(rel);
const PUBLIC_JWK_MEMBERS = ["kty", "crv", "x", "y", "n", "e"];
const publicJwk = (jwk: Record<string, unknown>) => Object.fromEntries(Object.entries(jwk).filter(([k]) => PUBLIC_JWK_MEMBERS.includes(k)));

describe("published JOSE vectors (component)", function () {
  this.timeout(30_000);
  const rfc7515 = readJson("jose/rfc7515-appendix-a.json").examples as any[];
  const byId = (id: string) => rfc7515.find((e) => e.id === id)!;
  let h: Harness;
  let dir: string;
  const clock = testClock(1300819000 * 1000); // just before the examples' exp of 1300819380
  const check = (token: string, path = "/any") => h.check(checkRequest({ path, headers: { authorization: `Bearer ${token}` } }));
  const istio = (name: string) => readFixture(`jose/istio-jwt-samples/${name}`).trim();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "meshward-vectors-"));
    const secretFile = join(dir, "a1.key");
    writeFileSync(secretFile, Buffer.from(byId("rfc7515-a-1").jwk.k, "base64url"));
    const keys = ["rfc7515-a-2", "rfc7515-a-3", "rfc7515-a-4"].map((id) => publicJwk(byId(id).jwk));
    h = await startHarness(
      `
apiVersion: meshward.io/v1
kind: AuthzPolicy
spec:
  providers:
    jwt:
      - name: joe
        issuer: joe
        jwks: { keys: ${JSON.stringify(keys)} }
        secret: { file: ${JSON.stringify(secretFile)} }
        algorithms: [HS256, RS256, ES256, ES512]
      - name: istio
        issuer: testing@secure.istio.io
        jwks: { file: ${JSON.stringify(fixturePath("jose/istio-jwt-samples/jwks.json"))} }
        algorithms: [RS256]
        roles: { claim: groups }
        claimsToHeaders: [{ claim: foo, header: x-foo }]
      - name: hobbiton
        issuer: https://hobbiton.example/
        jwks: { file: ${JSON.stringify(join(dir, "cookbook.json"))} }
        algorithms: [RS256, PS384, ES512]
  roles: { group1: ["istio:read"] }
  rules:
    - name: users
      match: { paths: ["/any"] }
      require: { user: true }
    - name: istio-groups
      match: { paths: ["/istio"] }
      require: { roles: [group1] }
      when: '"scope2" in identity.scopes'
`,
      { clock },
    );
    writeFileSync(join(dir, "cookbook.json"), JSON.stringify({ keys: [] }));
  });
  after(async () => {
    await h?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const id of ["rfc7515-a-1", "rfc7515-a-2", "rfc7515-a-3"]) {
    it(`accepts ${id} (${byId(id).title.replace(/^A\.[0-9]\. /, "")}) before its exp`, async () => {
      const r = await check(byId(id).compact);
      assert.equal(r.allowed, true, r.reason);
      assert.equal(r.metadata.provider, "joe");
    });
  }

  it("rejects the RFC 7515 examples once expired", async () => {
    clock.set((1300819380 + 31) * 1000);
    try {
      for (const id of ["rfc7515-a-1", "rfc7515-a-2", "rfc7515-a-3"]) {
        assert.equal((await check(byId(id).compact)).reason, "token_expired", id);
      }
    } finally {
      clock.set(1300819000 * 1000);
    }
  });

  it("verifies the RFC 7515 A.4 ES512 signature, but answers 401 token_malformed to it as a bearer token (its payload is not a claims set)", async () => {
    const a4 = byId("rfc7515-a-4");
    const key = createPublicKey({ key: publicJwk(a4.jwk) as any, format: "jwk" });
    assert.equal(verifyWith(key, "ES512", Buffer.from(a4.signing_input), Buffer.from(a4.signature_b64, "base64url")), true);
    assert.equal((await check(a4.compact)).reason, "token_malformed");
  });

  it("rejects RFC 7515 A.5 (alg none) although its issuer is configured", async () => {
    const r = await check(byId("rfc7515-a-5").compact);
    assert.equal(r.status, 401);
    assert.equal(r.reason, "algorithm_not_allowed");
  });

  it("rejects an RFC 7515 example whose signature was altered", async () => {
    const compact: string = byId("rfc7515-a-2").compact;
    const sig = Buffer.from(compact.split(".")[2]!, "base64url");
    sig[10] = sig[10]! ^ 1;
    const r = await check(`${compact.split(".").slice(0, 2).join(".")}.${sig.toString("base64url")}`);
    assert.equal(r.reason, "invalid_signature");
  });

  describe("Istio sample tokens (checked at the real time: issued 2018, expiring 2082 and 2118)", () => {
    beforeEach(() => clock.set(Date.now()));
    afterEach(() => clock.set(1300819000 * 1000));

  it("accepts Istio's sample demo.jwt and maps its claim to a header", async () => {
    const r = await check(istio("demo.jwt"));
    assert.equal(r.allowed, true, r.reason);
    assert.equal(r.metadata.subject, "testing@secure.istio.io");
    assert.equal(r.headers["x-foo"], "bar");
  });

  it("reads roles and scopes from Istio's groups-scope.jwt (array claims)", async () => {
    const r = await check(istio("groups-scope.jwt"), "/istio");
    assert.equal(r.allowed, true, r.reason);
    assert.deepEqual(r.metadata.roles, ["group1", "group2"]);
  });

  it("denies demo.jwt where the rule needs a group it lacks", async () => {
    const r = await check(istio("demo.jwt"), "/istio");
    assert.equal(r.status, 403);
    assert.equal(r.reason, "insufficient_permissions");
  });
  });

  describe("RFC 7520 §4 cookbook signatures", () => {
    const dirPath = fixturePath("jose/rfc7520-cookbook/jws");
    const cases = readdirSync(dirPath)
      .map((f) => ({ f, v: JSON.parse(readFileSync(join(dirPath, f), "utf8")) }))
      .filter(({ v }) => typeof v.output?.compact === "string" && ["RS256", "PS384", "ES512"].includes(v.input?.alg));
    it("finds the RS256, PS384 and ES512 compact examples", () => assert.deepEqual(cases.map((c) => c.v.input.alg).sort(), ["ES512", "PS384", "RS256"]));
    for (const { f, v } of cases) {
      it(`verifies ${f} (${v.input.alg}) with node:crypto and rejects it with one bit flipped`, () => {
        const [hh, p, s] = (v.output.compact as string).split(".") as [string, string, string];
        const key = createPublicKey({ key: publicJwk(v.input.key) as any, format: "jwk" });
        const sig = Buffer.from(s, "base64url");
        assert.equal(verifyWith(key, v.input.alg, Buffer.from(`${hh}.${p}`), sig), true);
        sig[sig.length - 1] = sig[sig.length - 1]! ^ 1;
        assert.equal(verifyWith(key, v.input.alg, Buffer.from(`${hh}.${p}`), sig), false);
      });
      it(`answers 401 token_malformed to ${f} as a bearer token (its payload is prose, not a claims set)`, async () => {
        const r = await check(v.output.compact);
        assert.equal(r.status, 401);
        assert.equal(r.reason, "token_malformed");
      });
    }
  });
});

/** protojson → the object form the grpc-js client serializes (Timestamps become {seconds, nanos}). */
function fromProtojson(vector: any): object {
  const attributes = structuredClone(vector.attributes);
  const time = attributes?.request?.time;
  if (typeof time === "string") attributes.request.time = { seconds: String(Math.floor(Date.parse(time) / 1000)), nanos: 0 };
  return { attributes };
}

describe("real Envoy CheckRequests from test/fixtures/ext-authz (component)", function () {
  this.timeout(30_000);
  let h: Harness;
  const vector = (name: string) => fromProtojson(readJson(`ext-authz/${name}`));
  before(async () => {
    h = await startHarness(`
apiVersion: meshward.io/v1
kind: AuthzPolicy
spec:
  providers:
    mesh: { trustDomains: [cluster.local] }
  roles: { viewer: ["products:read"] }
  bindings: [{ subjects: ["spiffe://cluster.local/ns/foo/sa/curl"], roles: [viewer] }]
  rules:
    - name: httpbin-from-foo
      match: { hosts: ["httpbin.foo"], paths: ["/headers"], methods: [GET] }
      require: { peer: { namespaces: [foo] }, permissions: ["products:read"] }
      when: 'request.headers["x-ext-authz"] == "allow" && source.serviceAccount == "curl"'
    - name: people-list
      match: { paths: ["/people"], methods: [GET] }
      require: { user: true }
    - name: people-create
      match: { hosts: ["192.168.99.206"], paths: ["/people"], methods: [POST], sourceCidrs: ["172.17.0.0/16"] }
      allow: anonymous
      when: 'request.query.lang == "en" && request.headers["content-type"] == "application/json"'
    - name: products
      match: { paths: ["/api/v1/products"] }
      require: { roles: [viewer] }
`);
  });
  after(() => h?.stop());

  it("allows Istio's in-mesh request carrying x-ext-authz: allow from spiffe://cluster.local/ns/foo/sa/curl", async () => {
    const r = await h.check(vector("istio-authz-custom-mesh-mtls-checkrequest-allowed.json"));
    assert.equal(r.allowed, true, r.reason);
    assert.equal(r.metadata.peer, "spiffe://cluster.local/ns/foo/sa/curl");
    assert.deepEqual(r.metadata.roles, ["viewer"]);
  });

  it("denies Istio's in-mesh request carrying x-ext-authz: deny (403 condition_not_met)", async () => {
    const r = await h.check(vector("istio-authz-custom-mesh-mtls-checkrequest-denied.json"));
    assert.equal(r.status, 403);
    assert.equal(r.reason, "condition_not_met");
  });

  it("matches OPA's v3 edge request by host without port, path without query and query map", async () => {
    const r = await h.check(vector("opa-envoy-primer-v3-input.json"));
    assert.equal(r.allowed, true, r.reason);
    assert.equal(r.metadata.rule, "people-create");
  });

  it("answers 401 to OPA's GET /people whose HS256 token names no issuer", async () => {
    const r = await h.check(vector("opa-envoy-primer-simple-input.json"));
    assert.equal(r.status, 401);
    assert.equal(r.reason, "unsupported_credential", "no JWT provider is configured, so no verifier claims the token");
  });

  it("answers 401 unsupported_credential to the Istio ingress request with Basic auth", async () => {
    const r = await h.check(vector("opa-envoy-plugin-v2-istio-ingress-basic-auth.json"));
    assert.equal(r.status, 401);
    assert.equal(r.reason, "unsupported_credential");
    assert.match(r.headers["www-authenticate"] ?? "", /error="invalid_token"/);
  });
});
