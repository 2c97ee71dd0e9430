// Dependency failures not covered by the owners' component tests: a JWKS endpoint slower than its
// timeout seen through Check (bounded latency, 503-class reason, recovery without restart, metrics),
// and Redis flapping several times under the quota lease API of the full server (503 then recovery
// each time, metrics follow). Latency figures are printed for the report, not asserted.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Registry } from "prom-client";
import { jwksKeySourceFactory } from "../../authz-server/src/credentials/jwks.js";
import { createLogger } from "../../authz-server/src/observability/logger.js";
import { PolicyHolder } from "../../authz-server/src/policy-holder.js";
import { createQuotaService, type QuotaService } from "../../authz-server/src/quota/index.js";
import { createAuthzServer, type AuthzServer } from "../../authz-server/src/server.js";
import { checkRequest, startHarness, type Harness } from "../../tools/testing/authz-harness.js";
import { newKey, signJwt, type TestKey } from "../../tools/testing/tokens.js";
import { requireRedis, startRedis, type RedisProcess } from "../../tools/testing/redis.js";
import { jwtPolicy, writePolicyFile, type PolicyFile } from "../../tools/testing/policy.js";
import { systemClock } from "../../authz-server/src/clock.js";

const ISS = "https://idp.deps.test/";

/** A JWKS endpoint whose response delay the test sets. */
async function startSlowJwks(keys: () => object[]): Promise<{ url: string; delayMs: number; hits: number; stop(): Promise<void> }> {
  const state = { url: "", delayMs: 0, hits: 0, stop: async () => {} };
  const server: Server = createServer((_req, res) => {
    state.hits++;
    setTimeout(() => {
      if (!res.writableEnded && !res.destroyed) res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: keys() }));
    }, state.delayMs);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  state.stop = () => new Promise<void>((resolve) => (server.close(() => resolve()), server.closeAllConnections()));
  return state;
}

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

async function eventually(cond: () => Promise<boolean>, ms: number, what: string): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < ms) {
    if (await cond()) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`not within ${ms} ms: ${what}`);
}

