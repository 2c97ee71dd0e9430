// Unit tests: bucket arithmetic, storage keys, descriptor mapping, units and RateLimit headers.
import assert from "node:assert/strict";
import { bucketKey, MAX_ENCODED_KEY_CHARS } from "../../../authz-server/src/quota/bucket-key.js";
import { mapDescriptor } from "../../../authz-server/src/quota/descriptor-mapping.js";
import { compileLimits } from "../../../authz-server/src/quota/limits.js";
import { rateLimitHeaders, unitForRate } from "../../../authz-server/src/quota/rate-limit-headers.js";
import { msUntilTokens, takeTokens } from "../../../authz-server/src/quota/token-bucket.js";

describe("quota token bucket arithmetic", () => {
  const limits = { capacity: 10, refillPerSecond: 2 };

  it("starts full, grants min(want, available) in partial mode and reports ms until full", () => {
    const a = takeTokens(undefined, limits, 3, "partial", 1000);
    assert.deepEqual([a.granted, a.tokens, a.resetInMs], [3, 7, 1500]);
    const b = takeTokens(a.state, limits, 10, "partial", 1000);
    assert.deepEqual([b.granted, b.tokens, b.resetInMs], [7, 0, 5000]);
  });

  it("refills continuously: 499 ms at 2/s is not yet a token, 500 ms is exactly one", () => {
    const empty = takeTokens(undefined, limits, 10, "partial", 0).state;
    const early = takeTokens(empty, limits, 1, "partial", 499);
    assert.equal(early.granted, 0);
    assert.ok(Math.abs(early.tokens - 0.998) < 1e-12);
    assert.equal(early.resetInMs, 4501);
    const onTime = takeTokens(early.state, limits, 1, "partial", 500);
    assert.deepEqual([onTime.granted, onTime.tokens], [1, 0]);
  });

  it("never refills beyond capacity", () => {
    const empty = takeTokens(undefined, limits, 10, "partial", 0).state;
    const later = takeTokens(empty, limits, 100, "partial", 3_600_000);
    assert.equal(later.granted, 10);
  });

  it("grants all or nothing in `all` mode", () => {
    const a = takeTokens(undefined, limits, 8, "all", 0);
    const b = takeTokens(a.state, limits, 3, "all", 0);
    assert.deepEqual([b.granted, b.tokens], [0, 2]);
    const c = takeTokens(b.state, limits, 2, "all", 0);
    assert.deepEqual([c.granted, c.tokens], [2, 0]);
  });

  it("does not refill when the clock goes backwards", () => {
    const a = takeTokens(undefined, limits, 10, "partial", 10_000);
    const b = takeTokens(a.state, limits, 1, "partial", 5_000);
    assert.equal(b.granted, 0);
    assert.equal(b.state.updatedAt, 10_000);
  });

  it("reports -1 (never) for a limit that does not refill", () => {
    const a = takeTokens(undefined, { capacity: 5, refillPerSecond: 0 }, 1, "partial", 0);
    assert.equal(a.resetInMs, -1);
    assert.equal(msUntilTokens(1, 0.5, 0), -1);
    assert.equal(msUntilTokens(1, 0.5, 2), 250);
    assert.equal(msUntilTokens(1, 1, 2), 0);
  });
});

