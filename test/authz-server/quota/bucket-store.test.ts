// Component tests: the in-memory store and the Redis Lua store satisfy one contract (exact arithmetic
// under an injected clock), and the Redis script is atomic under concurrency against a real redis-server.
import assert from "node:assert/strict";
import fc from "fast-check";
import { Redis } from "ioredis";
import type { BucketStore, TakeRequest } from "../../../authz-server/src/quota/bucket-store.js";
import { bucketKey } from "../../../authz-server/src/quota/bucket-key.js";
import { MemoryBucketStore } from "../../../authz-server/src/quota/memory-store.js";
import { RedisBucketStore } from "../../../authz-server/src/quota/redis-store.js";
import { TAKE_TOKENS_LUA, TAKE_TOKENS_SHA1 } from "../../../authz-server/src/quota/take-tokens-script.js";
import { requireRedis, startRedis, type RedisProcess } from "../../../tools/testing/redis.js";

interface StoreFixture {
  store: BucketStore;
  setNow(ms: number): void;
}

type StoreFactory = () => Promise<StoreFixture>;

let redis: RedisProcess | undefined;
let admin: Redis | undefined;
const opened: BucketStore[] = [];

async function redisFixture(): Promise<StoreFixture> {
  let now = 1_700_000_000_000;
  const store = new RedisBucketStore({ commandTimeoutMs: 2000, url: redis!.url, clock: () => now });
  opened.push(store);
  await waitReady(store);
  return { store, setNow: (ms) => (now = 1_700_000_000_000 + ms) };
}

async function memoryFixture(): Promise<StoreFixture> {
  let now = 0;
  const store = new MemoryBucketStore({ clock: () => now, maxBuckets: 1000 });
  return { store, setNow: (ms) => (now = ms) };
}