describe("hardening: dependency failures", function () {
  this.timeout(60_000);

  describe("JWKS endpoint slower than its timeout (300 ms)", () => {
    let rsa: TestKey;
    let jwks: Awaited<ReturnType<typeof startSlowJwks>>;
    let h: Harness;

    before(async () => {
      rsa = newKey("RS256");
      jwks = await startSlowJwks(() => [rsa.jwk]);
      jwks.delayMs = 3_000;
      h = await startHarness(jwtPolicy({ issuer: ISS, jwks: { uri: jwks.url, timeout: "300ms" } }, `
  rules:
    - name: api
      match: { paths: ["/api/**"] }
      require: { user: true }
`));
    });
    after(async () => {
      await h?.stop();
      await jwks?.stop();
    });

    it("answers UNAVAILABLE / 503 keys_unavailable within bounded time, reports it on /readyz and /metrics, and recovers without a restart", async () => {
      const now = Math.floor(h.clock.now() / 1000);
      const token = () => signJwt(rsa, { iss: ISS, sub: "u", exp: now + 600, jti: String(Math.random()) });
      const latencies: number[] = [];
      for (let i = 0; i < 10; i++) {
        const t = performance.now();
        const r = await h.check(checkRequest({ path: "/api/x", headers: { authorization: `Bearer ${token()}` } }));
        latencies.push(performance.now() - t);
        assert.equal(r.allowed, false);
        assert.equal(r.status, 503, r.reason);
        assert.equal(r.grpcCode, 14, "gRPC UNAVAILABLE");
        assert.equal(r.reason, "keys_unavailable");
      }
      const ready = await h.http("/readyz");
      assert.equal(ready.status, 503);
      assert.match(ready.text, /not ready/);
      const metrics = (await h.http("/metrics")).text;
      assert.match(metrics, /meshward_jwks_fetch_failures_total\{[^}]*\} [1-9]/);
      assert.match(metrics, /meshward_authz_decisions_total\{result="unavailable",reason="keys_unavailable"\} [1-9]/);

      jwks.delayMs = 0;
      const recoveryMs = await eventually(async () => (await h.check(checkRequest({ path: "/api/x", headers: { authorization: `Bearer ${token()}` } }))).allowed, 30_000, "allowed again after the JWKS endpoint recovered");
      assert.equal((await h.http("/readyz")).status, 200);
      console.log(`      JWKS slow: deny latency p50 ${percentile(latencies, 50).toFixed(0)} ms, max ${Math.max(...latencies).toFixed(0)} ms (timeout 300 ms); recovery ${recoveryMs} ms after the endpoint was fast again`);
    });
  });

  describe("Redis flapping under the quota lease API of the full server", () => {
    let redis: RedisProcess;
    let quota: QuotaService;
    let server: AuthzServer;
    let holder: PolicyHolder;
    let httpPort: number;
    let registry: Registry;
    let policy: PolicyFile | undefined;

    before(async function () {
      requireRedis(this);
      redis = await startRedis();
      policy = writePolicyFile(`
apiVersion: meshward.io/v1
kind: AuthzPolicy
spec:
  rules:
    - { name: open, match: { paths: ["/**"] }, allow: anonymous }
  rateLimits:
    - { domain: edge, name: per-user, capacity: 1000000, refillPerSecond: 1000 }
`);
      registry = new Registry();
      const logger = createLogger("silent");
      holder = new PolicyHolder({ file: policy.file, clock: systemClock, registry, logger, createKeySource: jwksKeySourceFactory });
      const runtime = holder.load();
      quota = createQuotaService({ limits: runtime.policy.rateLimits, redisUrl: redis.url, redisCommandTimeoutMs: 300, logger, registry });
      server = createAuthzServer({ holder, logger, registry, clock: systemClock, quota, grpcAddress: "127.0.0.1:0", httpAddress: "127.0.0.1:0" });
      ({ httpPort } = await server.start());
      await eventually(async () => (await quota.ready()).ok, 10_000, "quota ready");
    });
    after(async () => {
      await server?.stop(500);
      await quota?.close();
      holder?.close();
      await redis?.stop();
      policy?.remove();
    });

    const lease = async (): Promise<{ status: number; ms: number }> => {
      const t = performance.now();
      const res = await fetch(`http://127.0.0.1:${httpPort}/v1/quota/lease`, { method: "POST", body: JSON.stringify({ domain: "edge", limit: "per-user", key: "alice", want: 1 }) });
      await res.arrayBuffer();
      return { status: res.status, ms: performance.now() - t };
    };
    const redisUp = async () => (await registry.getSingleMetric("meshward_quota_redis_up")?.get())?.values[0]?.value;

    it("answers 503 while Redis is down and 200 again after each of 3 outages, with redis_up following, and never hangs", async () => {
      const faultLatencies: number[] = [];
      const recoveries: number[] = [];
      for (let cycle = 0; cycle < 3; cycle++) {
        assert.equal((await lease()).status, 200, `cycle ${cycle}: healthy`);
        await redis.stop(cycle % 2 === 1);
        for (let i = 0; i < 5; i++) {
          const r = await lease();
          faultLatencies.push(r.ms);
          assert.equal(r.status, 503, `cycle ${cycle}: Redis down`);
        }
        assert.equal(await redisUp(), 0);
        const ready = await fetch(`http://127.0.0.1:${httpPort}/readyz`);
        assert.equal(ready.status, 503);
        await ready.arrayBuffer();
        const restarted = Date.now();
        await redis.start();
        await eventually(async () => (await lease()).status === 200, 15_000, `cycle ${cycle}: recovered`);
        recoveries.push(Date.now() - restarted);
        assert.equal(await redisUp(), 1);
      }
      const rejected = await registry.getSingleMetric("meshward_quota_leases_total")?.get();
      assert.ok(rejected?.values.some((v) => v.labels.outcome === "error" && v.value > 0), `lease metrics record the failures: ${JSON.stringify(rejected?.values)}`);
      console.log(`      Redis flapping: 503 latency p99 ${percentile(faultLatencies, 99).toFixed(0)} ms, max ${Math.max(...faultLatencies).toFixed(0)} ms; recovery after restart ${recoveries.join(" / ")} ms`);
    });
  });
});