describe("quota bucket keys", () => {
  it("hash-tag the whole bucket and URI-encode each part so parts cannot run together", () => {
    assert.equal(bucketKey("edge", "per-user", "alice"), "meshward:q:{edge/per-user/alice}");
    assert.notEqual(bucketKey("edge", "a/b", "c"), bucketKey("edge", "a", "b/c"));
    assert.equal(bucketKey("edge", "l", "x}y{"), "meshward:q:{edge/l/x%7Dy%7B}");
  });

  it("replace long keys by their SHA-256 so key length stays bounded", () => {
    const long = bucketKey("edge", "per-ip", "k".repeat(10_000));
    assert.match(long, /^meshward:q:\{edge\/per-ip\/#[0-9a-f]{64}\}$/);
    assert.notEqual(long, bucketKey("edge", "per-ip", "k".repeat(10_001)));
    assert.equal(bucketKey("e", "l", "k".repeat(MAX_ENCODED_KEY_CHARS)), `meshward:q:{e/l/${"k".repeat(MAX_ENCODED_KEY_CHARS)}}`);
  });
});

describe("quota limit table", () => {
  it("finds limits by domain and name", () => {
    const t = compileLimits([{ domain: "edge", name: "per-user", capacity: 5, refillPerSecond: 1 }]);
    assert.equal(t.find("edge", "per-user")?.capacity, 5);
    assert.equal(t.find("edge", "other"), undefined);
    assert.equal(t.hasDomain("mesh"), false);
  });

  it("rejects duplicates and bad numbers naming the entry", () => {
    const ok = { domain: "edge", name: "a", capacity: 5, refillPerSecond: 1 };
    assert.throws(() => compileLimits([ok, ok]), { message: "rateLimits[1]: duplicate limit 'a' in domain 'edge'" });
    assert.throws(() => compileLimits([{ ...ok, capacity: 0 }]), { message: "rateLimits[0].capacity: must be an integer ≥ 1" });
    assert.throws(() => compileLimits([{ ...ok, refillPerSecond: -1 }]), { message: "rateLimits[0].refillPerSecond: must be a finite number ≥ 0" });
  });
});

describe("Envoy descriptor mapping", () => {
  it("names the limit by the first entry's key and keys the bucket by the values", () => {
    assert.deepEqual(mapDescriptor([{ key: "remote_address", value: "10.0.0.1" }]), { limit: "remote_address", key: "10.0.0.1" });
    assert.deepEqual(mapDescriptor([{ key: "remote_address", value: "10.0.0.1" }, { key: "path", value: "/a/b" }]), {
      limit: "remote_address",
      key: "10.0.0.1/%2Fa%2Fb",
    });
  });

  it("names the limit by a leading generic_key's value", () => {
    assert.deepEqual(mapDescriptor([{ key: "generic_key", value: "per-user" }, { key: "user", value: "alice" }]), { limit: "per-user", key: "alice" });
    assert.deepEqual(mapDescriptor([{ key: "generic_key", value: "global" }]), { limit: "global", key: "" });
  });

  it("names the limit by an entry with key `limit` anywhere in the descriptor", () => {
    assert.deepEqual(mapDescriptor([{ key: "tenant", value: "acme" }, { key: "limit", value: "per-tenant" }]), { limit: "per-tenant", key: "acme" });
  });

  it("keeps distinct value tuples apart", () => {
    const a = mapDescriptor([{ key: "k", value: "a/b" }, { key: "x", value: "c" }]);
    const b = mapDescriptor([{ key: "k", value: "a" }, { key: "x", value: "b/c" }]);
    assert.notEqual(a?.key, b?.key);
    assert.equal(mapDescriptor([]), undefined);
  });
});

describe("rate limit units and headers", () => {
  it("picks the smallest unit with a whole number of requests", () => {
    assert.deepEqual(unitForRate(100, 1000), { requestsPerUnit: 100, unit: "SECOND" });
    assert.deepEqual(unitForRate(0.5, 10), { requestsPerUnit: 30, unit: "MINUTE" });
    assert.deepEqual(unitForRate(1 / 3600, 10), { requestsPerUnit: 1, unit: "HOUR" });
    assert.deepEqual(unitForRate(1e-7, 10), { requestsPerUnit: 1, unit: "DAY" });
    assert.deepEqual(unitForRate(0, 7), { requestsPerUnit: 7, unit: "DAY" });
  });

  it("formats RateLimit-Policy, RateLimit and Retry-After in structured-field form", () => {
    const h = rateLimitHeaders([{ name: "per-ip", capacity: 100, refillPerSecond: 50, remaining: 0, resetInMs: 1999 }], 20);
    assert.deepEqual(h, [
      { key: "ratelimit-policy", value: '"per-ip";q=100;w=2' },
      { key: "ratelimit", value: '"per-ip";r=0;t=2' },
      { key: "retry-after", value: "1" },
    ]);
    const never = rateLimitHeaders([{ name: 'a"b', capacity: 5, refillPerSecond: 0, remaining: 0, resetInMs: -1 }], undefined);
    assert.deepEqual(never, [
      { key: "ratelimit-policy", value: '"a\\"b";q=5' },
      { key: "ratelimit", value: '"a\\"b";r=0' },
    ]);
  });
});
