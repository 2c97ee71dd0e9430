// Component tests: envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit over real gRPC on
// loopback, answering from the quota buckets (in-memory with an injected clock; Redis for outages).
import assert from "node:assert/strict";
import { credentials, Server, ServerCredentials, status, type Client, type ServiceError } from "@grpc/grpc-js";
import { Registry } from "prom-client";
import { grpcClients, rateLimitService } from "../../../authz-server/src/grpc/protos.js";
import type { QuotaService } from "../../../authz-server/src/quota/contract.js";
import { createQuotaService } from "../../../authz-server/src/quota/index.js";
import { requireRedis, startRedis, type RedisProcess } from "../../../tools/testing/redis.js";
import { capturingLogger, eventually, serveQuotaHttp } from "./harness.js";

type Entry = { key: string; value: string };
interface RlsClient extends Client {
  ShouldRateLimit(req: unknown, cb: (err: ServiceError | null, res: any) => void): void;
}

async function serveRls(quota: QuotaService): Promise<{ client: RlsClient; close(): Promise<void> }> {
  const server = new Server();
  server.addService(rateLimitService(), quota.rateLimitService);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const Ctor = grpcClients().RateLimitService as unknown as new (addr: string, creds: ReturnType<typeof credentials.createInsecure>) => RlsClient;
  const client = new Ctor(`127.0.0.1:${port}`, credentials.createInsecure());
  return {
    client,
    close: async () => {
      client.close();
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    },
  };
}

function call(client: RlsClient, domain: string, descriptors: Entry[][], hitsAddend?: number): Promise<any> {
  return new Promise((resolve, reject) =>
    client.ShouldRateLimit(
      { domain, descriptors: descriptors.map((entries) => ({ entries })), ...(hitsAddend !== undefined ? { hitsAddend } : {}) },
      (err, res) => (err ? reject(err) : resolve(res)),
    ),
  );
}

const headerMap = (res: any): Record<string, string> => Object.fromEntries((res.responseHeadersToAdd ?? []).map((h: Entry) => [h.key, h.value]));

describe("RateLimitService/ShouldRateLimit over gRPC (in-memory buckets)", () => {
  let now = 0;
  let quota: QuotaService;
  let rls: Awaited<ReturnType<typeof serveRls>>;
  const log = capturingLogger();

  before(async () => {
    quota = createQuotaService({
      limits: [
        { domain: "edge", name: "remote_address", capacity: 3, refillPerSecond: 1 },
        { domain: "edge", name: "per-user", capacity: 2, refillPerSecond: 0.5 },
        { domain: "edge", name: "per-tenant", capacity: 100, refillPerSecond: 100 },
        { domain: "edge", name: "once", capacity: 1, refillPerSecond: 0 },
      ],
      logger: log.logger,
      registry: new Registry(),
      clock: () => now,
    });
    rls = await serveRls(quota);
  });

  after(async () => {
    await rls?.close();
    await quota?.close();
  });

  it("names the limit by the descriptor's first key and reports current_limit, limit_remaining and duration_until_reset", async () => {
    const res = await call(rls.client, "edge", [[{ key: "remote_address", value: "10.0.0.1" }]]);
    assert.equal(res.overallCode, "OK");
    assert.equal(res.statuses.length, 1);
    const s = res.statuses[0];
    assert.equal(s.code, "OK");
    assert.deepEqual(s.currentLimit, { name: "remote_address", requestsPerUnit: 1, unit: "SECOND" });
    assert.equal(s.limitRemaining, 2);
    assert.deepEqual(s.durationUntilReset, { seconds: "1", nanos: 0 });
    assert.deepEqual(res.responseHeadersToAdd ?? [], []);
  });

  it("answers OVER_LIMIT with RateLimit-Policy, RateLimit and Retry-After headers once the bucket is empty", async () => {
    const d = [[{ key: "remote_address", value: "10.0.0.2" }]];
    for (let i = 0; i < 3; i++) assert.equal((await call(rls.client, "edge", d)).overallCode, "OK");
    const over = await call(rls.client, "edge", d);
    assert.equal(over.overallCode, "OVER_LIMIT");
    assert.equal(over.statuses[0].code, "OVER_LIMIT");
    assert.equal(over.statuses[0].limitRemaining ?? 0, 0);
    assert.deepEqual(headerMap(over), {
      "ratelimit-policy": '"remote_address";q=3;w=3',
      ratelimit: '"remote_address";r=0;t=3',
      "retry-after": "1",
    });
    now += 1000;
    assert.equal((await call(rls.client, "edge", d)).overallCode, "OK");
  });

  it("maps a leading generic_key to the limit it names and reports a sub-1/s refill per MINUTE", async () => {
    const d = [[{ key: "generic_key", value: "per-user" }, { key: "user", value: "alice" }]];
    const res = await call(rls.client, "edge", d);
    assert.deepEqual(res.statuses[0].currentLimit, { name: "per-user", requestsPerUnit: 30, unit: "MINUTE" });
    assert.equal(res.statuses[0].limitRemaining, 1);
  });

  it("maps an entry with key `limit` to the limit it names; the other values are the bucket key", async () => {
    const acme = [[{ key: "tenant", value: "acme" }, { key: "limit", value: "per-tenant" }]];
    const globex = [[{ key: "tenant", value: "globex" }, { key: "limit", value: "per-tenant" }]];
    assert.equal((await call(rls.client, "edge", acme, 100)).overallCode, "OK");
    assert.equal((await call(rls.client, "edge", acme)).overallCode, "OVER_LIMIT");
    assert.equal((await call(rls.client, "edge", globex)).overallCode, "OK");
  });

  it("charges hits_addend tokens all or nothing, and omits Retry-After when hits_addend exceeds the capacity", async () => {
    const d = [[{ key: "generic_key", value: "per-user" }, { key: "user", value: "bob" }]];
    const two = await call(rls.client, "edge", d, 2);
    assert.deepEqual([two.overallCode, two.statuses[0].limitRemaining ?? 0], ["OK", 0]);
    const more = await call(rls.client, "edge", d, 1);
    assert.equal(more.overallCode, "OVER_LIMIT");
    assert.equal(headerMap(more)["retry-after"], "2");
    const carol = [[{ key: "generic_key", value: "per-user" }, { key: "user", value: "carol" }]];
    const tooMany = await call(rls.client, "edge", carol, 3);
    assert.equal(tooMany.overallCode, "OVER_LIMIT");
    assert.equal(headerMap(tooMany)["retry-after"], undefined);
    assert.equal((await call(rls.client, "edge", carol, 2)).overallCode, "OK", "a refused request charged nothing");
  });

  it("reports OVER_LIMIT overall when one of several descriptors is over, with statuses in request order", async () => {
    const res = await call(rls.client, "edge", [
      [{ key: "generic_key", value: "once" }],
      [{ key: "remote_address", value: "10.9.9.9" }],
      [{ key: "generic_key", value: "once" }],
      [{ key: "no_such_limit", value: "x" }],
    ]);
    assert.equal(res.overallCode, "OVER_LIMIT");
    assert.deepEqual(res.statuses.map((s: any) => s.code), ["OK", "OK", "OVER_LIMIT", "OK"]);
    assert.equal(res.statuses[3].currentLimit, undefined);
    assert.deepEqual(res.statuses[0].currentLimit, { name: "once", requestsPerUnit: 1, unit: "DAY" });
    const h = headerMap(res);
    assert.equal(h["retry-after"], undefined, "a limit that never refills has no retry time");
    assert.equal(h["ratelimit-policy"], '"once";q=1, "remote_address";q=3;w=3, "once";q=1');
  });

  it("answers OK without limits for an unknown domain, as envoyproxy/ratelimit does, and logs it once", async () => {
    for (let i = 0; i < 3; i++) {
      const res = await call(rls.client, "unknown-domain", [[{ key: "remote_address", value: "10.0.0.1" }]]);
      assert.equal(res.overallCode, "OK");
      assert.deepEqual(res.statuses, [{ code: "OK" }]);
    }
    assert.equal(log.lines().filter((l) => l.domain === "unknown-domain").length, 1);
  });

  it("refuses more than 64 descriptors or more than 16 entries in one with INVALID_ARGUMENT, charging nothing", async () => {
    const many = Array.from({ length: 65 }, (_, i) => [{ key: "remote_address", value: `10.1.0.${i}` }]);
    await assert.rejects(call(rls.client, "edge", many), (err: ServiceError) => err.code === status.INVALID_ARGUMENT);
    const wide = Array.from({ length: 17 }, (_, i) => ({ key: i === 0 ? "remote_address" : `k${i}`, value: "v" }));
    const victim = [{ key: "remote_address", value: "10.2.0.1" }];
    await assert.rejects(call(rls.client, "edge", [victim, wide]), (err: ServiceError) => err.code === status.INVALID_ARGUMENT && /ERR_QUOTA_RLS_REQUEST_INVALID/.test(err.details));
    assert.equal((await call(rls.client, "edge", [victim])).statuses[0].limitRemaining, 2, "the valid descriptor was not charged");
  });
});

