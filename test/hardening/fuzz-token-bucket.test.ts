// Properties of both token buckets — the rate-limit filter's integer bucket (AssemblyScript, the
// rate-limit-test target via @assemblyscript/loader) and the quota service's bucket
// (authz-server/src/quota/token-bucket.ts): never admit more than capacity + refill × elapsed, refill
// is monotonic in time, a clock running backwards earns nothing, and extreme times do not overflow.
import assert from "node:assert/strict";
import fc from "fast-check";
import { refillBucket, takeTokens, type BucketState } from "../../authz-server/src/quota/token-bucket.js";
import { loadRateLimitPure } from "../../tools/testing/rate-limit-pure.js";
import { fuzzRuns, fuzzSeed } from "./helpers/fuzz.js";


const SEC = 1_000_000_000n;
const I64_MAX = (1n << 63n) - 1n;
const MAX_TOKENS_MILLI = 1_000_000n * 1000n; // filters/rate-limit/token-bucket.ts MAX_TOKENS

describe("fuzz: token buckets never over-admit and never overflow", function () {
  this.timeout(120_000);

  describe("rate-limit filter bucket (AssemblyScript, integer millitokens)", () => {
    const x = loadRateLimitPure();
    const spec = fc.record({
      capacityMilli: fc.oneof(fc.bigInt({ min: 1000n, max: 50_000n }), fc.constant(MAX_TOKENS_MILLI)),
      refillMilli: fc.oneof(fc.constant(0n), fc.bigInt({ min: 1n, max: 20_000n }), fc.constant(MAX_TOKENS_MILLI)),
      t0: fc.oneof(fc.bigInt({ min: 0n, max: 10n ** 12n }), fc.constant(I64_MAX - 10n ** 15n), fc.bigInt({ min: 0n, max: I64_MAX / 2n })),
    });
    const step = fc.record({
      dt: fc.oneof({ weight: 6, arbitrary: fc.bigInt({ min: 0n, max: 5n * SEC }) }, { weight: 1, arbitrary: fc.bigInt({ min: -5n * SEC, max: -1n }) }, { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: 10n ** 15n }) }),
      takes: fc.integer({ min: 0, max: 8 }),
    });

    it("admits at most capacity + floor(refill × elapsed) tokens, keeps 0 ≤ tokens ≤ capacity and 0 ≤ carry < 1 s, for any clock steps", () => {
      fc.assert(
        fc.property(spec, fc.array(step, { minLength: 1, maxLength: 40 }), ({ capacityMilli, refillMilli, t0 }, steps) => {
          x.bucketInit(capacityMilli, refillMilli, t0);
          let now = t0;
          let latest = t0; // the furthest the clock has been: refill is earned only up to there
          let admitted = 0n;
          for (const { dt, takes } of steps) {
            now += dt;
            if (now < 0n) now = 0n;
            if (now > I64_MAX) now = I64_MAX;
            if (now > latest) latest = now;
            for (let i = 0; i < takes; i++) admitted += BigInt(x.bucketTake(now));
            const tokens = x.bucketTokensMilli();
            const carry = x.bucketCarry();
            assert.ok(tokens >= 0n && tokens <= capacityMilli, `tokens ${tokens} outside [0, ${capacityMilli}]`);
            assert.ok(carry >= 0n && carry < SEC, `carry ${carry}`);
            const earned = ((latest - t0) * refillMilli) / SEC;
            assert.ok(admitted * 1000n <= capacityMilli + earned, `admitted ${admitted} tokens > capacity ${capacityMilli} + earned ${earned} (millitokens)`);
          }
        }),
        { numRuns: fuzzRuns(1500), ...fuzzSeed() },
      );
    });

    it("refill is monotonic in time and a clock running backwards earns nothing", () => {
      fc.assert(
        fc.property(spec, fc.array(fc.bigInt({ min: -3n * SEC, max: 3n * SEC }), { minLength: 1, maxLength: 30 }), ({ capacityMilli, refillMilli, t0 }, dts) => {
          x.bucketInit(capacityMilli, refillMilli, t0);
          for (let i = 0; i < 60 && x.bucketTake(t0); i++) { /* drain (partly, for huge capacities) at t0 */ }
          let now = t0;
          let prev = x.bucketTokensMilli();
          for (const dt of dts) {
            now = now + dt < 0n ? 0n : now + dt > I64_MAX ? I64_MAX : now + dt;
            x.bucketRefill(now);
            const tokens = x.bucketTokensMilli();
            assert.ok(tokens >= prev, `tokens went down from ${prev} to ${tokens} on refill at ${now}`);
            if (dt <= 0n) assert.equal(tokens, prev, "no tokens earned when time does not move forward");
            prev = tokens;
          }
        }),
        { numRuns: fuzzRuns(1500), ...fuzzSeed() },
      );
    });

    it("jumps across the whole i64 clock range refill to exactly capacity, never wrap to negative", () => {
      for (const [from, to] of [[0n, I64_MAX], [1n, I64_MAX - 1n], [I64_MAX - SEC, I64_MAX]] as const) {
        x.bucketInit(MAX_TOKENS_MILLI, 1000n, from);
        for (let i = 0; i < 1000; i++) x.bucketTake(from);
        x.bucketRefill(to);
        const tokens = x.bucketTokensMilli();
        assert.ok(tokens >= 0n && tokens <= MAX_TOKENS_MILLI, `${tokens}`);
        if (to - from >= 1000n * SEC) assert.equal(tokens, MAX_TOKENS_MILLI);
        else assert.equal(tokens, MAX_TOKENS_MILLI - 1_000_000n + ((to - from) * 1000n) / SEC);
      }
    });
  });

  describe("quota service bucket (TypeScript, fractional tokens)", () => {
    const limits = fc.record({
      capacity: fc.integer({ min: 1, max: 10_000 }),
      refillPerSecond: fc.oneof(fc.constant(0), fc.double({ min: 0.001, max: 10_000, noNaN: true }), fc.integer({ min: 1, max: 1_000_000 })),
    });
    const op = fc.record({
      dt: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 5000 }) }, { weight: 1, arbitrary: fc.integer({ min: -5000, max: -1 }) }),
      want: fc.integer({ min: 1, max: 50 }),
      all: fc.boolean(),
    });
    const start = fc.oneof(fc.integer({ min: 0, max: 2_000_000_000_000 }), fc.constant(Number.MAX_SAFE_INTEGER - 10_000_000), fc.constant(8.64e15 - 10_000_000));

    it("grants at most capacity + refill × elapsed in total, whole numbers only, tokens within [0, capacity], never NaN", () => {
      fc.assert(
        fc.property(limits, start, fc.array(op, { minLength: 1, maxLength: 40 }), (lim, t0, ops) => {
          let state: BucketState | undefined;
          let now = t0;
          let origin: number | undefined; // a bucket is created full at its first take
          let latest = -Infinity;
          let granted = 0;
          for (const { dt, want, all } of ops) {
            now += dt;
            origin ??= now;
            latest = Math.max(latest, now);
            const out = takeTokens(state, lim, want, all ? "all" : "partial", now);
            state = out.state;
            assert.ok(Number.isInteger(out.granted) && out.granted >= 0 && out.granted <= want, `granted ${out.granted}`);
            if (all) assert.ok(out.granted === 0 || out.granted === want);
            assert.ok(Number.isFinite(out.tokens) && out.tokens >= 0 && out.tokens <= lim.capacity, `tokens ${out.tokens}`);
            assert.ok(Number.isFinite(out.resetInMs) && out.resetInMs >= -1, `resetInMs ${out.resetInMs}`);
            granted += out.granted;
            const bound = lim.capacity + ((latest - origin) * lim.refillPerSecond) / 1000;
            assert.ok(granted <= bound + 1e-6, `granted ${granted} > ${bound}`);
          }
        }),
        { numRuns: fuzzRuns(1500), ...fuzzSeed() },
      );
    });

    it("refill is monotonic in time and earns nothing when the clock goes backwards", () => {
      fc.assert(
        fc.property(limits, start, fc.array(fc.integer({ min: -3000, max: 3000 }), { minLength: 1, maxLength: 30 }), (lim, t0, dts) => {
          let state: BucketState = { tokens: 0, updatedAt: t0 };
          let now = t0;
          for (const dt of dts) {
            now += dt;
            const next = refillBucket(state, lim, now);
            assert.ok(next.tokens >= state.tokens, `tokens went down ${state.tokens} → ${next.tokens}`);
            if (now <= state.updatedAt) assert.equal(next.tokens, Math.min(state.tokens, lim.capacity));
            assert.ok(next.updatedAt >= state.updatedAt, "updatedAt never moves back");
            state = next;
          }
        }),
        { numRuns: fuzzRuns(1500), ...fuzzSeed() },
      );
    });
  });
});
