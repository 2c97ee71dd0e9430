// Component tests of RFC 7662 token introspection against a loopback endpoint and a real redis-server.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { Registry } from "prom-client";
import { AuthzError } from "../../../authz-server/src/errors.js";
import { DEFAULT_INTROSPECTION_OPTIONS, Introspector, readSecretRef, type IntrospectionOptions } from "../../../authz-server/src/credentials/introspection.js";
import { ExpiringLru } from "../../../authz-server/src/credentials/expiring-lru.js";
import { RedisIntrospectionCache } from "../../../authz-server/src/credentials/introspection-cache.js";
import { requireRedis, startRedis, type RedisProcess } from "../../../tools/testing/redis.js";
import { startIntrospectionServer, type IntrospectionServer } from "../../../tools/testing/introspection-server.js";

const CLIENT = { id: "meshward", secret: "s3cr:t+/ x%" };

async function rejectsWith(p: Promise<unknown>, kind: "unauthenticated" | "unavailable", reason: string, detail?: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof AuthzError, `expected an AuthzError, got ${String(err)}`);
    assert.equal(err.kind, kind, err.message);
    assert.equal(err.reason, reason, err.message);
    if (detail) assert.match(err.message, detail);
    return;
  }
  assert.fail(`expected ${kind}/${reason}`);
}

