// Component tests: the real authz server over loopback gRPC, JWTs signed at test time, a loopback
// JWKS endpoint, mesh principals, CEL, deny-overrides, dry-run and size limits.
import assert from "node:assert/strict";
import { checkRequest, startHarness, testClock, type Harness } from "../../tools/testing/authz-harness.js";
import { startJwksServer, type JwksServer } from "../../tools/testing/jwks-server.js";
import { newKey, signHs256WithPublicKey, signJwt, unsecuredJwt, type TestKey } from "../../tools/testing/tokens.js";
import { jwtProvider, policyYaml } from "../../tools/testing/policy.js";

const ISS = "https://idp.test/";
const NOW_S = 1_800_000_000;

function policy(jwksUrl: string): string {
  const corp = jwtProvider({
    issuer: ISS, audiences: ["orders-api"], jwks: { uri: jwksUrl, cooldown: "1ms" }, algorithms: ["RS256", "ES256"], clockSkew: "30s",
    roles: { claim: "realm_access.roles" }, claimsToHeaders: [{ claim: "sub", header: "x-user-id" }, { claim: "tier", header: "x-user-tier" }],
    forward: false,
  });
  return policyYaml({ providers: { jwt: [corp], mesh: { trustDomains: ["cluster.local"] } } }, `
  roles:
    admin: ["orders:*"]
    reader: ["orders:read"]
  bindings:
    - subjects: ["spiffe://cluster.local/ns/billing/sa/billing-api"]
      roles: [reader]
  response: { realm: orders, subjectHeader: x-subject, rolesHeader: x-roles }
  rules:
    - name: block-legacy
      effect: deny
      when: '"user-agent" in request.headers && request.headers["user-agent"].startsWith("legacy/")'
    - name: health
      match: { paths: ["/healthz"] }
      allow: anonymous
    - name: orders-read
      match: { hosts: ["api.example.com"], paths: ["/api/orders/**"], methods: [GET] }
      require: { permissions: ["orders:read"] }
    - name: orders-write
      match: { hosts: ["api.example.com"], paths: ["/api/orders/**"], methods: [POST] }
      require: { permissions: ["orders:write"] }
    - name: eu-admins
      match: { paths: ["/api/admin/**"] }
      require: { roles: [admin] }
      when: 'request.headers["x-region"] == "eu"'
    - name: mesh-internal
      match: { paths: ["/internal/**"] }
      require: { peer: { namespaces: [billing] }, permissions: ["orders:read"] }
    - name: invoices-for-users
      match: { paths: ["/api/invoices/**"] }
      require:
        user: true
        roles: [reader, admin]
        peer: { principals: ["spiffe://cluster.local/ns/billing/sa/billing-api"] }
    - name: tenant-reports
      match: { paths: ["/api/reports/*"] }
      require: { user: true }
      when: 'identity.claims.tenant == context.tenant'
    - name: no-bulk-export
      enforcement: dryRun
      effect: deny
      match: { paths: ["/api/orders/export"] }
`);
}

