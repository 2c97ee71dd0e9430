// Revocation: the denylist stores (memory, Redis with pub/sub), the admin listener, and the check that
// refuses revoked tokens even when the verified-token cache holds them.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { resolveAdminConfig } from "../../../authz-server/src/admin/admin-config.js";
import { createAdminServer, type AdminServer } from "../../../authz-server/src/admin/admin-server.js";
import { pino } from "pino";
import { Registry } from "prom-client";
import { openStores, wireProcess } from "../../../authz-server/src/wiring.js";
import { MemoryRevocationStore, RedisRevocationStore, revocationPlugin } from "../../../authz-server/src/credentials/revocation.js";
import type { UserIdentity } from "../../../authz-server/src/model.js";
import { requireRedis, startRedis, type RedisProcess } from "../../../tools/testing/redis.js";
import { attributes } from "./fixtures/attributes.js";
import { newKey, signJwt } from "./fixtures/idp-server.js";
import { buildTestRuntime, jwtPolicy } from "./fixtures/runtime.js";

const ADMIN_TOKEN = "admin-secret-0123456789abcdef";

function user(subject: string, jti?: string, provider = "corp"): UserIdentity {
  return { kind: "user", provider, providerType: "jwt", subject, claims: jti ? { jti } : {}, roles: [], scopes: [] };
}

describe("credentials/revocation: the in-memory denylist", () => {
  it("refuses a revoked jti or subject until the TTL passes, optionally only for one provider", async () => {
    let t = 0;
    const store = new MemoryRevocationStore(() => t);
    await store.revoke("jti", "j-1", 60_000);
    await store.revoke("sub", "mallory", 10_000, "corp");
    assert.equal(store.isRevoked(user("alice", "j-1"))?.kind, "jti");
    assert.equal(store.isRevoked(user("alice", "j-2")), undefined);
    assert.equal(store.isRevoked(user("mallory"))?.kind, "sub");
    assert.equal(store.isRevoked(user("mallory", undefined, "partners")), undefined, "scoped to provider corp");
    t = 10_000;
    assert.equal(store.isRevoked(user("mallory")), undefined, "expired");
    assert.equal(await store.unrevoke("jti", "j-1"), true);
    assert.equal(store.isRevoked(user("alice", "j-1")), undefined);
    assert.equal(await store.unrevoke("jti", "j-1"), false);
  });

  it("bounds the number of entries", async () => {
    const store = new MemoryRevocationStore(() => 0, 3);
    for (const j of ["a", "b", "c"]) await store.revoke("jti", j, 1000);
    await assert.rejects(store.revoke("jti", "d", 1000), /revocation list is full/);
  });
});

