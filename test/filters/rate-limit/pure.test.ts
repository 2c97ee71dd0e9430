// Unit tests of the rate-limit filter's pure AssemblyScript modules (bucket arithmetic, slot
// scheme, lease pool, headers, lease protocol, configuration), called through @assemblyscript/loader
// on the `rate-limit-test` build target.
import { strict as assert } from "node:assert";
import { loadRateLimitPure } from "../../../tools/testing/rate-limit-pure.js";
import { DOCUMENTED_EXAMPLE } from "./example-config.js";

const x = loadRateLimitPure();

/** Passes a JS string into the module (kept alive for the test run). */
const s = (v: string): number => x.__retain(x.__newString(v));
/** Reads (and releases) a string returned by the module; null for a null reference. */
const str = (ptr: number): string | null => {
  if (ptr === 0) return null;
  const v = x.__getString(ptr);
  x.__release(ptr);
  return v;
};
const n = BigInt;
const SEC = 1_000_000_000n;

// Pool outcomes (lease-pool.ts PoolOutcome).
const ADMIT = 0, ADMIT_AND_LEASE = 1, WAIT = 2, WAIT_AND_LEASE = 3, OVER = 4, UNAVAILABLE = 5;
const BACKOFF_FAILED = 2;

describe("rate-limit pure modules (loader)", () => {
  describe("token bucket", () => {
    it("a full bucket admits exactly its capacity at one instant and then refuses", () => {
      x.bucketInit(5000n, 0n, 1n);
      let admitted = 0;
      for (let i = 0; i < 20; i++) admitted += x.bucketTake(1n);
      assert.equal(admitted, 5);
      assert.equal(x.bucketTokensMilli(), 0n);
    });

    it("refill over any sequence of clock steps equals floor(elapsed × rate) exactly (carried remainder)", () => {
      let seed = 12345;
      const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
      for (const rateMilli of [3000n, 7000n, 500n, 1n, 999_999_999n]) {
        const t0 = 1_000_000n;
        x.bucketInit(1_000_000_000n, rateMilli, t0); // capacity 1e6 tokens: never clamps here
        while (x.bucketTake(t0)) { /* drain the bucket at t0 */ if (x.bucketTokensMilli() < 1000n) break; }
        const start = x.bucketTokensMilli();
        let t = t0;
        for (let i = 0; i < 2000; i++) {
          t += n(Math.floor(rnd() * 3_000_000)) + 1n; // 1 ns … 3 ms
          x.bucketRefill(t);
          const elapsed = t - t0;
          const expected = start + (elapsed * rateMilli) / SEC;
          const want = expected > 1_000_000_000n ? 1_000_000_000n : expected;
          if (x.bucketTokensMilli() !== want) assert.fail(`rate ${rateMilli}: after ${elapsed} ns ${x.bucketTokensMilli()} ≠ ${want}`);
        }
      }
    });

    it("refills to capacity and no further, and resets the carried remainder when full", () => {
      x.bucketInit(3000n, 2000n, 0n);
      for (let i = 0; i < 3; i++) assert.equal(x.bucketTake(0n), 1);
      x.bucketRefill(10n * SEC);
      assert.equal(x.bucketTokensMilli(), 3000n);
      assert.equal(x.bucketCarry(), 0n);
    });

    it("a clock that goes backwards earns nothing", () => {
      x.bucketInit(2000n, 1000n, 5n * SEC);
      x.bucketTake(5n * SEC);
      x.bucketTake(5n * SEC);
      x.bucketRefill(4n * SEC);
      assert.equal(x.bucketTokensMilli(), 0n);
      x.bucketRefill(5n * SEC + SEC / 2n);
      assert.equal(x.bucketTokensMilli(), 500n);
    });

    it("Retry-After is the whole seconds until one token, and -1 when the limit never refills", () => {
      x.bucketInit(5000n, 2000n, 0n); // 2 tokens/s
      for (let i = 0; i < 5; i++) x.bucketTake(0n);
      assert.equal(x.bucketSecondsUntilToken(), 1n); // 0.5 s → 1
      x.bucketInit(5000n, 500n, 0n); // 0.5 token/s
      for (let i = 0; i < 5; i++) x.bucketTake(0n);
      assert.equal(x.bucketSecondsUntilToken(), 2n);
      x.bucketRefill(1_500_000_000n); // 0.75 token
      assert.equal(x.bucketSecondsUntilToken(), 1n); // 0.5 s more → 1
      x.bucketInit(1000n, 0n, 0n);
      x.bucketTake(0n);
      assert.equal(x.bucketSecondsUntilToken(), -1n);
      assert.equal(x.bucketSecondsUntilFull(), -1n);
      assert.equal(x.bucketWindowSeconds(), -1n);
    });

    it("the policy window is capacity / refill rounded up; time to full counts the missing tokens", () => {
      x.bucketInit(100_000n, 50_000n, 0n);
      assert.equal(x.bucketWindowSeconds(), 2n);
      for (let i = 0; i < 100; i++) x.bucketTake(0n);
      assert.equal(x.bucketSecondsUntilFull(), 2n);
      x.bucketInit(10_000n, 3000n, 0n);
      assert.equal(x.bucketWindowSeconds(), 4n);
    });

    it("bucket state survives its shared-data encoding", () => {
      x.bucketInit(10_000n, 3000n, 123n);
      x.bucketTake(456n);
      x.bucketRefill(789_000_001n);
      assert.equal(x.bucketRoundTrip(), 1);
    });
  });

  describe("slot scheme", () => {
    it("1,000,000 distinct client IPs occupy at most maxKeysPerLimit slots, spread over nearly all of them", function () {
      this.timeout(60_000);
      const slots = 4096;
      const distinct = x.distinctSlotsForIps(1_000_000, slots);
      assert.ok(distinct >= 0, "a slot index was out of range");
      assert.ok(distinct <= slots);
      assert.ok(distinct >= slots * 0.999, `only ${distinct} of ${slots} slots used`);
      assert.equal(x.distinctSlotsForIps(1_000_000, 1), 1);
    });

    it("fingerprints are stable and scoped by domain and limit", () => {
      const a = BigInt.asUintN(64, x.fingerprintOf(s("edge"), s("per-ip"), s("10.0.0.1")));
      const fp = (d: string, l: string, v: string): bigint => BigInt.asUintN(64, x.fingerprintOf(s(d), s(l), s(v)));
      assert.equal(fp("edge", "per-ip", "10.0.0.1"), a);
      assert.notEqual(fp("edge", "per-user", "10.0.0.1"), a);
      assert.notEqual(fp("mesh", "per-ip", "10.0.0.1"), a);
      assert.notEqual(fp("edge", "per-ip", "10.0.0.2"), a);
      assert.notEqual(a, 0n);
      const slot = x.slotOfKey(s("edge"), s("per-ip"), s("10.0.0.1"), 65536);
      assert.equal(BigInt(slot), a % 65536n);
    });

    it("the client IP is taken from source.address for IPv4 and bracketed IPv6", () => {
      assert.equal(str(x.clientIp(s("10.1.2.3:5000"))), "10.1.2.3");
      assert.equal(str(x.clientIp(s("[::1]:8080"))), "::1");
      assert.equal(str(x.clientIp(s("[2001:db8::1]:443"))), "2001:db8::1");
      assert.equal(str(x.clientIp(s("2001:db8::1"))), "2001:db8::1");
      assert.equal(str(x.clientIp(s("10.1.2.3"))), "10.1.2.3");
      assert.equal(str(x.clientIp(s(""))), null);
      assert.equal(str(x.clientIp(s("[]:80"))), null);
    });
  });

  describe("lease pool", () => {
    const fp = 0x1234n;
    /** A pool (leases of 10, at least 1, a 400 ms in-flight marker) whose first spend, at 0 ms, claimed the lease call. */
    const leasing = (): void => {
      x.poolInit(10n, 1n, 400n);
      assert.equal(x.poolSpend(fp, 0n), WAIT_AND_LEASE);
    };

    it("one lease in flight per key: the first empty spend claims the marker, later ones wait", () => {
      x.poolInit(10n, 1n, 400n);
      assert.equal(x.poolSpend(fp, 1000n), WAIT_AND_LEASE);
      assert.equal(x.poolSpend(fp, 1001n), WAIT);
      assert.equal(x.poolInflight(), 1);
      assert.equal(x.poolGrant(fp, 10n, 10n, 5000n, 0n, 1010n), 1);
      assert.equal(x.poolInflight(), 0);
      assert.equal(x.poolTokens(), 10n);
    });

    it("spends pooled tokens and asks for the next lease once below half a lease", () => {
      leasing();
      x.poolGrant(fp, 10n, 10n, 5000n, 0n, 0n);
      const outcomes: number[] = [];
      for (let i = 0; i < 10; i++) outcomes.push(x.poolSpend(fp, 1n));
      assert.deepEqual(outcomes, [ADMIT, ADMIT, ADMIT, ADMIT, ADMIT, ADMIT_AND_LEASE, ADMIT, ADMIT, ADMIT, ADMIT]);
      assert.equal(x.poolSpend(fp, 2n), WAIT);
    });

    it("a stale in-flight marker (dead VM) expires and can be claimed again", () => {
      leasing();
      assert.equal(x.poolSpend(fp, 399n), WAIT);
      assert.equal(x.poolSpend(fp, 400n), WAIT_AND_LEASE);
    });

    it("an empty grant means over the global limit until the retry hint (capped at 1 s, 1 s when never)", () => {
      leasing();
      x.poolGrant(fp, 0n, 10n, 0n, 1500n, 0n);
      assert.equal(x.poolSpend(fp, 10n), OVER);
      assert.equal(x.poolRetrySeconds(10n), 1n);
      assert.equal(x.poolSpend(fp, 999n), OVER);
      assert.equal(x.poolSpend(fp, 1000n), WAIT_AND_LEASE);
      x.poolGrant(fp, 0n, 10n, 0n, 20n, 1000n);
      assert.equal(x.poolSpend(fp, 1019n), OVER);
      assert.equal(x.poolSpend(fp, 1020n), WAIT_AND_LEASE);
      x.poolGrant(fp, 0n, 10n, 0n, -1n, 1020n);
      assert.equal(x.poolSpend(fp, 2019n), OVER);
      assert.equal(x.poolSpend(fp, 2020n), WAIT_AND_LEASE);
    });

    it("a partial grant (global bucket emptied) is spent, then answers 429 without a lease call until the retry hint", () => {
      leasing();
      x.poolGrant(fp, 2n, 10n, 5000n, 30n, 0n);
      assert.equal(x.poolSpend(fp, 1n), ADMIT, "below the low-water mark, but no lease during the backoff");
      assert.equal(x.poolSpend(fp, 2n), ADMIT);
      assert.equal(x.poolSpend(fp, 3n), OVER);
      assert.equal(x.poolSpend(fp, 30n), WAIT_AND_LEASE);
    });

    it("a failed lease makes the key unavailable (failure mode) for the backoff, then retries", () => {
      leasing();
      assert.equal(x.poolFail(fp, 5n), 1);
      assert.equal(x.poolBackoff(), BACKOFF_FAILED);
      assert.equal(x.poolSpend(fp, 6n), UNAVAILABLE);
      assert.equal(x.poolSpend(fp, 1005n), WAIT_AND_LEASE);
    });

    it("leased tokens expire, and a later grant never extends earlier tokens' expiry", () => {
      leasing();
      x.poolGrant(fp, 10n, 10n, 500n, 0n, 0n);
      x.poolGrant(fp, 10n, 10n, 5000n, 0n, 100n);
      assert.equal(x.poolTokens(), 20n);
      assert.equal(x.poolSpend(fp, 499n), ADMIT);
      assert.equal(x.poolSpend(fp, 500n), WAIT_AND_LEASE);
      assert.equal(x.poolTokens(), 0n);
    });

    it("another key taking over the slot discards the pool, and the old key's grant is dropped", () => {
      leasing();
      x.poolGrant(fp, 10n, 10n, 5000n, 0n, 0n);
      assert.equal(x.poolSpend(0x9999n, 1n), WAIT_AND_LEASE);
      assert.equal(x.poolTokens(), 0n);
      assert.equal(x.poolGrant(fp, 10n, 10n, 5000n, 0n, 2n), 0);
      assert.equal(x.poolTokens(), 0n);
    });

    it("the lease size follows the observed spend per second within [minLease, lease]", () => {
      x.poolInit(20n, 2n, 400n);
      x.poolSpend(fp, 0n);
      assert.equal(x.poolWant(), 20n);
      x.poolGrant(fp, 20n, 20n, 60_000n, 0n, 0n);
      for (let i = 0; i < 5; i++) x.poolSpend(fp, 100n);
      x.poolSpend(fp, 1000n); // window closes: 5 spent in 1 s
      assert.equal(x.poolWant(), 5n);
      x.poolSpend(fp, 2000n); // 1 spent in 1 s → min 2
      assert.equal(x.poolWant(), 2n);
      assert.equal(x.poolRoundTrip(), 1);
    });
  });

  describe("headers and lease protocol", () => {
    it("formats RateLimit-Policy and RateLimit in the draft's structured-field form", () => {
      assert.equal(str(x.policyHeader(s("per-ip"), 100n, 2n)), "\"per-ip\";q=100;w=2");
      assert.equal(str(x.policyHeader(s("once"), 3n, -1n)), "\"once\";q=3");
      assert.equal(str(x.rateLimitHeader(s("per-ip"), 0n, 1n)), "\"per-ip\";r=0;t=1");
      assert.equal(str(x.rateLimitHeader(s("once"), 0n, -1n)), "\"once\";r=0");
      assert.deepEqual(JSON.parse(str(x.body429(s("per-ip"), 3n))!), { error: "rate_limited", limit: "per-ip", retryAfterSeconds: 3 });
      assert.equal(x.isNearLimit(10n, 100n), 1);
      assert.equal(x.isNearLimit(11n, 100n), 0);
    });

    it("lease requests are valid JSON for any key, and multi-part keys are unambiguous", () => {
      const key = "we\"ird\\key\n\u0001é";
      assert.deepEqual(JSON.parse(str(x.leaseBody(s("edge"), s("per-user"), s(key), 20n))!),
        { domain: "edge", limit: "per-user", key, want: 20 });
      assert.equal(JSON.parse(str(x.jsonQuote(s("\t\"x\"")))!), "\t\"x\"");
      assert.notEqual(str(x.wireKey2(s("a|b"), s("c"))), str(x.wireKey2(s("a"), s("b|c"))));
      assert.equal(str(x.wireKey2(s("a%"), s("b"))), "a%25|b");
    });

    it("reads lease answers strictly, taking the retry hint from retryAfterMs, else resetInMs", () => {
      assert.equal(str(x.leaseAnswer(s("{\"granted\":5,\"expiresInMs\":1000,\"resetInMs\":20,\"extra\":true}"))), "5,1000,20,20");
      assert.equal(str(x.leaseAnswer(s("{\"granted\":0,\"expiresInMs\":1000,\"resetInMs\":2000,\"retryAfterMs\":20}"))), "0,1000,2000,20");
      assert.equal(str(x.leaseAnswer(s("{\"granted\":0,\"expiresInMs\":1000,\"resetInMs\":-1,\"retryAfterMs\":-1}"))), "0,1000,-1,-1");
      assert.equal(str(x.leaseAnswer(s("{\"granted\":5,\"expiresInMs\":1000}"))), "error: 'resetInMs' must be an integer ≥ -1");
      assert.equal(str(x.leaseAnswer(s("{\"granted\":-1,\"expiresInMs\":1000,\"resetInMs\":0}"))), "error: 'granted' must be a non-negative integer");
      assert.equal(str(x.leaseAnswer(s("{\"granted\":1.5,\"expiresInMs\":1000,\"resetInMs\":0}"))), "error: 'granted' must be a non-negative integer");
      assert.equal(str(x.leaseAnswer(s("not json"))), "error: malformed JSON");
      assert.equal(str(x.leaseAnswer(s("[1]"))), "error: expected a JSON object");
    });
  });

  describe("configuration", () => {
    it("accepts the documented example configuration (docs/plugin-configs.md)", () => {
      assert.equal(str(x.configError(s(JSON.stringify(DOCUMENTED_EXAMPLE)))), null);
    });
  });
});
