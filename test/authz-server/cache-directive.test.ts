// authz-server's side of the decision cache: which attributes a rule reads (CEL scan), which decisions
// may be cached and for how long, the signed directive, and the epoch bumped on reload, revocation and key-set change.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { writeFileSync } from "node:fs";
import { get } from "node:http";
import { join } from "node:path";
import { attributesFromCheckRequest, type CheckRequestObject } from "../../authz-server/src/attributes/from-check-request.js";
import type { Decision } from "../../authz-server/src/model.js";
import { celDependencies, decisionDependencies, explainCacheability } from "../../authz-server/src/policy/dependencies.js";
import { compilePolicyText } from "../../authz-server/src/policy/load-policy.js";
import { CACHE_NONCE_HEADER, cacheDirective } from "../../authz-server/src/response/cache-directive.js";
import { CacheEpoch } from "../../authz-server/src/response/cache-epoch.js";
import { renderCheckResponse } from "../../authz-server/src/response/check-response.js";
import { checkRequest } from "../../tools/testing/authz-harness.js";
import { cachePolicy } from "../../tools/testing/authz-cache-world.js";
import { createIssuer, startAuthz, tempDir, type RunningAuthz } from "../../tools/testing/e2e-authz.js";

const SECRET = "unit-test-cache-secret-0123";
const NONCE = "0123456789abcdef0123456789abcdef";

function policy(body: string, cache = `  cache: { enabled: true, maxTtl: 20s, secret: { env: MESHWARD_TEST_CACHE_SECRET } }\n`) {
  process.env["MESHWARD_TEST_CACHE_SECRET"] = SECRET;
  return compilePolicyText(`apiVersion: meshward.io/v1\nkind: AuthzPolicy\nspec:\n${cache}  providers:\n    apiKeys:\n      - name: keys\n        from: [{ header: x-api-key }]\n        keys: [{ id: k1, sha256: "${"a".repeat(64)}" }]\n  rules:\n${body}`, "/policy.yaml");
}

const attrs = (path: string, headers: Record<string, string> = {}, sourceAddress?: string) =>
  attributesFromCheckRequest(checkRequest({ path, headers: { [CACHE_NONCE_HEADER]: NONCE, ...headers }, ...(sourceAddress ? { sourceAddress } : {}) }) as CheckRequestObject);

const allow = (extra: Partial<Decision> = {}): Decision => ({ id: "d1", allowed: true, httpStatus: 200, reason: "allowed", identity: {}, dryRun: [], ...extra });

describe("decision cache: dependencies", () => {
  it("reads CEL variable references: literal headers, query, source address; refuses now, context and dynamic access", () => {
    assert.deepEqual([...celDependencies(`request.headers["X-Tenant"] == "a" && request.headers.x_b == "b"`).attributes].sort(), ["h:x-tenant", "h:x_b"]);
    assert.deepEqual([...celDependencies(`request.query["page"] == "1"`).attributes], ["q"]);
    assert.deepEqual([...celDependencies(`source.address.startsWith("10.")`).attributes], ["a"]);
    assert.deepEqual([...celDependencies(`request.method == "GET" && identity.subject == "x" && "now" == request.path`).attributes], []);
    assert.match(String(celDependencies(`now > timestamp("2020-01-01T00:00:00Z")`).uncacheable), /now/);
    assert.match(String(celDependencies(`context["listener"] == "x"`).uncacheable), /context/);
    assert.match(String(celDependencies(`request.headers.exists(h, h == "x")`).uncacheable), /literal name/);
    assert.match(String(celDependencies(`"x-a" in request.headers`).uncacheable), /literal name/);
    assert.deepEqual([...celDependencies(`request.headers.x_a.startsWith("b")`).attributes], ["h:x_a"]);
    assert.match(String(celDependencies(`request.headers[request.path] == "x"`).uncacheable), /literal name/);
    assert.match(String(celDependencies(`source.principal == "spiffe://x"`).uncacheable), /peer/);
    assert.match(String(celDependencies(`request["headers"]["a"] == "x"`).uncacheable), /cannot name/);
  });

  it("explains per rule what it keys on and why it is not cacheable", () => {
    const p = policy(`    - { name: open, match: { paths: ["/open"] }, allow: anonymous }\n    - { name: clock, match: { paths: ["/clock"] }, allow: anonymous, when: 'now > timestamp("2020-01-01T00:00:00Z")' }\n    - { name: opted-out, match: { paths: ["/x"] }, allow: anonymous, cache: false }\n    - { name: cidr, match: { paths: ["/net"], sourceCidrs: ["10.0.0.0/8"] }, allow: anonymous }\n`);
    assert.deepEqual(explainCacheability(p.document), [
      "rule open: key = method, scheme, authority, path, h:x-api-key; cacheable",
      "rule clock: key = method, scheme, authority, path, h:x-api-key; not cacheable: CEL reads `now` (time-dependent)",
      "rule opted-out: key = method, scheme, authority, path, h:x-api-key; not cacheable: the rule says cache: false",
      "rule cidr: key = method, scheme, authority, path, a, h:x-api-key; cacheable",
    ]);
    const off = policy(`    - { name: open, match: { paths: ["/open"] }, allow: anonymous }\n`, "");
    assert.match(explainCacheability(off.document)[0]!, /not cacheable: spec.cache.enabled is not true/);
  });

  it("a decision depends on the rules whose matcher matched; a sibling's CIDRs still count", () => {
    const p = policy(`    - { name: open, match: { paths: ["/open"] }, allow: anonymous }\n    - { name: clock, match: { paths: ["/clock"] }, allow: anonymous, when: 'now > timestamp("2020-01-01T00:00:00Z")' }\n    - { name: cidr, match: { paths: ["/net"], sourceCidrs: ["10.0.0.0/8"] }, allow: anonymous }\n`);
    const rules = p.rulesForHost("api.example.com");
    assert.deepEqual(decisionDependencies(p, rules, attrs("/open")), { shape: ["a", "h:x-api-key"] });
    assert.match(String(decisionDependencies(p, rules, attrs("/clock")).uncacheable), /rule clock: CEL reads `now`/);
  });
});

