// Secrets never leak: the real main.ts process (real pino logger at trace level) is driven with
// requests carrying planted credentials — JWTs, API keys, opaque tokens, HMAC and introspection
// client secrets, the admin token, cookies — through success and failure paths; its whole stdout/stderr
// and /metrics and /readyz are then searched for every planted value.
import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hashApiKey } from "../../authz-server/src/credentials/api-keys.js";
import { checkRequest } from "../../tools/testing/authz-harness.js";
import { startJwksServer, type JwksServer } from "../../tools/testing/jwks-server.js";
import { newKey, signJwt } from "../../tools/testing/tokens.js";
import { startIntrospectionServer, type IntrospectionServer } from "../../tools/testing/introspection-server.js";
import { startMain, type MainProcess } from "../../tools/testing/main-process.js";
import { RawCheckClient } from "./helpers/raw-check.js";
import { jwtProvider, policyYaml } from "../../tools/testing/policy.js";

const ISS = "https://idp.secrets.test/";
const HS_ISS = "https://hs.secrets.test/";
const plant = (label: string) => `PLANTED${label}${randomBytes(12).toString("hex")}`;

describe("hardening: no planted secret appears in logs, /metrics or /readyz (real main process)", function () {
  this.timeout(60_000);
  const secrets = {
    apiKey: plant("apikey"),
    wrongApiKey: plant("wrongapikey"),
    queryApiKey: plant("queryapikey"),
    opaqueActive: plant("opaqueactive"),
    opaqueInactive: plant("opaqueinactive"),
    introspectionSecret: plant("introsecret"),
    adminToken: plant("admintoken"),
    wrongAdminToken: plant("wrongadmin"),
    hmacSecret: plant("hmacsecret"),
    cookie: plant("cookie"),
    proxyAuth: plant("proxyauth"),
    customClaim: plant("claim"),
  };
  const tokens: string[] = [];
  let dir: string;
  let jwks: JwksServer;
  let introspection: IntrospectionServer;
  let main: MainProcess;
  let raw: RawCheckClient;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "meshward-secrets-"));
    const ec = newKey("ES256");
    jwks = await startJwksServer([ec.jwk]);
    introspection = await startIntrospectionServer({ id: "meshward", secret: secrets.introspectionSecret });
    introspection.tokens.set(secrets.opaqueActive, { sub: "opaque-user", scope: "orders:read" });
    writeFileSync(join(dir, "introspection-secret"), `${secrets.introspectionSecret}\n`);
    writeFileSync(join(dir, "admin-token"), `${secrets.adminToken}\n`);
    writeFileSync(
      join(dir, "policy.yaml"),
      `${policyYaml({ providers: { jwt: [
        jwtProvider({ issuer: ISS, jwks: { uri: jwks.url }, algorithms: ["ES256"] }),
        jwtProvider({ name: "hs", issuer: HS_ISS, algorithms: ["HS256"], secret: { env: "MESHWARD_TEST_HS_SECRET" } }),
      ] } }).trimEnd()}
    introspection:
      - name: legacy
        endpoint: ${introspection.url}
        clientId: meshward
        clientSecret: { file: introspection-secret }
        auth: client_secret_basic
        timeout: 300ms
    apiKeys:
      - name: partners
        from: [{ header: x-api-key }, { query: api_key }]
        keys: [{ id: acme, sha256: "${hashApiKey(secrets.apiKey)}" }]
  rules:
    - name: api
      match: { paths: ["/api/**"] }
      require: { user: true }
`,
    );
    main = await startMain({ policy: join(dir, "policy.yaml"), admin: true, args: ["--log-level", "trace", "--admin-token-file", join(dir, "admin-token")], env: { MESHWARD_TEST_HS_SECRET: secrets.hmacSecret } });
    raw = new RawCheckClient(main.grpcPort);

    const now = Math.floor(Date.now() / 1000);
    const hs = (payload: object, key: string) => {
      const input = `${Buffer.from(JSON.stringify({ alg: "HS256", typ: "JWT" })).toString("base64url")}.${Buffer.from(JSON.stringify(payload)).toString("base64url")}`;
      return `${input}.${createHmac("sha256", key).update(input).digest("base64url")}`;
    };
    tokens.push(
      signJwt(ec, { iss: ISS, sub: "alice", exp: now + 600, secretish: secrets.customClaim }),
      signJwt(ec, { iss: ISS, sub: "alice", exp: now - 600, secretish: secrets.customClaim }),
      signJwt(newKey("ES256", ec.kid), { iss: ISS, sub: "forged", exp: now + 600 }),
      hs({ iss: HS_ISS, sub: "hs-user", exp: now + 600 }, secrets.hmacSecret),
      hs({ iss: HS_ISS, sub: "hs-user", exp: now + 600 }, `${secrets.hmacSecret}x`),
    );
  });

  after(async () => {
    raw?.close();
    await main?.stop();
    await jwks?.stop();
    await introspection?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("drives success and failure paths with planted credentials, then finds none of them in any output", async () => {
    const canaryPath = `/api/canary-${randomBytes(8).toString("hex")}`;
    const check = (headers: Record<string, string>, path = "/api/orders") => raw.send(checkRequest({ path, headers }));
    const answers = [];
    for (const t of tokens) answers.push(await check({ authorization: `Bearer ${t}`, cookie: `session=${secrets.cookie}`, "proxy-authorization": `Basic ${secrets.proxyAuth}` }));
    answers.push(await check({ "x-api-key": secrets.apiKey }, canaryPath));
    answers.push(await check({ "x-api-key": secrets.wrongApiKey }));
    answers.push(await check({}, `/api/orders?api_key=${secrets.queryApiKey}&x=1`));
    answers.push(await check({ authorization: `Bearer ${secrets.opaqueActive}` }));
    answers.push(await check({ authorization: `Bearer ${secrets.opaqueInactive}` }));
    introspection.mode = "http500";
    answers.push(await check({ authorization: `Bearer ${secrets.opaqueInactive}x` }));
    introspection.mode = "down";
    answers.push(await check({ authorization: `Bearer ${secrets.opaqueInactive}y` }));
    introspection.mode = "garbage";
    answers.push(await check({ authorization: `Bearer ${secrets.opaqueInactive}z` }));
    introspection.mode = "ok";
    answers.push(await check({ authorization: `Basic ${Buffer.from(`user:${secrets.proxyAuth}`).toString("base64")}` }));

    // The drive really exercised both outcomes (otherwise the search below proves little).
    const decided = answers.map((a) => `${a.allowed ? "allow" : "deny"}:${a.reason}`);
    assert.equal(answers[0]!.allowed, true, decided.join(" "));
    assert.equal(answers[3]!.allowed, true, `HS256 with the planted secret: ${decided[3]}`);
    assert.equal(answers[5]!.allowed, true, `API key: ${decided[5]}`);
    assert.equal(answers[8]!.allowed, true, `introspected opaque token: ${decided[8]}`);
    assert.ok(answers.filter((a) => !a.allowed).length >= 8, decided.join(" "));
    assert.ok(answers.some((a) => a.status === 503), `an introspection failure answered 503: ${decided.join(" ")}`);

    const admin = (token: string, init: RequestInit = {}) => fetch(`http://127.0.0.1:${main.adminPort}/v1/revocations`, { ...init, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" } });
    assert.equal((await admin(secrets.wrongAdminToken)).status, 401);
    assert.equal((await admin(secrets.adminToken)).status, 200);
    const revoke = await admin(secrets.adminToken, { method: "POST", body: JSON.stringify({ sub: "alice", ttlSeconds: 60 }) });
    assert.ok([200, 201].includes(revoke.status), `revocation accepted: ${revoke.status}`);

    const revoked = await check({ authorization: `Bearer ${tokens[0]}` });
    assert.equal(revoked.allowed, false, "the revoked subject is denied");

    const metrics = await main.http("/metrics");
    assert.equal(metrics.status, 200);
    assert.match(metrics.text, /meshward_authz_decisions_total/);
    const ready = await main.http("/readyz");
    await new Promise((r) => setTimeout(r, 300)); // let pino flush the last lines
    const haystacks = { output: main.output(), metrics: metrics.text, readyz: ready.text };
    assert.match(haystacks.output, /"msg":"decision"/, "decision lines were captured");
    assert.ok(haystacks.output.includes(canaryPath), "the search sees what the server logs (a request path is logged by design)");

    const needles: Record<string, string> = { ...secrets };
    tokens.forEach((t, i) => {
      const [, payload, signature] = t.split(".");
      needles[`token${i}`] = t;
      needles[`token${i}.payload`] = payload!;
      needles[`token${i}.signature`] = signature!;
    });
    needles.basicCredential = Buffer.from(`user:${secrets.proxyAuth}`).toString("base64");
    needles.introspectionBasic = Buffer.from(`meshward:${secrets.introspectionSecret}`).toString("base64");
    const leaks: string[] = [];
    for (const [where, text] of Object.entries(haystacks)) {
      for (const [name, value] of Object.entries(needles)) if (text.includes(value)) leaks.push(`${name} in ${where}`);
      if (/PLANTED[a-z]+[0-9a-f]{6}/.test(text)) leaks.push(`a PLANTED value in ${where}: ${/PLANTED[a-z]+[0-9a-f]*/.exec(text)![0]}`);
    }
    assert.deepEqual(leaks, []);
  });
});
