// Component tests: POST /v1/quota/lease over a real loopback HTTP server, backed by a real
// redis-server (including an outage and a restart) and by the in-memory store with an injected clock.
import assert from "node:assert/strict";
import { request } from "node:http";
import { Redis } from "ioredis";
import { Registry } from "prom-client";
import { createQuotaService } from "../../../authz-server/src/quota/index.js";
import type { QuotaService } from "../../../authz-server/src/quota/contract.js";
import { requireRedis, startRedis, type RedisProcess } from "../../../tools/testing/redis.js";
import { capturingLogger, eventually, serveQuotaHttp } from "./harness.js";

interface Reply {
  status: number;
  headers: Headers;
  body: any;
}

async function post(base: string, body: unknown, path = "/v1/quota/lease", method = "POST", timeoutMs = 3000): Promise<Reply> {
  const res = await fetch(base + path, {
    method,
    headers: { "content-type": "application/json" },
    ...(method === "POST" ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: res.headers.get("content-type") === "application/json" ? JSON.parse(text) : text };
}

const LIMITS = [
  { domain: "edge", name: "per-user", capacity: 100, refillPerSecond: 0.01 },
  { domain: "edge", name: "bulk", capacity: 1_000_000, refillPerSecond: 1000 },
  { domain: "edge", name: "fixed", capacity: 100, refillPerSecond: 0 },
];

describe("quota lease API over HTTP with Redis", () => {
  let redis: RedisProcess;
  let quota: QuotaService;
  let http: Awaited<ReturnType<typeof serveQuotaHttp>>;
  const registry = new Registry();
  const log = capturingLogger();

  before(async function () {
    requireRedis(this);
    redis = await startRedis();
    // A 1 s command timeout (default 300 ms) keeps a loaded CI machine from turning slow answers into 503s.
    quota = createQuotaService({ limits: LIMITS, redisUrl: redis.url, logger: log.logger, registry, leaseTtlMs: 5000, redisCommandTimeoutMs: 1000 });
    http = await serveQuotaHttp(quota);
    await eventually(async () => (await quota.ready()).ok, 5000, "quota ready");
  });

  after(async () => {
    await http?.close();
    await quota?.close();
    await redis?.stop();
  });

  it("grants up to `want`, debits at grant time, and answers granted / expiresInMs / resetInMs", async () => {
    const a = await post(http.url, { domain: "edge", limit: "per-user", key: "alice", want: 30 });
    assert.equal(a.status, 200);
    assert.equal(a.headers.get("content-type"), "application/json");
    assert.deepEqual(Object.keys(a.body).sort(), ["expiresInMs", "granted", "resetInMs", "retryAfterMs"]);
    assert.equal(a.body.granted, 30);
    assert.equal(a.body.expiresInMs, 5000);
    assert.equal(a.body.retryAfterMs, 0);
    assert.ok(a.body.resetInMs > 2_990_000 && a.body.resetInMs <= 3_000_000, `resetInMs ${a.body.resetInMs}`);

    const b = await post(http.url, { domain: "edge", limit: "per-user", key: "alice", want: 1000 });
    assert.deepEqual([b.status, b.body.granted], [200, 70]);
    const c = await post(http.url, { domain: "edge", limit: "per-user", key: "alice", want: 1 });
    assert.deepEqual([c.status, c.body.granted], [200, 0]);
    assert.ok(c.body.retryAfterMs > 90_000, `retryAfterMs ${c.body.retryAfterMs}`);

    const other = await post(http.url, { domain: "edge", limit: "per-user", key: "bob", want: 5 });
    assert.equal(other.body.granted, 5);
  });

  it("grants exactly the capacity in total to 300 concurrent lease calls against a bucket that does not refill", async () => {
    const replies = await Promise.all(Array.from({ length: 300 }, (_, i) => post(http.url, { domain: "edge", limit: "fixed", key: "shared", want: 1 + (i % 3) }, undefined, undefined, 20_000)));
    assert.deepEqual([...new Set(replies.map((r) => r.status))], [200]);
    assert.equal(replies.reduce((n, r) => n + r.body.granted, 0), 100);
  });

  it("answers 404 with a JSON error for an unknown domain or limit", async () => {
    for (const body of [{ domain: "edge", limit: "nope", key: "k", want: 1 }, { domain: "mesh", limit: "per-user", key: "k", want: 1 }]) {
      const r = await post(http.url, body);
      assert.equal(r.status, 404);
      assert.equal(r.body.error.code, "ERR_QUOTA_LIMIT_UNKNOWN");
      assert.match(r.body.error.message, /no rate limit '(nope|per-user)' in domain '(edge|mesh)'/);
    }
  });

  const ok = { domain: "edge", limit: "per-user", key: "k", want: 1 };
  const badRequests: [string, unknown, string][] = [
    ["malformed JSON", "{\"domain\":", "body"],
    ["a JSON array", "[1,2]", "body"],
    ["a JSON string", "\"edge\"", "body"],
    ["a missing domain", { limit: "per-user", key: "k", want: 1 }, "domain"],
    ["an empty limit", { ...ok, limit: "" }, "limit"],
    ["a numeric key", { ...ok, key: 42 }, "key"],
    ["want as a string", { ...ok, want: "5" }, "want"],
    ["want 0", { ...ok, want: 0 }, "want"],
    ["a fractional want", { ...ok, want: 1.5 }, "want"],
    ["want above 1,000,000", { ...ok, want: 1_000_001 }, "want"],
    ["an unknown field", { ...ok, priority: 1 }, "priority"],
  ];
  for (const [what, body, field] of badRequests) {
    it(`answers 400 naming '${field}' for ${what}`, async () => {
      const r = await post(http.url, body);
      assert.equal(r.status, 400);
      assert.equal(r.body.error.code, "ERR_QUOTA_REQUEST_INVALID");
      assert.equal(r.body.error.field, field);
      assert.equal(typeof r.body.error.message, "string");
    });
  }

  it("answers 400 naming 'body' for a body over 8 KiB, declared or chunked, and closes that connection", async () => {
    const big = JSON.stringify({ ...ok, key: "x".repeat(9000) });
    const declared = await post(http.url, big);
    assert.deepEqual([declared.status, declared.body.error.field], [400, "body"]);
    assert.match(declared.body.error.message, /exceeds 8192 bytes/);
    const chunked = await new Promise<{ status: number; body: string; connection: string | undefined }>((resolve, reject) => {
      const req = request(http.url + "/v1/quota/lease", { method: "POST", headers: { "content-type": "application/json" } }, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection }));
      });
      req.on("error", reject);
      req.write(big.slice(0, 5000));
      req.end(big.slice(5000));
    });
    assert.equal(chunked.status, 400);
    assert.equal(JSON.parse(chunked.body).error.field, "body");
    assert.equal(chunked.connection, "close");
  });

  it("answers 405 for other methods, 404 for other quota paths, and leaves other paths to the server", async () => {
    const get = await post(http.url, undefined, "/v1/quota/lease", "GET");
    assert.equal(get.status, 405);
    assert.equal(get.headers.get("allow"), "POST");
    assert.equal((await post(http.url, ok, "/v1/quota/other")).status, 404);
    assert.equal((await post(http.url, ok, "/v1/quotas")).status, 418);
    assert.equal((await post(http.url, ok, "/healthz", "GET")).status, 418);
  });

  it("labels metrics by domain and limit only, never by the client's key", async () => {
    await post(http.url, { domain: "edge", limit: "bulk", key: "secret-client-key-zq", want: 1 });
    const text = await registry.metrics();
    assert.match(text, /meshward_quota_leases_total\{api="http",domain="edge",limit="bulk",outcome="granted"\} [1-9]/);
    assert.match(text, /meshward_quota_tokens_granted_total\{domain="edge",limit="bulk"\} [1-9]/);
    assert.match(text, /meshward_quota_store_duration_seconds_count\{store="redis",outcome="ok"\} [1-9]/);
    assert.match(text, /meshward_quota_redis_up 1/);
    assert.ok(!text.includes("secret-client-key-zq"));
  });

  it("answers 503 ERR_QUOTA_STORE_UNAVAILABLE while Redis is down (metric, log line, /readyz detail), and recovers by itself", async () => {
    await redis.stop();
    try {
      const r = await post(http.url, { domain: "edge", limit: "bulk", key: "k", want: 1 });
      assert.equal(r.status, 503);
      assert.equal(r.body.error.code, "ERR_QUOTA_STORE_UNAVAILABLE");
      assert.equal(r.headers.get("retry-after"), "1");
      const ready = await quota.ready();
      assert.equal(ready.ok, false);
      assert.match(ready.detail ?? "", /redis/);
      const text = await registry.metrics();
      assert.match(text, /meshward_quota_leases_total\{api="http",domain="edge",limit="bulk",outcome="error"\} [1-9]/);
      assert.match(text, /meshward_quota_redis_up 0/);
      const lines = log.lines();
      assert.ok(lines.some((l) => l.code === "ERR_QUOTA_STORE_UNAVAILABLE" && l.level === 40), "a warn line with the error code");
    } finally {
      await redis.start();
    }
    await eventually(async () => (await post(http.url, { domain: "edge", limit: "bulk", key: "k", want: 1 })).status === 200, 10_000, "a 200 after Redis returned");
    assert.deepEqual(await quota.ready(), { ok: true });
    assert.match(await registry.metrics(), /meshward_quota_redis_up 1/);
  });

  it("answers 503 within the command timeout while Redis hangs (SIGSTOP), and 200 once it resumes", async () => {
    const admin = new Redis(redis.url);
    const pid = Number(/process_id:(\d+)/.exec(await admin.info("server"))![1]);
    admin.disconnect();
    process.kill(pid, "SIGSTOP");
    try {
      const r = await post(http.url, { domain: "edge", limit: "bulk", key: "hang", want: 1 });
      assert.equal(r.status, 503);
      assert.equal(r.body.error.code, "ERR_QUOTA_STORE_UNAVAILABLE");
      assert.match(r.body.error.message, /timed out/i);
      assert.equal((await quota.ready()).ok, false);
    } finally {
      process.kill(pid, "SIGCONT");
    }
    await eventually(async () => (await post(http.url, { domain: "edge", limit: "bulk", key: "hang", want: 1 })).status === 200, 10_000, "a 200 after Redis resumed");
  });

  it("serves 200s, then only 503s during a Redis restart in the middle of a request stream, then 200s again", async function () {
    this.timeout(30_000);
    const statuses: number[] = [];
    const lease = async () => (await post(http.url, { domain: "edge", limit: "bulk", key: `k${statuses.length % 7}`, want: 2 })).status;
    for (let i = 0; i < 50; i++) statuses.push(await lease());
    const stopping = redis.stop(true);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && statuses.at(-1) !== 503) statuses.push(await lease());
    await stopping;
    for (let i = 0; i < 20; i++) statuses.push(await lease());
    await redis.start();
    let consecutiveOk = 0;
    while (Date.now() < deadline + 10_000 && consecutiveOk < 50) {
      const s = await lease();
      statuses.push(s);
      consecutiveOk = s === 200 ? consecutiveOk + 1 : 0;
      if (s !== 200) await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(statuses.slice(0, 50).every((s) => s === 200), "200s before the restart");
    assert.ok(statuses.filter((s) => s === 503).length >= 20, "503s during the outage");
    assert.ok(statuses.every((s) => s === 200 || s === 503), `only 200/503, got ${[...new Set(statuses)].join(",")}`);
    assert.equal(consecutiveOk, 50, "50 consecutive 200s after Redis returned");
  });
});

