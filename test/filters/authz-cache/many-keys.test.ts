// authz-cache.wasm driven directly through the Envoy stand-in with many distinct learned keys (bounded in
// count and time): shared data stays within its fixed slot bound, linear memory stays flat, and the last
// key learned is still served from the cache. The 1,000,000-key run and the hit-path speed are a bench row
// (`npm run bench -- --only authz-cache-keys`); the real-Envoy flood is test/e2e/authz-cache-scale.test.ts.
import { strict as assert } from "node:assert";
import { describeFlood, floodDistinctKeys } from "../../../tools/testing/authz-cache-flood.js";

const SLOTS = 1024;
const KEYS = 30_000;

describe("authz-cache: many distinct keys through the stand-in", function () {
  this.timeout(180_000);

  it(`keeps shared data within ${SLOTS} slots and linear memory flat over ${KEYS.toLocaleString("en")} distinct keys, and still hits`, async function () {
    const r = await floodDistinctKeys({ keys: KEYS, slots: SLOTS, maxMs: 90_000, hitSamples: 200 });
    console.log(`      ${describeFlood(r)}`);
    assert.ok(r.keys >= 4 * SLOTS, `every slot overwritten several times: ${r.keys} distinct keys within the time bound`);
    assert.ok(r.sharedEntries <= SLOTS + 2, `${r.sharedEntries} shared-data entries (slots + epoch + shapes)`);
    assert.ok(r.sharedBytes <= r.sharedBoundBytes, `${r.sharedBytes} shared-data bytes within the bound of ${r.sharedBoundBytes}`);
    assert.ok(r.memoryAfter - r.memoryBefore <= 1024 * 1024, `linear memory grew by ${r.memoryAfter - r.memoryBefore} bytes`);
    assert.ok(r.stores >= r.keys, "every distinct key was stored (and most evicted)");
    assert.ok(r.evictions >= r.keys - SLOTS, `${r.evictions} evictions`);
    assert.ok(r.lastKeyHit, "the last key learned is served from its slot: no nonce, the skip marker, the learned identity");
  });
});