describe("credentials/introspection: RFC 7662 against a loopback endpoint", () => {
  let as: IntrospectionServer;
  let t: number;
  const nowS = (): number => Math.floor(t / 1000);
  const make = (o: Partial<IntrospectionOptions> = {}, registry?: Registry): Introspector =>
    new Introspector(
      { ...DEFAULT_INTROSPECTION_OPTIONS, name: "legacy", endpoint: as.url, clientId: CLIENT.id, clientSecret: CLIENT.secret, allowInsecureHttp: false, rolesClaim: "realm_access.roles", ...o },
      registry ? { now: () => t, registry } : { now: () => t },
    );

  beforeEach(async () => {
    as = await startIntrospectionServer(CLIENT);
    t = 1_700_000_000_000;
  });
  afterEach(() => as.close());

  it("maps an active token to a user identity (sub, roles from the configured claim, scope, exp) using client_secret_basic", async () => {
    as.tokens.set("opaque-1", { sub: "alice", scope: "orders:read orders:write", exp: nowS() + 300, client_id: "web", realm_access: { roles: ["reader"] } });
    const user = await make().introspect("opaque-1");
    assert.equal(as.lastAuth, "basic");
    assert.equal(user.subject, "alice");
    assert.equal(user.provider, "legacy");
    assert.equal(user.providerType, "introspection");
    assert.deepEqual(user.roles, ["reader"]);
    assert.deepEqual(user.scopes, ["orders:read", "orders:write"]);
    assert.equal(user.expiresAt, nowS() + 300);
    assert.equal(user.claims.client_id, "web");
    assert.equal("active" in user.claims, false);
  });

  it("authenticates with client_secret_post, and takes the client as subject when the token has no sub", async () => {
    as.tokens.set("cc-token", { client_id: "batch-job" });
    const user = await make({ auth: "client_secret_post" }).introspect("cc-token");
    assert.equal(as.lastAuth, "post");
    assert.equal(user.subject, "batch-job");
  });

  it("refuses an inactive token as token_inactive (401 class) and caches the negative result briefly", async () => {
    const intro = make({ negativeCacheTtlMs: 5_000 });
    await rejectsWith(intro.introspect("unknown"), "unauthenticated", "token_inactive");
    await rejectsWith(intro.introspect("unknown"), "unauthenticated", "token_inactive");
    assert.equal(as.calls, 1);
    t += 5_001;
    await rejectsWith(intro.introspect("unknown"), "unauthenticated", "token_inactive");
    assert.equal(as.calls, 2);
  });

  it("refuses an active token whose exp has passed as token_expired", async () => {
    as.tokens.set("old", { sub: "bob", exp: nowS() - 120 });
    await rejectsWith(make().introspect("old"), "unauthenticated", "token_expired");
  });

  it("caches an active result until min(exp, cacheTtl), then asks again", async () => {
    as.tokens.set("short", { sub: "carol", exp: nowS() + 20 });
    as.tokens.set("long", { sub: "dave", exp: nowS() + 3_600 });
    const intro = make({ cacheTtlMs: 60_000, clockSkewMs: 0 });
    await intro.introspect("short");
    await intro.introspect("long");
    t += 19_000;
    await intro.introspect("short");
    await intro.introspect("long");
    assert.equal(as.calls, 2, "both served from cache");
    t += 2_000; // past short's exp, within cacheTtl for long
    await rejectsWith(intro.introspect("short"), "unauthenticated", "token_expired");
    await intro.introspect("long");
    assert.equal(as.calls, 3);
    t += 40_000; // past cacheTtl for long
    await intro.introspect("long");
    assert.equal(as.calls, 4);
  });

  it("refuses a token whose aud is not among the configured audiences as invalid_audience", async () => {
    as.tokens.set("aud", { sub: "erin", aud: ["other-api"] });
    await rejectsWith(make({ audiences: ["orders-api"] }).introspect("aud"), "unauthenticated", "invalid_audience");
    as.tokens.set("aud2", { sub: "erin", aud: "orders-api" });
    assert.equal((await make({ audiences: ["orders-api"] }).introspect("aud2")).subject, "erin");
  });

  it("introspects one token once for many concurrent requests (single-flight)", async () => {
    as.tokens.set("hot", { sub: "frank" });
    as.mode = "slow";
    as.slowMs = 100;
    const intro = make();
    const users = await Promise.all(Array.from({ length: 20 }, () => intro.introspect("hot")));
    assert.ok(users.every((u) => u.subject === "frank"));
    assert.equal(as.calls, 1);
  });

  for (const [mode, detail] of [["down", /network/], ["http500", /HTTP 500/], ["garbage", /invalid_json/]] as const) {
    it(`answers introspection_unavailable (503 class, not 401/403) when the endpoint is ${mode}, while cached tokens keep working`, async () => {
      as.tokens.set("cached", { sub: "gina" });
      const intro = make();
      await intro.introspect("cached");
      as.mode = mode;
      await rejectsWith(intro.introspect("new-token"), "unavailable", "introspection_unavailable", detail);
      assert.equal((await intro.introspect("cached")).subject, "gina");
    });
  }

  it("times out a slow endpoint as introspection_unavailable", async () => {
    as.mode = "slow";
    as.slowMs = 1_000;
    await rejectsWith(make({ timeoutMs: 100 }).introspect("x"), "unavailable", "introspection_unavailable", /timeout/);
  });

  it("treats a rejected client secret (401 from the server) as our outage, not the caller's", async () => {
    as.tokens.set("t", { sub: "h" });
    await rejectsWith(make({ clientSecret: "wrong" }).introspect("t"), "unavailable", "introspection_unavailable", /HTTP 401/);
  });

  it("opens the circuit after consecutive failures (no more calls), half-opens after openMs, and closes on a successful trial", async () => {
    const registry = new Registry();
    const intro = make({ breakerFailures: 3, breakerOpenMs: 10_000 }, registry);
    as.mode = "http500";
    for (let i = 0; i < 3; i++) await rejectsWith(intro.introspect(`t${i}`), "unavailable", "introspection_unavailable", /HTTP 500/);
    assert.equal(intro.breakerState, "open");
    assert.match(intro.status().detail ?? "", /circuit open/);
    for (let i = 0; i < 10; i++) await rejectsWith(intro.introspect(`u${i}`), "unavailable", "introspection_unavailable", /circuit open/);
    assert.equal(as.calls, 3, "an open circuit makes no calls");
    assert.match(await registry.metrics(), /meshward_introspection_circuit_state\{provider="legacy"\} 2/);
    t += 10_000;
    assert.equal(intro.breakerState, "half_open");
    await rejectsWith(intro.introspect("trial-1"), "unavailable", "introspection_unavailable", /HTTP 500/);
    assert.equal(intro.breakerState, "open", "a failed trial re-opens at once");
    assert.equal(as.calls, 4);
    t += 10_000;
    as.mode = "ok";
    as.tokens.set("trial-2", { sub: "ivan" });
    assert.equal((await intro.introspect("trial-2")).subject, "ivan");
    assert.equal(intro.breakerState, "closed");
    assert.match(await registry.metrics(), /meshward_introspection_circuit_state\{provider="legacy"\} 0/);
  });

  it("admits a single trial call while half-open", async () => {
    const intro = make({ breakerFailures: 1, breakerOpenMs: 1_000 });
    as.mode = "down";
    await rejectsWith(intro.introspect("a"), "unavailable", "introspection_unavailable");
    t += 1_000;
    as.mode = "slow";
    as.slowMs = 100;
    as.tokens.set("b", { sub: "b" });
    const results = await Promise.allSettled(["b", "c", "d"].map((tok) => intro.introspect(tok)));
    assert.equal(results[0]?.status, "fulfilled");
    assert.deepEqual(results.slice(1).map((r) => r.status === "rejected" && (r.reason as AuthzError).message.includes("circuit")), [true, true]);
    assert.equal(as.calls, 2);
  });

  it("bounds the in-process cache: the least recently used entry is evicted", () => {
    const lru = new ExpiringLru<number>(3);
    for (const k of ["a", "b", "c"]) lru.set(k, 1, 1000);
    assert.equal(lru.get("a", 0), 1);
    lru.set("d", 1, 1000);
    assert.equal(lru.size, 3);
    assert.equal(lru.get("b", 0), undefined);
    assert.equal(lru.get("a", 0), 1);
    assert.equal(lru.get("a", 1000), undefined, "expired");
  });

  it("reads the client secret from a file or an environment variable, naming the policy path when it cannot", () => {
    const dir = mkdtempSync(join(tmpdir(), "meshward-secret-"));
    writeFileSync(join(dir, "s"), "from-file\n");
    assert.equal(readSecretRef({ file: join(dir, "s") }, "policy.yaml", "spec.providers.introspection[0].clientSecret"), "from-file");
    assert.equal(readSecretRef({ env: "MW_TEST_SECRET" }, "policy.yaml", "p", { MW_TEST_SECRET: "from-env" }), "from-env");
    assert.throws(() => readSecretRef({ env: "MW_NOPE" }, "policy.yaml", "spec.providers.introspection[0].clientSecret", {}), /policy\.yaml: spec\.providers\.introspection\[0\]\.clientSecret\.env: environment variable MW_NOPE is not set/);
    assert.throws(() => readSecretRef({ file: join(dir, "missing") }, "policy.yaml", "x"), /policy\.yaml: x\.file: cannot read secret file: ENOENT/);
  });
});

