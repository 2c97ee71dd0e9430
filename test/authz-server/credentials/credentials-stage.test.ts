// The credential kinds together in the real credentials stage built from a policy: provider selection,
// precedence between several credentials, and how key/introspection outages surface (503 class).
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { apiKeysPlugin, hashApiKey } from "../../../authz-server/src/credentials/api-keys.js";
import { introspectionPlugin } from "../../../authz-server/src/credentials/introspection.js";
import type { Runtime } from "../../../authz-server/src/policy-holder.js";
import { runPipeline } from "../../../authz-server/src/pipeline.js";
import { attributes } from "./fixtures/attributes.js";
import { startIdp, type IdpServer } from "./fixtures/idp-server.js";
import { startIntrospectionServer, type IntrospectionServer } from "../../../tools/testing/introspection-server.js";
import { buildTestRuntime } from "./fixtures/runtime.js";
import { jwtProvider, policyYaml } from "../../../tools/testing/policy.js";

const API_KEY = "partner-key-7c1e0b5d";

/** Every runtime here runs on this fixed clock; token times derive from it. */
const now = 1_800_000_000;
const clock = { now: () => now * 1000 };

describe("credentials stage: JWT (by iss), introspection and API keys in one policy", () => {
  let idp: IdpServer;
  let as: IntrospectionServer;
  let runtime: Runtime;

  before(async () => {
    idp = await startIdp();
    as = await startIntrospectionServer({ id: "meshward", secret: "introspection-secret" });
    const secretFile = join(mkdtempSync(join(tmpdir(), "meshward-stage-")), "secret");
    writeFileSync(secretFile, "introspection-secret\n");
    runtime = buildTestRuntime(
      `${policyYaml({ providers: { jwt: [jwtProvider({ issuer: idp.issuer, algorithms: ["ES256"], jwks: { discovery: true } })] } }).trimEnd()}
    introspection:
      - name: legacy
        endpoint: ${as.url}
        clientId: meshward
        clientSecret: { file: ${JSON.stringify(secretFile)} }
        roles: { claim: groups }
    apiKeys:
      - name: partners
        from: [{ header: x-api-key }]
        keys: [{ id: acme, sha256: "${hashApiKey(API_KEY)}", roles: [partner] }]
  roles:
    partner: ["orders:read"]
  rules:
    - name: any-user
      match: { paths: ["/**"] }
      require: { user: true }
`,
      [introspectionPlugin(), apiKeysPlugin()],
      clock,
    );
    as.tokens.set("opaque-abc", { sub: "legacy-user", groups: ["ops"] });
  });
  after(async () => {
    runtime?.credentials.close();
    await idp.close();
    await as.close();
  });

  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

  it("verifies a JWT through OIDC discovery, an opaque bearer through introspection, and an API key from its header", async () => {
    const jwt = idp.sign({ iss: idp.issuer, sub: "alice", exp: now + 600 });
    assert.equal((await runtime.credentials.authenticate(attributes({ headers: bearer(jwt) }))).user?.provider, "corp");
    const intro = await runtime.credentials.authenticate(attributes({ headers: bearer("opaque-abc") }));
    assert.equal(intro.user?.provider, "legacy");
    assert.deepEqual(intro.user?.roles, ["ops"]);
    const key = await runtime.credentials.authenticate(attributes({ headers: { "x-api-key": API_KEY } }));
    assert.equal(key.user?.provider, "partners");
    assert.equal(key.user?.subject, "acme");
  });

  it("lets the first credential found decide (JWT, then introspection, then API keys) and never falls back after a failure", async () => {
    const both = await runtime.credentials.authenticate(attributes({ headers: { ...bearer("opaque-abc"), "x-api-key": API_KEY } }));
    assert.equal(both.user?.provider, "legacy", "bearer before API key");
    const badBearer = await runtime.credentials.authenticate(attributes({ headers: { ...bearer("not-active"), "x-api-key": API_KEY } }));
    assert.equal(badBearer.user, undefined, "an invalid bearer is not rescued by a valid API key");
    assert.equal(badBearer.error?.reason, "token_inactive");
  });

  it("turns an introspection outage into a CheckResponse with gRPC UNAVAILABLE and HTTP 503, and an inactive token into 401", async () => {
    const check = (authorization: string) =>
      runPipeline({ attributes: { request: { http: { method: "GET", path: "/api/orders", host: "api.example.com", headers: { authorization } } } } }, runtime, { clock, newId: () => "test-id" });
    as.mode = "down";
    try {
      const { decision, response } = await check("Bearer outage-token");
      assert.equal(decision.httpStatus, 503);
      assert.equal(decision.reason, "introspection_unavailable");
      assert.equal(response.status.code, 14, "gRPC UNAVAILABLE");
    } finally {
      as.mode = "ok";
    }
    const { decision } = await check("Bearer never-issued-either");
    assert.equal(decision.httpStatus, 401);
    assert.equal(decision.reason, "token_inactive");
  });

  it("answers 503-class errors when the introspection endpoint is down, and 401-class for an inactive token", async () => {
    as.mode = "down";
    try {
      const r = await runtime.credentials.authenticate(attributes({ headers: bearer("another-opaque") }));
      assert.equal(r.error?.kind, "unavailable");
      assert.equal(r.error?.reason, "introspection_unavailable");
    } finally {
      as.mode = "ok";
    }
    const inactive = await runtime.credentials.authenticate(attributes({ headers: bearer("never-issued") }));
    assert.equal(inactive.error?.kind, "unauthenticated");
  });
});

describe("credentials stage: OIDC discovery refused for a mismatching issuer", () => {
  it("keeps the provider unavailable: requests needing it get a 503-class error and readiness says why", async () => {
    const idp = await startIdp();
    idp.issuer = "https://someone-else.example.com/";
    const configured = `${idp.url}/`;
    const runtime = buildTestRuntime(
      `${policyYaml({ providers: { jwt: [jwtProvider({ issuer: configured, algorithms: ["ES256"], jwks: { discovery: true } })] } }).trimEnd()}
  rules:
    - name: any-user
      match: { paths: ["/**"] }
      require: { user: true }
`,
      [],
      clock,
    );
    try {
      const jwt = idp.sign({ iss: configured, sub: "alice", exp: now + 600 });
      const r = await runtime.credentials.authenticate(attributes({ headers: { authorization: `Bearer ${jwt}` } }));
      assert.equal(r.error?.kind, "unavailable");
      const status = runtime.credentials.status();
      assert.equal(status.ready, false);
      assert.match(status.detail ?? "", /discovery issuer mismatch/);
    } finally {
      runtime.credentials.close();
      await idp.close();
    }
  });
});