describe("decision cache: directives", () => {
  const p = policy(`    - { name: open, match: { paths: ["/open"] }, allow: anonymous }\n    - { name: tenant, match: { paths: ["/t"] }, allow: anonymous, when: 'request.headers["x-tenant"] == "acme"' }\n`);
  const directive = (d: Decision, a = attrs("/open"), nowMs = 1_000_000) =>
    cacheDirective({ decision: d, policy: p, attrs: a, response: renderCheckResponse(d, p), epoch: "b.1.2", nowMs });
  const parse = (v: string | undefined) => {
    assert.ok(v);
    const [mac, ...rest] = v.split(".");
    const json = rest.join(".");
    assert.equal(mac, createHmac("sha256", SECRET).update(json).digest("hex"), "signed with the policy's secret");
    return JSON.parse(json) as Record<string, unknown>;
  };

  it("signs an allow with its nonce, epoch, shape, TTL and identity headers", () => {
    const d = parse(directive(allow()));
    assert.equal(d["n"], NONCE);
    assert.equal(d["e"], "b.1.2");
    assert.equal(d["d"], "allow");
    assert.equal(d["x"], 1_000_000 + 20_000);
    assert.deepEqual(d["k"], ["h:x-api-key"]);
    assert.deepEqual(d["l"], [200, 65536], "the policy's header limits travel with the decision");
    const t = parse(directive(allow(), attrs("/t", { "x-tenant": "acme" })));
    assert.deepEqual(t["k"], ["h:x-api-key", "h:x-tenant"]);
  });

  it("caps the TTL at the token's exp and refuses less than a second", () => {
    const user = { kind: "user" as const, provider: "keys", providerType: "jwt" as const, subject: "a", claims: {}, roles: [], scopes: [], expiresAt: 1_005 };
    assert.equal(parse(directive(allow({ identity: { user } })))["x"], 1_005_000);
    assert.equal(directive(allow({ identity: { user: { ...user, expiresAt: 1_000 } } })), undefined);
  });

  it("signs a denial with status, headers and body", () => {
    const d = parse(directive({ id: "d2", allowed: false, httpStatus: 403, reason: "no_matching_rule", identity: {}, dryRun: [] }));
    assert.equal(d["d"], "deny");
    assert.equal(d["s"], 403);
    assert.match(String(d["b"]), /forbidden/);
  });

  it("never caches 503s, credential errors, 431s, or a request without the filter's nonce", () => {
    assert.equal(directive({ id: "x", allowed: false, httpStatus: 503, reason: "jwks_unavailable", unavailable: true, identity: {}, dryRun: [] }), undefined);
    assert.equal(directive({ id: "x", allowed: false, httpStatus: 401, reason: "token_expired", bearerError: "invalid_token", identity: {}, dryRun: [] }), undefined);
    assert.equal(directive({ id: "x", allowed: false, httpStatus: 431, reason: "request_too_large", identity: {}, dryRun: [] }), undefined);
    const noNonce = attributesFromCheckRequest(checkRequest({ path: "/open" }) as CheckRequestObject);
    assert.equal(directive(allow(), noNonce), undefined);
    const badNonce = attributesFromCheckRequest(checkRequest({ path: "/open", headers: { [CACHE_NONCE_HEADER]: "not-hex" } }) as CheckRequestObject);
    assert.equal(directive(allow(), badNonce), undefined);
  });
});