describe("RateLimitService/ShouldRateLimit over gRPC with Redis", () => {
  let redis: RedisProcess;
  let quota: QuotaService;
  let rls: Awaited<ReturnType<typeof serveRls>>;

  before(async function () {
    requireRedis(this);
    redis = await startRedis();
    quota = createQuotaService({
      limits: [{ domain: "edge", name: "remote_address", capacity: 5, refillPerSecond: 0.001 }],
      redisUrl: redis.url,
      redisCommandTimeoutMs: 1000,
      logger: capturingLogger().logger,
      registry: new Registry(),
    });
    rls = await serveRls(quota);
    await eventually(async () => (await quota.ready()).ok, 5000, "quota ready");
  });

  after(async () => {
    await rls?.close();
    await quota?.close();
    await redis?.stop();
  });

  it("answers from the same Redis buckets as the lease API: a lease of 3 of 5 tokens leaves 2 for RLS", async () => {
    const http = await serveQuotaHttp(quota);
    try {
      const res = await fetch(`${http.url}/v1/quota/lease`, {
        method: "POST",
        body: JSON.stringify({ domain: "edge", limit: "remote_address", key: "10.0.0.1", want: 3 }),
      });
      assert.equal(((await res.json()) as { granted: number }).granted, 3);
    } finally {
      await http.close();
    }
    const d = [[{ key: "remote_address", value: "10.0.0.1" }]];
    const codes: string[] = [];
    for (let i = 0; i < 3; i++) codes.push((await call(rls.client, "edge", d)).overallCode);
    assert.deepEqual(codes, ["OK", "OK", "OVER_LIMIT"]);
  });

  it("answers gRPC UNAVAILABLE while Redis is down, so Envoy's failure_mode_deny decides", async () => {
    await redis.stop();
    try {
      await assert.rejects(call(rls.client, "edge", [[{ key: "remote_address", value: "10.0.0.2" }]]), (err: ServiceError) => {
        assert.equal(err.code, status.UNAVAILABLE);
        assert.match(err.details, /ERR_QUOTA_STORE_UNAVAILABLE/);
        return true;
      });
    } finally {
      await redis.start();
    }
    await eventually(async () => (await quota.ready()).ok, 10_000, "quota ready again");
    assert.equal((await call(rls.client, "edge", [[{ key: "remote_address", value: "10.0.0.2" }]])).overallCode, "OK");
  });
});