describe("quota lease API over HTTP without Redis (in-memory store)", () => {
  let now = 0;
  let quota: QuotaService;
  let http: Awaited<ReturnType<typeof serveQuotaHttp>>;

  before(async () => {
    quota = createQuotaService({
      limits: [{ domain: "edge", name: "per-user", capacity: 10, refillPerSecond: 2 }],
      logger: capturingLogger().logger,
      registry: new Registry(),
      clock: () => now,
    });
    http = await serveQuotaHttp(quota);
  });

  after(async () => {
    await http?.close();
    await quota?.close();
  });

  it("answers exactly by the injected clock and is always ready", async () => {
    const lease = async (want: number) => (await post(http.url, { domain: "edge", limit: "per-user", key: "alice", want })).body;
    assert.deepEqual(await lease(8), { granted: 8, expiresInMs: 10_000, resetInMs: 4000, retryAfterMs: 0 });
    assert.deepEqual(await lease(5), { granted: 2, expiresInMs: 10_000, resetInMs: 5000, retryAfterMs: 500 });
    now = 1250;
    assert.deepEqual(await lease(5), { granted: 2, expiresInMs: 10_000, resetInMs: 4750, retryAfterMs: 250 });
    assert.deepEqual(await quota.ready(), { ok: true });
  });

  it("applies new limits from setLimits atomically (policy reload)", async () => {
    quota.setLimits([{ domain: "edge", name: "renamed", capacity: 3, refillPerSecond: 0 }]);
    assert.equal((await post(http.url, { domain: "edge", limit: "per-user", key: "x", want: 1 })).status, 404);
    const r = await post(http.url, { domain: "edge", limit: "renamed", key: "x", want: 5 });
    assert.deepEqual(r.body, { granted: 3, expiresInMs: 10_000, resetInMs: -1, retryAfterMs: -1 });
  });
});
