// What is authorised must be what is served (issue 12), at the Check level over real gRPC: ambiguous
// paths, authorities and queries are refused, identity headers are stripped on every allow, role names
// are own properties, comma-bearing roles never reach a comma-joined header, revocations name a provider.
import assert from "node:assert/strict";
import { writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAdminServer } from "../../authz-server/src/admin/admin-server.js";
import { apiKeysPlugin, hashApiKey } from "../../authz-server/src/credentials/api-keys.js";
import { MemoryRevocationStore } from "../../authz-server/src/credentials/revocation.js";
import { loadPolicyFile } from "../../authz-server/src/policy/load-policy.js";
import { checkRequest, startHarness, type Harness } from "../../tools/testing/authz-harness.js";
import { demoApiKeys, policyYaml } from "../../tools/testing/policy.js";
import { newKey, signJwt } from "../../tools/testing/tokens.js";
import { PATH_CASES } from "../fixtures/canonical-paths.js";

const POLICY = policyYaml(
  {
    providers: { apiKeys: [demoApiKeys([{ claim: "sub", header: "x-user-id" }, { claim: "tier", header: "x-user-tier" }, { claim: "keyId", header: "x-key-id" }])] },
    roles: { reader: ["orders:read"] },
    response: { rolesHeader: "x-roles", identityHeaders: ["x-user-id", "x-user-tier", "x-tenant-verified"] },
  },
  `
  rules:
    - name: no-admin
      effect: deny
      match: { paths: ["/admin/**"] }
    - name: no-internal
      effect: deny
      match: { hosts: ["internal.example.com"] }
    - name: public
      match: { paths: ["/public/**"] }
      allow: anonymous
    - name: orders
      match: { paths: ["/api/orders/**"] }
      require: { permissions: ["orders:read"] }
    - name: acme-reports
      match: { paths: ["/reports"] }
      allow: anonymous
      when: 'request.query["tenant"] == "acme"'
`,
);

describe("issue 12: what is authorised is what is served (Check over gRPC)", function () {
  this.timeout(30_000);
  let h: Harness;
  before(async () => {
    h = await startHarness(POLICY, { credentialPlugins: [apiKeysPlugin()] });
  });
  after(() => h.stop());
  const check = (path: string, more: { host?: string; headers?: Record<string, string> } = {}) => h.check(checkRequest({ path, ...more }));

  describe("paths (item 1)", () => {
    for (const [path, canonical] of PATH_CASES.filter(([p]) => p.startsWith("/public/") || p.startsWith("//") || p.startsWith("/./") || p.startsWith("/admin") || p.startsWith("/%61"))) {
      if (canonical) continue;
      it(`refuses ${JSON.stringify(path)} with 400 non_canonical_path, even where an anonymous rule matches`, async () => {
        const r = await check(path);
        assert.equal(r.allowed, false);
        assert.equal(r.status, 400);
        assert.equal(r.reason, "non_canonical_path");
        assert.equal(r.body.error, "bad_request");
      });
    }
    it("still allows the canonical public path and denies the canonical admin path", async () => {
      assert.equal((await check("/public/docs")).allowed, true);
      assert.equal((await check("/admin/users")).reason, "denied_by_rule");
    });
    it("refuses /api/orders/../../admin/x for an authorised reader", async () => {
      const r = await check("/api/orders/../../admin/x", { headers: { "x-api-key": "bob-key" } });
      assert.equal(r.reason, "non_canonical_path");
    });
  });

  describe("identity headers (item 2)", () => {
    it("removes every declared identity header on an anonymous allow", async () => {
      const r = await check("/public/x", { headers: { "x-user-id": "alice", "x-user-tier": "beta", "x-tenant-verified": "1" } });
      assert.equal(r.allowed, true);
      for (const h of ["x-user-id", "x-user-tier", "x-tenant-verified", "x-key-id", "x-roles"]) assert.ok(r.removed.includes(h), `${h} removed: ${r.removed.join(",")}`);
      assert.equal(r.headers["x-user-id"], undefined);
    });
    it("sets API-key identity headers from the key (subject, key id, per-key claims) over forged ones", async () => {
      const r = await check("/api/orders/1", { headers: { "x-api-key": "alice-key", "x-user-id": "mallory", "x-user-tier": "gold" } });
      assert.equal(r.allowed, true, r.reason);
      assert.equal(r.headers["x-user-id"], "alice");
      assert.equal(r.headers["x-user-tier"], "beta");
      assert.equal(r.headers["x-key-id"], "alice");
      assert.equal(r.headers["x-roles"], "reader");
      assert.ok(r.removed.includes("x-tenant-verified"));
    });
    it("removes a key's missing claim header instead of passing the client's", async () => {
      const r = await check("/api/orders/1", { headers: { "x-api-key": "bob-key", "x-user-tier": "beta" } });
      assert.equal(r.headers["x-user-id"], "bob");
      assert.ok(r.removed.includes("x-user-tier"));
    });
  });

  describe("authorities (item 6)", () => {
    for (const host of ["internal.example.com.", "INTERNAL.example.com", "internal.example.com.:443", "internal.example.com:443"]) {
      it(`applies the host rule to ${host}`, async () => {
        const r = await check("/public/x", { host });
        assert.equal(r.allowed, false);
        assert.equal(r.reason, "denied_by_rule");
      });
    }
    for (const host of ["user@internal.example.com", "internal.example.com:1:2", "internal.example.com:", "internal.example.com:99999", "internal..example.com", "[::1", "a b"]) {
      it(`refuses the malformed authority ${JSON.stringify(host)} with 400 malformed_authority`, async () => {
        const r = await check("/public/x", { host });
        assert.equal(r.status, 400);
        assert.equal(r.reason, "malformed_authority");
      });
    }
  });

  describe("duplicate query parameters (item 10)", () => {
    it("refuses a repeated parameter with different values when the policy reads the query", async () => {
      const r = await check("/reports?tenant=acme&tenant=globex");
      assert.equal(r.status, 400);
      assert.equal(r.reason, "ambiguous_query");
      assert.equal((await check("/reports?tenant=acme&%74enant=globex")).reason, "ambiguous_query");
    });
    it("accepts a single value and a value repeated identically", async () => {
      assert.equal((await check("/reports?tenant=acme")).allowed, true);
      assert.equal((await check("/reports?tenant=acme&tenant=acme")).allowed, true);
    });
  });
});