describe("decision cache: the epoch", () => {
  it("follows the policy version, the revocation list and the served key sets, and names equal state alike", () => {
    let keys = "jwt:e2e=A;";
    const epoch = new CacheEpoch();
    epoch.policyChanged("v1");
    epoch.keysFrom(() => keys);
    const e0 = epoch.value();
    assert.match(e0, /^v1\.[0-9a-f]{32}$/);
    assert.equal(epoch.value(), e0);
    keys = "jwt:e2e=B;";
    const e1 = epoch.value();
    assert.notEqual(e1, e0, "a key set change (a key rotated out) is a new epoch");
    epoch.revocationsChanged(() => [{ kind: "sub", value: "alice", expiresAt: 1 }]);
    const e2 = epoch.value();
    assert.notEqual(e2, e1);
    keys = "jwt:e2e=A;";
    epoch.revocationsChanged(() => []);
    assert.equal(epoch.value(), e0, "the same state has the same epoch");
    const other = new CacheEpoch();
    other.policyChanged("v1");
    other.keysFrom(() => "jwt:e2e=A;");
    assert.equal(other.value(), e0, "another process with the same state");
  });
});

describe("decision cache: epoch endpoint", function () {
  this.timeout(20_000);
  const epoch = (httpAddress: string) =>
    new Promise<string>((resolve, reject) => {
      get(`http://${httpAddress}/cache/epoch`, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve(body));
      }).on("error", reject);
    });

  /** The JWKS (a file here) is read in the background after start; the epoch names the loaded key set. */
  const keysLoaded = async (authz: RunningAuthz) => {
    for (let i = 0; !authz.holder.current!.credentials.status().ready; i++) {
      if (i > 200) throw new Error("JWKS not loaded within 2 s");
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  it("changes on reload and on revocation, and only then; the same state gives the same epoch in every process", async () => {
    const tmp = tempDir();
    const issuer = await createIssuer(tmp.dir);
    const secretFile = join(tmp.dir, "secret");
    writeFileSync(secretFile, SECRET);
    const authz = await startAuthz(tmp.dir, cachePolicy(issuer.jwksFile, secretFile));
    try {
      await keysLoaded(authz);
      const e0 = await epoch(authz.httpAddress);
      assert.match(e0, /^[0-9a-f]{12}\.[0-9a-f]{32}$/);
      assert.equal(await epoch(authz.httpAddress), e0);
      assert.equal(authz.holder.reload(), false, "an unchanged file is not a new policy");
      assert.equal(await epoch(authz.httpAddress), e0);
      writeFileSync(join(tmp.dir, "policy.yaml"), cachePolicy(issuer.jwksFile, secretFile, "    - { name: extra, match: { paths: [\"/extra\"] }, allow: anonymous }\n"));
      assert.ok(authz.holder.reload());
      const e1 = await epoch(authz.httpAddress);
      assert.notEqual(e1, e0);
      await authz.revocations.revoke("sub", "alice", 60_000);
      const e2 = await epoch(authz.httpAddress);
      assert.notEqual(e2, e1);
      await authz.revocations.unrevoke("sub", "alice");
      assert.equal(await epoch(authz.httpAddress), e1, "the same state has the same epoch");
      // A second authz-server process with the same policy and revocations reports the same epoch.
      const other = await startAuthz(tmp.dir, cachePolicy(issuer.jwksFile, secretFile, "    - { name: extra, match: { paths: [\"/extra\"] }, allow: anonymous }\n"));
      try {
        await keysLoaded(other);
        assert.equal(await epoch(other.httpAddress), e1);
        await other.revocations.revoke("sub", "bob", 60_000);
        assert.notEqual(await epoch(other.httpAddress), e1);
      } finally {
        await other.stop();
      }
    } finally {
      await authz.stop();
      tmp.remove();
    }
  });
});