async function waitReady(store: RedisBucketStore): Promise<void> {
  for (let i = 0; i < 100 && !store.isUp; i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(store.isUp, "redis store did not become ready");
}

const take = (s: BucketStore, key: string, want: number, more: Partial<TakeRequest> = {}) =>
  s.take({ key: bucketKey("edge", "test", key), capacity: 10, refillPerSecond: 2, want, mode: "partial", ...more });

describe("bucket stores (memory and a real redis-server)", () => {
  before(async function () {
    requireRedis(this);
    redis = await startRedis();
    admin = new Redis(redis.url);
  });

  after(async () => {
    for (const s of opened) await s.close();
    admin?.disconnect();
    await redis?.stop();
  });

  for (const [name, factory] of [["memory", memoryFixture], ["redis", redisFixture]] as [string, StoreFactory][]) {
    describe(`bucket store contract: ${name}`, () => {
      let f: StoreFixture;
      beforeEach(async () => {
        if (name === "redis") await admin!.flushall();
        f = await factory();
      });

      it("grants min(want, available), debits at grant time and reports ms until full", async () => {
        f.setNow(0);
        assert.deepEqual(await take(f.store, "a", 3), { granted: 3, tokens: 7, resetInMs: 1500 });
        assert.deepEqual(await take(f.store, "a", 10), { granted: 7, tokens: 0, resetInMs: 5000 });
        assert.deepEqual(await take(f.store, "a", 1), { granted: 0, tokens: 0, resetInMs: 5000 });
      });

      it("refills continuously by elapsed time: one token per 500 ms at 2/s", async () => {
        f.setNow(0);
        await take(f.store, "b", 10);
        f.setNow(499);
        assert.equal((await take(f.store, "b", 1)).granted, 0);
        f.setNow(500);
        assert.equal((await take(f.store, "b", 1)).granted, 1);
        f.setNow(1750);
        const r = await take(f.store, "b", 5);
        assert.equal(r.granted, 2);
        assert.ok(Math.abs(r.tokens - 0.5) < 1e-9);
        f.setNow(60_000);
        assert.equal((await take(f.store, "b", 100)).granted, 10);
      });

      it("grants all or nothing in `all` mode", async () => {
        f.setNow(0);
        assert.equal((await take(f.store, "c", 8, { mode: "all" })).granted, 8);
        assert.deepEqual(await take(f.store, "c", 3, { mode: "all" }), { granted: 0, tokens: 2, resetInMs: 4000 });
        assert.equal((await take(f.store, "c", 2, { mode: "all" })).granted, 2);
      });

      it("keeps buckets apart by key and never refills a limit with refillPerSecond 0", async () => {
        f.setNow(0);
        await take(f.store, "d1", 10, { refillPerSecond: 0 });
        f.setNow(3_600_000);
        assert.deepEqual(await take(f.store, "d1", 1, { refillPerSecond: 0 }), { granted: 0, tokens: 0, resetInMs: -1 });
        assert.equal((await take(f.store, "d2", 4, { refillPerSecond: 0 })).granted, 4);
      });

      it("clamps a bucket to a lowered capacity (policy reload)", async () => {
        f.setNow(0);
        await take(f.store, "e", 1);
        assert.deepEqual(await take(f.store, "e", 10, { capacity: 4 }), { granted: 4, tokens: 0, resetInMs: 2000 });
      });
    });
  }

  describe("memory and Redis stores agree", () => {
    it("give identical answers to random sequences of takes and clock steps (fast-check, 40 sequences)", async function () {
      this.timeout(60_000);
      const op = fc.record({ dt: fc.integer({ min: -200, max: 3000 }), want: fc.integer({ min: 1, max: 12 }), all: fc.boolean(), key: fc.constantFrom("a", "b") });
      const limits = fc.record({ capacity: fc.integer({ min: 1, max: 10 }), refillPerSecond: fc.constantFrom(0, 0.3, 1, 2.5, 7, 1000) });
      let run = 0;
      await fc.assert(
        fc.asyncProperty(limits, fc.array(op, { minLength: 1, maxLength: 25 }), async (lim, ops) => {
          const prefix = `prop${run++}`;
          const mem = await memoryFixture();
          const red = await redisFixture();
          let t = 1000;
          for (const o of ops) {
            t = Math.max(0, t + o.dt);
            mem.setNow(t);
            red.setNow(t);
            const req = { key: bucketKey("edge", prefix, o.key), ...lim, want: o.want, mode: o.all ? ("all" as const) : ("partial" as const) };
            const [a, b] = [await mem.store.take(req), await red.store.take(req)];
            assert.equal(b.granted, a.granted);
            assert.equal(b.resetInMs, a.resetInMs);
            assert.ok(Math.abs(b.tokens - a.tokens) < 1e-9, `tokens ${a.tokens} vs ${b.tokens}`);
          }
          await red.store.close();
        }),
        {
          numRuns: 40,
          // Found by CI: the clock stepped back 1 ms right after the memory store had forgotten a bucket
          // at its full time, so the memory store granted a token Redis (correctly) did not.
          examples: [[{ capacity: 1, refillPerSecond: 7 }, [{ dt: 0, want: 1, all: false, key: "b" }, { dt: 143, want: 1, all: false, key: "a" }, { dt: -1, want: 1, all: false, key: "a" }, { dt: 0, want: 1, all: false, key: "b" }]]],
        },
      );
    });
  });

  describe("redis bucket store", () => {
    beforeEach(async () => {
      await admin!.flushall();
    });

    it("grants exactly C tokens in total to 600 concurrent takes from 3 connections against capacity C = 250 with no refill", async () => {
      const stores = [0, 1, 2].map(() => new RedisBucketStore({ commandTimeoutMs: 2000, url: redis!.url }));
      opened.push(...stores);
      for (const s of stores) await waitReady(s);
      const results = await Promise.all(
        Array.from({ length: 600 }, (_, i) =>
          stores[i % 3]!.take({ key: bucketKey("edge", "atomic", "k"), capacity: 250, refillPerSecond: 0, want: 1 + (i % 3), mode: "partial" }),
        ),
      );
      const total = results.reduce((n, r) => n + r.granted, 0);
      assert.equal(total, 250);
      assert.ok(results.every((r) => r.granted >= 0 && r.granted <= 3));
    });

    it("refills by Redis TIME when no clock is injected", async () => {
      const s = new RedisBucketStore({ commandTimeoutMs: 2000, url: redis!.url });
      opened.push(s);
      await waitReady(s);
      const req = { key: bucketKey("edge", "time", "k"), capacity: 5, refillPerSecond: 50, want: 5, mode: "partial" as const };
      assert.equal((await s.take(req)).granted, 5);
      assert.equal((await s.take(req)).granted, 0);
      await new Promise((r) => setTimeout(r, 150));
      assert.equal((await s.take(req)).granted, 5);
    });

    it("stores one hash per bucket that expires when the bucket would be full, and deletes a bucket found full", async () => {
      let now = 1_700_000_000_000;
      const s = new RedisBucketStore({ commandTimeoutMs: 2000, url: redis!.url, clock: () => now });
      opened.push(s);
      await waitReady(s);
      const key = bucketKey("edge", "per-user", "alice");
      const r = await s.take({ key, capacity: 100, refillPerSecond: 10, want: 20, mode: "partial" });
      assert.equal(r.resetInMs, 2000);
      assert.deepEqual(await admin!.keys("*"), ["meshward:q:{edge/per-user/alice}"]);
      assert.equal(await admin!.type(key), "hash");
      const pttl = await admin!.pttl(key);
      assert.ok(pttl > 1500 && pttl <= 2000, `pttl ${pttl}`);
      now += 2000;
      assert.deepEqual(await s.take({ key, capacity: 100, refillPerSecond: 10, want: 1000, mode: "all" }), { granted: 0, tokens: 100, resetInMs: 0 });
      assert.equal(await admin!.exists(key), 0);
    });

    it("falls back to EVAL after SCRIPT FLUSH (NOSCRIPT) and the published SHA-1 is the script's", async () => {
      const s = new RedisBucketStore({ commandTimeoutMs: 2000, url: redis!.url });
      opened.push(s);
      await waitReady(s);
      const req = { key: bucketKey("edge", "noscript", "k"), capacity: 5, refillPerSecond: 0, want: 1, mode: "partial" as const };
      assert.equal((await s.take(req)).granted, 1);
      await admin!.script("FLUSH");
      assert.equal((await s.take(req)).granted, 1);
      assert.equal(await admin!.script("LOAD", TAKE_TOKENS_LUA), TAKE_TOKENS_SHA1);
    });

    it("rejects with ERR_QUOTA_STORE_UNAVAILABLE at once while Redis is down, and recovers when it returns", async () => {
      const s = new RedisBucketStore({ commandTimeoutMs: 2000, url: redis!.url });
      opened.push(s);
      await waitReady(s);
      const req = { key: bucketKey("edge", "outage", "k"), capacity: 5, refillPerSecond: 0, want: 1, mode: "partial" as const };
      await redis!.stop();
      try {
        await assert.rejects(s.take(req), { code: "ERR_QUOTA_STORE_UNAVAILABLE" });
        await assert.rejects(s.ping(), { code: "ERR_QUOTA_STORE_UNAVAILABLE" });
      } finally {
        await redis!.start();
      }
      await waitReady(s);
      assert.equal((await s.take(req)).granted, 1);
    });
  });
});
