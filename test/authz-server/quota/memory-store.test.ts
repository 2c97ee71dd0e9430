// Unit tests: the in-memory bucket store stays bounded whatever the key cardinality, and forgets
// buckets once they are full again (which changes no answer: a missing bucket is a full one).
import assert from "node:assert/strict";
import { MemoryBucketStore } from "../../../authz-server/src/quota/memory-store.js";

describe("in-memory bucket store bounds", () => {
  it("stays at or under maxBuckets over 1,000,000 distinct attacker-chosen keys, evicting least recently used", function () {
    this.timeout(60_000);
    let evicted = 0;
    let now = 0;
    const store = new MemoryBucketStore({ maxBuckets: 10_000, clock: () => now, onEvictActive: () => evicted++ });
    let maxSeen = 0;
    for (let i = 0; i < 1_000_000; i++) {
      if (i % 1000 === 0) now++;
      store.takeNow({ key: `ip-${i}`, capacity: 100, refillPerSecond: 0.001, want: 1, mode: "partial" });
      if (store.size > maxSeen) maxSeen = store.size;
    }
    assert.equal(maxSeen, 10_000);
    assert.equal(evicted, 990_000);
  });

  it("keeps a recently used bucket while others are evicted", () => {
    const store = new MemoryBucketStore({ maxBuckets: 3, clock: () => 0 });
    const req = (key: string) => ({ key, capacity: 2, refillPerSecond: 0, want: 1, mode: "partial" as const });
    store.takeNow(req("hot"));
    for (const k of ["a", "b", "c", "d"]) {
      store.takeNow(req(k));
      store.takeNow({ ...req("hot"), want: 0 });
    }
    assert.equal(store.takeNow(req("hot")).granted, 1);
    assert.equal(store.takeNow(req("hot")).granted, 0);
    assert.equal(store.size, 3);
  });

  it("forgets buckets once they are full again, so idle keys do not accumulate", () => {
    let now = 0;
    const store = new MemoryBucketStore({ maxBuckets: 1_000_000, clock: () => now });
    for (let i = 0; i < 5000; i++) store.takeNow({ key: `k${i}`, capacity: 10, refillPerSecond: 10, want: 1, mode: "partial" });
    assert.equal(store.size, 5000);
    now = 1100; // full again at 100 ms, forgotten one clock-step-back grace (1 s) later
    for (let i = 0; i < 5000; i++) store.takeNow({ key: `other${i}`, capacity: 10, refillPerSecond: 10, want: 10, mode: "partial" });
    assert.ok(store.size <= 5000 + 10, `size ${store.size}`);
    now = 10_000;
    for (let i = 0; i < 5000; i++) store.takeNow({ key: "one", capacity: 10, refillPerSecond: 10, want: 1, mode: "partial" });
    assert.equal(store.size, 1);
  });
});