describe("issue 12: policy loading and admin checks", function () {
  const dir = mkdtempSync(join(tmpdir(), "meshward-sec-"));
  const load = (text: string) => {
    const file = join(dir, "p.yaml");
    writeFileSync(file, text);
    return () => loadPolicyFile(file);
  };

  for (const role of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
    it(`refuses the role '${role}' (an Object.prototype member) as an unknown role (item 7)`, () => {
      const text = `apiVersion: meshward.io/v1
kind: AuthzPolicy
spec:
  providers:
    apiKeys:
      - { name: k, from: [{ header: x-api-key }], keys: [{ id: a, sha256: ${hashApiKey("k")}, roles: [${role}] }] }
  roles: { reader: ["orders:read"] }
  rules:
    - { name: r, match: { paths: ["/x"] }, require: { roles: [${role}] } }
`;
      assert.throws(load(text), (e: Error) => e.message.includes(`unknown role '${role}'`));
    });
  }

  it("keeps role values with a comma out of the comma-joined roles header (item 9)", async () => {
    const key = newKey("ES256");
    const h = await startHarness(`apiVersion: meshward.io/v1
kind: AuthzPolicy
spec:
  providers:
    jwt:
      - { name: idp, issuer: "https://idp.test/", jwks: { keys: [${JSON.stringify(key.jwk)}] }, algorithms: [ES256], roles: { claim: roles },
          claimsToHeaders: [{ claim: groups, header: x-groups }] }
  roles: { reader: ["orders:read"] }
  response: { rolesHeader: x-roles }
  rules: [{ name: r, match: { paths: ["/x"] }, require: { roles: [reader] } }]
`);
    try {
      const now = Math.floor(Date.now() / 1000);
      const token = signJwt(key, { iss: "https://idp.test/", sub: "u", iat: now, exp: now + 60, roles: ["reader", "team-x,admin"], groups: ["g1", "g2,admins"] });
      const r = await h.check(checkRequest({ path: "/x", headers: { authorization: `Bearer ${token}` } }));
      assert.equal(r.allowed, true, r.reason);
      assert.equal(r.headers["x-roles"], "reader");
      assert.equal(r.headers["x-groups"], "g1");
    } finally {
      await h.stop();
    }
  });

  it("refuses a revocation for a provider the policy does not have with 400 (item 8)", async () => {
    const store = new MemoryRevocationStore();
    const token = "admin-secret-0123456789abcdef";
    const admin = createAdminServer({ store, token, knownProviders: () => new Set(["corp"]) });
    const { port } = await admin.listen("127.0.0.1", 0);
    try {
      const post = (body: object) => fetch(`http://127.0.0.1:${port}/v1/revocations`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(body) });
      const bad = await post({ sub: "mallory", ttlSeconds: 60, provider: "corpp" });
      assert.equal(bad.status, 400);
      assert.match(((await bad.json()) as { detail: string }).detail, /unknown provider 'corpp' \(known: corp\)/);
      assert.equal((await post({ sub: "mallory", ttlSeconds: 60, provider: "corp" })).status, 201);
    } finally {
      await admin.close();
    }
  });
});