describe("authz-server Check over gRPC (component)", function () {
  this.timeout(60_000);
  let jwks: JwksServer;
  let h: Harness;
  let rsa: TestKey;
  let ec: TestKey;
  const clock = testClock(NOW_S * 1000);
  const claims = (extra: Record<string, unknown> = {}) => ({
    iss: ISS,
    sub: "alice",
    aud: "orders-api",
    iat: NOW_S - 60,
    exp: NOW_S + 600,
    realm_access: { roles: ["reader"] },
    ...extra,
  });
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const get = (path: string, headers: Record<string, string> = {}, more: object = {}) => h.check(checkRequest({ path, headers, ...more }));

  before(async () => {
    rsa = newKey("RS256");
    ec = newKey("ES256");
    jwks = await startJwksServer([rsa.jwk, ec.jwk]);
    h = await startHarness(policy(jwks.url), { clock });
  });
  after(async () => {
    await h?.stop();
    await jwks?.stop();
  });

  describe("JWT verification", () => {
    it("allows a valid RS256 token and passes identity headers, roles and metadata upstream", async () => {
      const r = await get("/api/orders/42", bearer(signJwt(rsa, claims({ tier: "gold" }))));
      assert.equal(r.allowed, true, r.reason);
      assert.equal(r.reason, "allowed");
      assert.equal(r.headers["x-user-id"], "alice");
      assert.equal(r.headers["x-user-tier"], "gold");
      assert.equal(r.headers["x-subject"], "alice");
      assert.equal(r.headers["x-roles"], "reader");
      assert.match(r.decisionId, /^[0-9a-f]{24}$/);
      assert.deepEqual(r.removed, ["authorization"], "forward: false removes the token upstream");
      assert.equal(r.metadata.rule, "orders-read");
      assert.equal(r.metadata.subject, "alice");
      assert.deepEqual(r.metadata.roles, ["reader"]);
      assert.equal(r.metadata.decisionId, r.decisionId);
    });

    it("allows a valid ES256 token", async () => {
      const r = await get("/api/orders/1", bearer(signJwt(ec, claims())));
      assert.equal(r.allowed, true, r.reason);
    });

    it("removes client-sent identity headers it did not set, so they cannot be forged", async () => {
      const r = await get("/healthz", { "x-user-id": "root" });
      assert.equal(r.allowed, true);
      assert.ok(r.removed.includes("x-user-id"));
      assert.ok(r.removed.includes("x-subject"));
    });

    const rejected: [string, () => string, string][] = [
      ["an expired token", () => signJwt(rsa, claims({ exp: NOW_S - 31 })), "token_expired"],
      ["a token that is not valid yet (nbf beyond the clock skew)", () => signJwt(rsa, claims({ nbf: NOW_S + 31 })), "token_not_yet_valid"],
      ["a token issued in the future (iat beyond the clock skew)", () => signJwt(rsa, claims({ iat: NOW_S + 120 })), "token_not_yet_valid"],
      ["a token for another audience", () => signJwt(rsa, claims({ aud: ["billing-api"] })), "invalid_audience"],
      ["a token from an unknown issuer", () => signJwt(rsa, claims({ iss: "https://evil.test/" })), "unknown_issuer"],
      ["a token whose kid is in no JWKS", () => signJwt(newKey("RS256", "ghost"), claims()), "unknown_kid"],
      ["an unsecured token (alg none)", () => unsecuredJwt(claims()), "algorithm_not_allowed"],
      ["an unsecured token spelled NoNe", () => unsecuredJwt(claims(), "NoNe"), "algorithm_not_allowed"],
      ["an HS256 token keyed with the RSA public key (key confusion)", () => signHs256WithPublicKey(rsa, claims()), "algorithm_not_allowed"],
      ["a token signed by another key under a known kid", () => signJwt({ ...newKey("RS256"), kid: rsa.kid }, claims()), "invalid_signature"],
      ["a token with a critical header extension", () => signJwt(rsa, claims(), { crit: ["exp-ext"], "exp-ext": 1 }), "unsupported_crit"],
      ["a token with padded base64url", () => signJwt(rsa, claims()).replace(".", "=."), "token_malformed"],
      ["a token with four parts", () => `${signJwt(rsa, claims())}.x`, "unsupported_credential"],
      ["a token whose payload is not a JSON object", () => { const [hh, , s] = signJwt(rsa, claims()).split("."); return `${hh}.${Buffer.from("[1]").toString("base64url")}.${s}`; }, "token_malformed"],
    ];
    for (const [what, token, reason] of rejected) {
      it(`answers 401 ${reason} with an invalid_token challenge for ${what}`, async () => {
        const r = await get("/api/orders/1", bearer(token()));
        assert.equal(r.allowed, false);
        assert.equal(r.status, 401);
        assert.equal(r.reason, reason);
        assert.equal(r.grpcCode, 7);
        assert.equal(r.headers["www-authenticate"], `Bearer realm="orders", error="invalid_token", error_description="${reason}"`);
        assert.deepEqual(r.body, { error: "unauthenticated", reason, decisionId: r.decisionId });
      });
    }

    it("never puts token contents in the response or the decision log", async () => {
      const token = signJwt(rsa, claims({ exp: NOW_S - 100, secretish: "s3cr3t-claim" }));
      const before = h.logs.length;
      const r = await get("/api/orders/1", bearer(token));
      const text = JSON.stringify(r.raw) + JSON.stringify(h.logs.slice(before));
      assert.ok(!text.includes(token.split(".")[1]!), "payload leaked");
      assert.ok(!text.includes("s3cr3t-claim"));
      assert.ok(!text.includes(token.split(".")[2]!), "signature leaked");
    });

    it("accepts a token signed by a key that appears in the JWKS after rotation", async () => {
      const rotated = newKey("RS256");
      jwks.setKeys([rsa.jwk, ec.jwk, rotated.jwk]);
      const fetchesBefore = jwks.fetches;
      clock.set((NOW_S + 2) * 1000); // past the unknown-kid refetch cooldown of earlier tests
      try {
        const r = await get("/api/orders/1", bearer(signJwt(rotated, claims({ sub: "rotated" }))));
        assert.equal(r.allowed, true, r.reason);
        assert.equal(r.headers["x-user-id"], "rotated");
        assert.ok(jwks.fetches > fetchesBefore, "the unknown kid triggered a JWKS refetch");
        assert.equal((await get("/api/orders/1", bearer(signJwt(rsa, claims())))).allowed, true, "the old key still verifies");
      } finally {
        clock.set(NOW_S * 1000);
      }
    });

    it("rejects a token whose key a JWKS refresh removed, though the verified-token cache held it", async () => {
      const gone = newKey("RS256");
      jwks.setKeys([rsa.jwk, ec.jwk, gone.jwk]);
      const token = signJwt(gone, claims({ sub: "gone" }));
      clock.set((NOW_S + 4) * 1000);
      try {
        // The first verify fetched the new key set, so its result is not cached (keys changed meanwhile); the second is.
        assert.equal((await get("/api/orders/1", bearer(token))).allowed, true);
        assert.equal((await get("/api/orders/1", bearer(token))).allowed, true);
        const hits = await h.metric("meshward_authz_token_cache_lookups_total", { result: "hit" });
        assert.equal((await get("/api/orders/1", bearer(token))).allowed, true);
        assert.equal(await h.metric("meshward_authz_token_cache_lookups_total", { result: "hit" }), hits + 1, "the token is in the verified-token cache");
        // The key is rotated out; a token with a kid never seen makes authz-server refetch the JWKS.
        jwks.setKeys([rsa.jwk, ec.jwk]);
        clock.set((NOW_S + 6) * 1000);
        assert.equal((await get("/api/orders/1", bearer(signJwt(newKey("RS256"), claims())))).reason, "unknown_kid");
        const r = await get("/api/orders/1", bearer(token));
        assert.equal(r.status, 401);
        assert.equal(r.reason, "unknown_kid");
        assert.equal((await get("/api/orders/1", bearer(signJwt(rsa, claims())))).allowed, true, "the remaining keys still verify");
      } finally {
        jwks.setKeys([rsa.jwk, ec.jwk]);
        clock.set(NOW_S * 1000);
      }
    });

    it("serves a repeated token from the verified-token cache and still enforces its expiry", async () => {
      const token = signJwt(rsa, claims({ sub: "cached", exp: NOW_S + 5 }));
      const hits = await h.metric("meshward_authz_token_cache_lookups_total", { result: "hit" });
      assert.equal((await get("/api/orders/1", bearer(token))).allowed, true);
      assert.equal((await get("/api/orders/1", bearer(token))).allowed, true);
      assert.equal(await h.metric("meshward_authz_token_cache_lookups_total", { result: "hit" }), hits + 1);
      clock.set((NOW_S + 6) * 1000);
      try {
        const late = await get("/api/orders/1", bearer(token));
        assert.equal(late.allowed, true, "within the 30 s clock skew");
        clock.set((NOW_S + 40) * 1000);
        const expired = await get("/api/orders/1", bearer(token));
        assert.equal(expired.reason, "token_expired");
      } finally {
        clock.set(NOW_S * 1000);
      }
    });
  });

  describe("401 versus 403", () => {
    it("answers 401 with a bare Bearer challenge when credentials are missing", async () => {
      const r = await get("/api/orders/1");
      assert.equal(r.status, 401);
      assert.equal(r.reason, "missing_credentials");
      assert.equal(r.headers["www-authenticate"], 'Bearer realm="orders"');
      assert.equal(r.headers["content-type"], "application/json");
    });

    it("answers 403 insufficient_scope to an authenticated user without the permission", async () => {
      const r = await h.check(checkRequest({ method: "POST", path: "/api/orders/1", headers: bearer(signJwt(rsa, claims())) }));
      assert.equal(r.status, 403);
      assert.equal(r.reason, "insufficient_permissions");
      assert.equal(r.headers["www-authenticate"], 'Bearer realm="orders", error="insufficient_scope", error_description="insufficient_permissions"');
      assert.equal(r.body.error, "forbidden");
    });

    it("allows the permission through a wildcard grant (admin: orders:*)", async () => {
      const r = await h.check(checkRequest({ method: "POST", path: "/api/orders/1", headers: bearer(signJwt(rsa, claims({ realm_access: { roles: ["admin"] } }))) }));
      assert.equal(r.allowed, true, r.reason);
      assert.equal(r.metadata.rule, "orders-write");
    });

    it("answers 403 no_matching_rule when no rule applies (default deny)", async () => {
      const r = await get("/nowhere", bearer(signJwt(rsa, claims())));
      assert.equal(r.status, 403);
      assert.equal(r.reason, "no_matching_rule");
      assert.equal(r.headers["www-authenticate"], undefined);
    });

    it("lets anonymous rules allow even when the presented token is invalid", async () => {
      const r = await get("/healthz", bearer(unsecuredJwt(claims())));
      assert.equal(r.allowed, true);
      assert.equal(r.metadata.rule, "health");
    });
  });

  describe("mesh identity", () => {
    const billing = "spiffe://cluster.local/ns/billing/sa/billing-api";
    it("allows a workload through the roles bound to its SPIFFE ID", async () => {
      const r = await get("/internal/orders", {}, { principal: billing });
      assert.equal(r.allowed, true, r.reason);
      assert.equal(r.metadata.peer, billing);
      assert.equal(r.headers["x-subject"], billing);
    });

    it("denies a workload from a namespace the rule does not name", async () => {
      const r = await get("/internal/orders", {}, { principal: "spiffe://cluster.local/ns/web/sa/frontend" });
      assert.equal(r.status, 403);
      assert.equal(r.reason, "peer_not_allowed");
    });

    it("treats a principal from an unknown trust domain as no peer", async () => {
      const r = await get("/internal/orders", {}, { principal: "spiffe://evil.example/ns/billing/sa/billing-api" });
      assert.equal(r.status, 403);
      assert.equal(r.reason, "peer_required");
      assert.equal(r.metadata.peer, undefined);
    });

    it("allows the billing workload acting for a user with role reader (JWT + SPIFFE in one rule)", async () => {
      const r = await get("/api/invoices/7", bearer(signJwt(rsa, claims({ sub: "bob" }))), { principal: billing });
      assert.equal(r.allowed, true, r.reason);
      assert.equal(r.metadata.subject, "bob");
      assert.equal(r.metadata.peer, billing);
      assert.equal(r.metadata.rule, "invoices-for-users");
    });

    it("denies the combined rule without the workload, and asks for a user without the JWT", async () => {
      const noPeer = await get("/api/invoices/7", bearer(signJwt(rsa, claims())));
      assert.equal(noPeer.reason, "peer_required");
      assert.equal(noPeer.status, 403);
      const noUser = await get("/api/invoices/7", {}, { principal: billing });
      assert.equal(noUser.reason, "missing_credentials");
      assert.equal(noUser.status, 401);
    });
  });

  describe("CEL conditions, deny-overrides and dry-run", () => {
    const admin = () => bearer(signJwt(rsa, claims({ realm_access: { roles: ["admin"] } })));
    it("allows when the condition holds", async () => {
      const r = await get("/api/admin/users", { ...admin(), "x-region": "eu" });
      assert.equal(r.allowed, true, r.reason);
    });

    it("denies with condition_not_met when the condition is false", async () => {
      const r = await get("/api/admin/users", { ...admin(), "x-region": "us" });
      assert.equal(r.status, 403);
      assert.equal(r.reason, "condition_not_met");
    });

    it("treats a condition that fails to evaluate as false for an allow rule (condition_error)", async () => {
      const r = await get("/api/admin/users", admin());
      assert.equal(r.allowed, false);
      assert.equal(r.reason, "condition_error");
    });

    it("compares claims with Envoy context_extensions", async () => {
      const token = bearer(signJwt(rsa, claims({ tenant: "acme" })));
      assert.equal((await get("/api/reports/q1", token, { contextExtensions: { tenant: "acme" } })).allowed, true);
      const other = await get("/api/reports/q1", token, { contextExtensions: { tenant: "globex" } });
      assert.equal(other.reason, "condition_not_met");
    });

    it("lets a matching deny rule override an allow rule", async () => {
      const r = await get("/api/admin/users", { ...admin(), "x-region": "eu", "user-agent": "legacy/2.1" });
      assert.equal(r.allowed, false);
      assert.equal(r.status, 403);
      assert.equal(r.reason, "denied_by_rule");
      assert.equal(r.metadata.rule, "block-legacy");
    });

    it("never blocks on a dryRun rule, but logs and counts the disagreement", async () => {
      const before = await h.metric("meshward_authz_dry_run_disagreements_total", { rule: "no-bulk-export", would: "deny" });
      const r = await get("/api/orders/export", bearer(signJwt(rsa, claims())));
      assert.equal(r.allowed, true, r.reason);
      assert.equal(await h.metric("meshward_authz_dry_run_disagreements_total", { rule: "no-bulk-export", would: "deny" }), before + 1);
      const line = h.logs.find((l) => l.decisionId === r.decisionId);
      assert.deepEqual(line?.dryRun, [{ rule: "no-bulk-export", wouldDeny: true }]);
      assert.equal(line?.allowed, true);
    });
  });

  describe("limits, observability and health", () => {
    it("answers 401 token_too_large for a credential over 16 KiB", async () => {
      const r = await get("/api/orders/1", bearer(signJwt(rsa, claims({ pad: "x".repeat(17 * 1024) }))));
      assert.equal(r.status, 401);
      assert.equal(r.reason, "token_too_large");
    });

    it("answers 431 request_too_large for more than 200 headers", async () => {
      const headers: Record<string, string> = {};
      for (let i = 0; i < 201; i++) headers[`x-h${i}`] = "v";
      const r = await get("/healthz", headers);
      assert.equal(r.status, 431);
      assert.equal(r.reason, "request_too_large");
    });

    it("answers 431 for more than 64 KiB of header bytes", async () => {
      const r = await get("/healthz", { "x-big": "y".repeat(65 * 1024) });
      assert.equal(r.status, 431);
    });

    it("logs one JSON line per decision with id, rule, reason and latency, without headers", async () => {
      const r = await get("/api/orders/9", { ...bearer(signJwt(rsa, claims())), cookie: "session=abc" });
      const line = h.logs.find((l) => l.decisionId === r.decisionId);
      assert.ok(line, "decision logged");
      assert.equal(line.msg, "decision");
      assert.equal(line.rule, "orders-read");
      assert.equal(line.reason, "allowed");
      assert.equal(line.path, "/api/orders/9");
      assert.equal(typeof line.latencyUs, "number");
      assert.ok(!JSON.stringify(line).includes("session=abc"));
    });

    it("exposes decisions and the policy version on /metrics", async () => {
      const m = await h.http("/metrics");
      assert.equal(m.status, 200);
      assert.match(m.text, /meshward_authz_decisions_total\{result="allow",reason="allowed"\} [1-9]/);
      assert.match(m.text, new RegExp(`meshward_authz_policy_info\\{version="${h.holder.current!.policy.version}"\\} 1`));
    });

    it("reports live and ready over HTTP", async () => {
      assert.equal((await h.http("/healthz")).status, 200);
      const ready = await h.http("/readyz");
      assert.equal(ready.status, 200, ready.text);
      assert.equal(JSON.parse(ready.text).ready, true);
    });
  });
});
