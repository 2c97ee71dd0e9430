// Dynamic metadata on cache hits, in a real Envoy (ENVOY_BIN): a miss gets ext_authz's metadata
// (`envoy.filters.http.ext_authz`) from authz-server's answer; a hit replays the same metadata through
// header_to_metadata (wasm cannot write dynamic metadata). Compared through the access log.
import { strict as assert } from "node:assert";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { requireEnvoy } from "../../tools/envoy/harness.js";
import { METADATA_HEADER_PREFIX, cacheHits, send, settledHits, stableHits, startCacheWorld, type CacheWorld } from "../../tools/testing/authz-cache-world.js";

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface LogLine {
  path: string;
  status: string;
  metadata: Record<string, unknown> | null;
}

/** google.protobuf.Value{string_value: s}, base64: what a client would forge. */
function forgedValue(s: string): string {
  return Buffer.concat([Buffer.from([0x1a, s.length]), Buffer.from(s)]).toString("base64");
}

describe("authz-cache: dynamic metadata on hits in a real Envoy (ENVOY_BIN)", function () {
  this.timeout(60_000);
  let w: CacheWorld;
  let cached: number;
  let plain: number;

  const hits = () => cacheHits(w.envoys[0]!);

  /** The access-log line of `path` on `listener`, once Envoy has flushed it (about every second). */
  async function logLine(listener: string, path: string): Promise<LogLine> {
    const file = join(w.dir, "envoy-0", `${listener}-access.log`);
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (existsSync(file)) {
        const line = readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as LogLine).find((l) => l.path === path);
        if (line) return line;
      }
      if (Date.now() > deadline) throw new Error(`no access-log line for ${path} on ${listener}`);
      await delay(100);
    }
  }

  before(async function () {
    requireEnvoy(this);
    w = await startCacheWorld({ concurrency: 1, accessLogs: true });
    cached = w.envoys[0]!.listenerPort("cached");
    plain = w.envoys[0]!.listenerPort("plain");
    const h = { authorization: `Bearer ${await w.issuer.sign({ sub: "warmup", roles: ["reader"] })}` };
    const deadline = Date.now() + 5000;
    while ((await hits()) === 0) {
      if (Date.now() > deadline) throw new Error("no cache hit within 5 s");
      await send(cached, "/api/orders/0", h);
      await delay(20);
    }
  });

  after(async function () {
    await w?.stop();
  });

  it("sets on a hit the same ext_authz metadata the miss it learned from got, and what Envoy without the cache sets", async function () {
    const h = { authorization: `Bearer ${await w.issuer.sign({ sub: "metadata-user", roles: ["reader", "auditor"] })}` };
    const before = await stableHits(w.envoys[0]!);
    assert.equal((await send(cached, "/api/orders/7?n=miss", h)).status, 200);
    assert.equal((await send(cached, "/api/orders/7?n=hit", h)).status, 200);
    assert.equal(await settledHits(w.envoys[0]!, before + 1), before + 1, "the second request was a hit");
    assert.equal((await send(plain, "/api/orders/7?n=plain", h)).status, 200);

    const miss = await logLine("cached", "/api/orders/7?n=miss");
    const hit = await logLine("cached", "/api/orders/7?n=hit");
    const ref = await logLine("plain", "/api/orders/7?n=plain");
    console.log(`      miss: ${JSON.stringify(miss.metadata)}\n      hit:  ${JSON.stringify(hit.metadata)}`);
    assert.ok(miss.metadata && typeof miss.metadata === "object", "ext_authz set metadata on the miss");
    assert.equal(miss.metadata["subject"], "metadata-user");
    assert.deepEqual(miss.metadata["roles"], ["reader", "auditor"], "a list value keeps its type");
    // ext_authz adds its own round-trip time; a hit makes no round trip, so that key alone is not replayed.
    assert.equal(typeof miss.metadata["ext_authz_duration"], "number", "Envoy 1.40 ext_authz adds ext_authz_duration");
    const { ext_authz_duration: _m, ...missFromServer } = miss.metadata;
    assert.deepEqual(hit.metadata, missFromServer, "the hit replays the miss's metadata (decision id included)");
    // Without the cache: the same metadata but for the decision id of its own decision.
    const { decisionId: _a, ext_authz_duration: _d, ...refRest } = ref.metadata ?? {};
    const { decisionId: _b, ...hitRest } = hit.metadata ?? {};
    assert.deepEqual(hitRest, refRest);
  });

  it("never turns a client's metadata header into metadata, on a miss or on a hit", async function () {
    const token = `Bearer ${await w.issuer.sign({ sub: "forger", roles: ["reader"] })}`;
    const forged = { authorization: token, [`${METADATA_HEADER_PREFIX}peer`]: forgedValue("spiffe://evil"), [`${METADATA_HEADER_PREFIX}subject`]: forgedValue("admin") };
    const before = await stableHits(w.envoys[0]!);
    const first = await send(cached, "/api/orders/8?n=forged-miss", forged);
    const second = await send(cached, "/api/orders/8?n=forged-hit", forged);
    assert.equal(first.status, 200);
    assert.equal(second.status, 200);
    assert.equal(await settledHits(w.envoys[0]!, before + 1), before + 1, "the second request was a hit");
    for (const path of ["/api/orders/8?n=forged-miss", "/api/orders/8?n=forged-hit"]) {
      const line = await logLine("cached", path);
      assert.equal(line.metadata?.["subject"], "forger", path);
      assert.equal(line.metadata?.["peer"], undefined, path);
    }
  });

  it("records that a cached denial carries no metadata: the filter answers it before header_to_metadata could run", async function () {
    const h = { authorization: `Bearer ${await w.issuer.sign({ sub: "denied-user", roles: ["reader"] })}` };
    const before = await stableHits(w.envoys[0]!);
    assert.equal((await send(cached, "/api/orders/export?n=deny-miss", h)).status, 403);
    assert.equal((await send(cached, "/api/orders/export?n=deny-hit", h)).status, 403);
    assert.equal(await settledHits(w.envoys[0]!, before + 1), before + 1, "the second denial was a hit");
    const miss = await logLine("cached", "/api/orders/export?n=deny-miss");
    const hit = await logLine("cached", "/api/orders/export?n=deny-hit");
    console.log(`      denial miss: ${JSON.stringify(miss.metadata)}\n      denial hit:  ${JSON.stringify(hit.metadata)}`);
    assert.equal(miss.metadata?.["decision"], "deny", "ext_authz sets metadata on a denial");
    assert.equal(hit.metadata, null, "a denial served from the cache has none (README: Dynamic metadata)");
  });
});