describe("admin listener: /v1/revocations behind a bearer secret", () => {
  let admin: AdminServer;
  let base: string;
  const store = new MemoryRevocationStore();
  before(async () => {
    admin = createAdminServer({ store, token: ADMIN_TOKEN });
    base = `http://127.0.0.1:${(await admin.listen("127.0.0.1", 0)).port}/v1/revocations`;
  });
  after(() => admin.close());
  const call = (method: string, init: { body?: unknown; token?: string | null; query?: string } = {}) =>
    fetch(`${base}${init.query ?? ""}`, {
      method,
      headers: { ...(init.token === null ? {} : { authorization: `Bearer ${init.token ?? ADMIN_TOKEN}` }), "content-type": "application/json" },
      ...(init.body !== undefined ? { body: typeof init.body === "string" ? init.body : JSON.stringify(init.body) } : {}),
    });

  it("answers 401 with a Bearer challenge without the secret or with a wrong one, and changes nothing", async () => {
    const none = await call("POST", { token: null, body: { jti: "x", ttlSeconds: 60 } });
    assert.equal(none.status, 401);
    assert.match(none.headers.get("www-authenticate") ?? "", /^Bearer/);
    const wrong = await call("POST", { token: "admin-secret-0123456789abcdeX", body: { jti: "x", ttlSeconds: 60 } });
    assert.equal(wrong.status, 401);
    assert.equal((await call("GET", { token: "short" })).status, 401);
    assert.equal(store.isRevoked(user("a", "x")), undefined);
  });

  it("creates, lists and deletes revocations", async () => {
    const created = await call("POST", { body: { jti: "tok-1", ttlSeconds: 300 } });
    assert.equal(created.status, 201);
    const body = (await created.json()) as { jti: string; expiresAt: string };
    assert.equal(body.jti, "tok-1");
    assert.ok(Date.parse(body.expiresAt) > Date.now() + 290_000);
    assert.equal((await call("POST", { body: { sub: "mallory", ttlSeconds: 60, provider: "corp" } })).status, 201);
    const list = (await (await call("GET")).json()) as { revocations: Record<string, unknown>[]; truncated: boolean };
    assert.deepEqual(list.revocations.map((r) => r.jti ?? r.sub).sort(), ["mallory", "tok-1"]);
    assert.equal(list.truncated, false);
    assert.equal((await call("DELETE", { query: "?jti=tok-1" })).status, 204);
    assert.equal((await call("DELETE", { query: "?jti=tok-1" })).status, 404);
    assert.equal((await call("DELETE", { query: "?sub=mallory&provider=corp" })).status, 204);
  });

  it("refuses malformed requests with 400 and a reason", async () => {
    const cases: [unknown, RegExp][] = [
      ["{not json", /not JSON/],
      [{ jti: "a", sub: "b", ttlSeconds: 60 }, /exactly one of 'jti' or 'sub'/],
      [{ jti: "a" }, /ttlSeconds/],
      [{ jti: "a", ttlSeconds: 0 }, /ttlSeconds/],
      [{ jti: "a", ttlSeconds: 1.5 }, /ttlSeconds/],
      [{ jti: "a", ttlSeconds: 60, reason: "x" }, /unknown key 'reason'/],
      [{ jti: "x".repeat(1025), ttlSeconds: 60 }, /at most 1024/],
      [{ jti: "a".repeat(20_000), ttlSeconds: 60 }, /larger than 16384 bytes/],
    ];
    for (const [body, detail] of cases) {
      const r = await call("POST", { body });
      assert.equal(r.status, 400, JSON.stringify(body).slice(0, 40));
      assert.match(((await r.json()) as { detail: string }).detail, detail);
    }
    assert.equal((await call("DELETE", { query: "?kid=x" })).status, 400);
    assert.equal((await call("PUT")).status, 405);
  });

  it("refuses to start without a secret of at least 16 characters", () => {
    assert.throws(() => createAdminServer({ store, token: "short" }), /at least 16/);
  });
});

describe("admin listener configuration: --admin-addr, --admin-token-file, MESHWARD_ADMIN_TOKEN", () => {
  it("is disabled without --admin-addr", () => {
    assert.equal(resolveAdminConfig({}, {}), undefined);
  });
  it("refuses --admin-addr without a secret", () => {
    assert.throws(() => resolveAdminConfig({ adminAddr: "127.0.0.1:9901" }, {}), /refusing to start the admin listener without one/);
    assert.throws(() => resolveAdminConfig({ adminAddr: "127.0.0.1:9901" }, { MESHWARD_ADMIN_TOKEN: "short" }), /at least 16/);
    assert.throws(() => resolveAdminConfig({ adminAddr: "nonsense" }, { MESHWARD_ADMIN_TOKEN: ADMIN_TOKEN }), /--admin-addr: invalid address/);
    assert.throws(() => resolveAdminConfig({ adminTokenFile: "/x" }, {}), /--admin-addr is not/);
  });
  it("reads the secret from a file (trimmed) or the environment", () => {
    const f = join(mkdtempSync(join(tmpdir(), "meshward-admin-")), "token");
    writeFileSync(f, `${ADMIN_TOKEN}\n`);
    assert.deepEqual(resolveAdminConfig({ adminAddr: "127.0.0.1:9901", adminTokenFile: f }, {}), { host: "127.0.0.1", port: 9901, token: ADMIN_TOKEN });
    assert.deepEqual(resolveAdminConfig({ adminAddr: "[::1]:0" }, { MESHWARD_ADMIN_TOKEN: ADMIN_TOKEN }), { host: "::1", port: 0, token: ADMIN_TOKEN });
  });
});