describe("credentials/introspection: a cache shared by two instances through a real redis-server", function () {
  let redis: RedisProcess;
  let as: IntrospectionServer;
  const clients: Redis[] = [];
  before(async function () {
    requireRedis(this);
    redis = await startRedis();
  });
  after(async () => {
    await redis?.stop();
  });
  beforeEach(async () => {
    as = await startIntrospectionServer(CLIENT);
  });
  afterEach(async () => {
    await as.close();
    for (const c of clients.splice(0)) c.disconnect();
  });
  const instance = (): Introspector => {
    const client = new Redis(redis.url, { maxRetriesPerRequest: 0, commandTimeout: 300 });
    client.on("error", () => undefined);
    clients.push(client);
    return new Introspector(
      { ...DEFAULT_INTROSPECTION_OPTIONS, name: "legacy", endpoint: as.url, clientId: CLIENT.id, clientSecret: CLIENT.secret },
      { sharedCache: new RedisIntrospectionCache(client) },
    );
  };

  it("serves the second instance from Redis: one endpoint call for two instances, and the token is not stored", async () => {
    const token = `opaque-${Date.now()}`;
    as.tokens.set(token, { sub: "judy", scope: "a b", exp: Math.floor(Date.now() / 1000) + 600 });
    const a = instance();
    const b = instance();
    assert.equal((await a.introspect(token)).subject, "judy");
    const fromB = await b.introspect(token);
    assert.equal(fromB.subject, "judy");
    assert.deepEqual(fromB.scopes, ["a", "b"]);
    assert.equal(as.calls, 1);
    const keys = await clients[0]!.keys("meshward:introspection:*");
    assert.equal(keys.length, 1);
    assert.ok(!keys[0]!.includes(token) && !(await clients[0]!.get(keys[0]!))!.includes(token));
    const pttl = await clients[0]!.pttl(keys[0]!);
    assert.ok(pttl > 0 && pttl <= 60_000, `pttl=${pttl}`);
  });

  it("shares negative results too, and keeps answering from the endpoint when Redis is down", async () => {
    const a = instance();
    const b = instance();
    await rejectsWith(a.introspect("inactive-x"), "unauthenticated", "token_inactive");
    await rejectsWith(b.introspect("inactive-x"), "unauthenticated", "token_inactive");
    assert.equal(as.calls, 1);
    await redis.stop();
    try {
      as.tokens.set("while-redis-down", { sub: "kim" });
      assert.equal((await b.introspect("while-redis-down")).subject, "kim");
    } finally {
      await redis.start();
    }
  });
});