describe("credentials/revocation: through the credentials stage", () => {
  it("refuses a revoked token on the very next request although the verified-token cache holds it, and accepts it again once un-revoked", async () => {
    const key = newKey("ES256");
    const issuer = "https://idp.example.com/";
    const store = new MemoryRevocationStore();
    const runtime = buildTestRuntime(jwtPolicy(issuer, [key.jwk]), [revocationPlugin(store)]);
    const admin = createAdminServer({ store, token: ADMIN_TOKEN });
    const { port } = await admin.listen("127.0.0.1", 0);
    try {
      const now = Math.floor(Date.now() / 1000);
      const token = signJwt({ iss: issuer, sub: "alice", jti: "jti-42", exp: now + 600 }, key);
      const req = attributes({ headers: { authorization: `Bearer ${token}` } });
      assert.equal((await runtime.credentials.authenticate(req)).user?.subject, "alice");
      assert.equal((await runtime.credentials.authenticate(req)).user?.subject, "alice", "second request is a cache hit");
      const post = await fetch(`http://127.0.0.1:${port}/v1/revocations`, { method: "POST", headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, body: JSON.stringify({ jti: "jti-42", ttlSeconds: 600 }) });
      assert.equal(post.status, 201);
      const refused = await runtime.credentials.authenticate(req);
      assert.equal(refused.user, undefined);
      assert.equal(refused.error?.reason, "token_revoked");
      assert.equal(refused.error?.kind, "unauthenticated");
      const other = signJwt({ iss: issuer, sub: "alice", jti: "jti-43", exp: now + 600 }, key);
      assert.equal((await runtime.credentials.authenticate(attributes({ headers: { authorization: `Bearer ${other}` } }))).user?.subject, "alice");
      assert.equal((await fetch(`http://127.0.0.1:${port}/v1/revocations?jti=jti-42`, { method: "DELETE", headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).status, 204);
      assert.equal((await runtime.credentials.authenticate(req)).user?.subject, "alice");
    } finally {
      await admin.close();
      runtime.credentials.close();
    }
  });
});

describe("credentials/revocation: shared through a real redis-server", function () {
  let redis: RedisProcess;
  const conns: Redis[] = [];
  const stores: RedisRevocationStore[] = [];
  before(async function () {
    requireRedis(this);
    redis = await startRedis();
  });
  after(async () => {
    await redis?.stop();
  });
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
    for (const c of conns.splice(0)) c.disconnect();
  });
  const replica = async (): Promise<RedisRevocationStore> => {
    const mk = () => {
      const c = new Redis(redis.url, { maxRetriesPerRequest: 0, commandTimeout: 500 });
      c.on("error", () => undefined);
      conns.push(c);
      return c;
    };
    const s = new RedisRevocationStore({ client: mk(), subscriber: mk(), resyncMs: 60_000 });
    await s.start();
    stores.push(s);
    return s;
  };
  const eventually = async (cond: () => boolean, what: string): Promise<void> => {
    for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(cond(), what);
  };

  it("propagates a revocation and its removal from one replica to another, and a new replica loads existing entries", async () => {
    const a = await replica();
    const b = await replica();
    await a.revoke("jti", "shared-1", 60_000);
    assert.ok(a.isRevoked(user("x", "shared-1")), "immediate on the writing replica");
    await eventually(() => b.isRevoked(user("x", "shared-1")) !== undefined, "replica b sees the revocation");
    const c = await replica();
    assert.ok(c.isRevoked(user("x", "shared-1")), "loaded at start");
    assert.equal(await b.unrevoke("jti", "shared-1"), true);
    await eventually(() => a.isRevoked(user("x", "shared-1")) === undefined && c.isRevoked(user("x", "shared-1")) === undefined, "removal propagates");
  });

  it("lets Redis expire entries (PX) and keeps answering from memory while Redis is down, refusing new writes", async () => {
    const a = await replica();
    await a.revoke("sub", "eve", 60_000);
    await a.revoke("sub", "brief", 50);
    await new Promise((r) => setTimeout(r, 120));
    await a.resync();
    assert.equal(a.isRevoked(user("brief")), undefined);
    assert.ok(a.isRevoked(user("eve")));
    await redis.stop();
    try {
      assert.ok(a.isRevoked(user("eve")), "the hot path needs no Redis");
      await assert.rejects(a.revoke("sub", "zed", 1000), /redis/);
    } finally {
      await redis.start();
    }
  });

  it("wires the process: a revocation posted to replica A's admin listener is refused by replica B's check (one Redis client factory)", async () => {
    const logger = pino({ level: "silent" });
    const env = { MESHWARD_ADMIN_TOKEN: ADMIN_TOKEN };
    const dir = mkdtempSync(join(tmpdir(), "meshward-wiring-"));
    const policyFile = join(dir, "policy.yaml");
    writeFileSync(policyFile, "apiVersion: meshward.io/v1\nkind: AuthzPolicy\nspec:\n  rules: []\n");
    const common = { policyFile, grpcAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", redisUrl: redis.url, env, logger, clock: { now: () => Date.now() } };
    const a = await wireProcess({ ...common, adminAddr: "127.0.0.1:0", registry: new Registry() });
    const b = await wireProcess({ ...common, registry: new Registry() });
    try {
      const aPorts = await a.start();
      const bPorts = await b.start();
      assert.equal(bPorts.adminPort, undefined, "no admin listener without --admin-addr");
      assert.ok(a.stores.redis && a.stores.introspectionCache, "the Redis client is shared by quota, introspection cache and revocations");
      const post = await fetch(`http://127.0.0.1:${aPorts.adminPort}/v1/revocations`, { method: "POST", headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, body: JSON.stringify({ sub: "mallory", ttlSeconds: 60 }) });
      assert.equal(post.status, 201);
      const checks = b.holder.current!.credentials.checks;
      assert.deepEqual(checks.map((c) => c.name), ["revocation", "certificate-bound"], "identity checks in the wiring's one order");
      const check = checks.find((c) => c.name === "revocation")!;
      await eventually(() => b.stores.revocations.isRevoked(user("mallory")) !== undefined, "replica b has the entry");
      await assert.rejects(check.check(user("mallory"), { value: "", location: "" }, attributes({})), /revoked/);
    } finally {
      await a.stop(100);
      await b.stop(100);
    }
  });

  it("opens memory stores without --redis", async () => {
    const stores = await openStores({ logger: pino({ level: "silent" }) });
    assert.equal(stores.redis, undefined);
    assert.ok(stores.revocations instanceof MemoryRevocationStore);
    await stores.close();
  });

  it("refuses an admin listener with several workers and no Redis (a revocation would reach one worker only)", async () => {
    const common = { policyFile: "examples/policy.yaml", grpcAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", logger: pino({ level: "silent" }), registry: new Registry(), clock: { now: () => Date.now() } };
    await assert.rejects(wireProcess({ ...common, adminAddr: "127.0.0.1:0", workers: 2, env: { MESHWARD_ADMIN_TOKEN: ADMIN_TOKEN } }), /needs --redis/);
    await assert.rejects(wireProcess({ ...common, adminAddr: "127.0.0.1:0", env: {} }), /refusing to start the admin listener/);
  });
});
