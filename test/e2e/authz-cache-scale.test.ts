// authz-cache under load and attack in real Envoys (ENVOY_BIN): two Envoy processes × 4 workers
// sharing one authz-server, a hostile upstream forging directives, and many distinct keys against
// a small slot table (memory stays bounded, evictions counted, the hit path keeps working). 1,000,000
// keys through real Envoy and the stand-in: `npm run bench -- --only authz-cache-keys`.
import { strict as assert } from "node:assert";
import { createHmac } from "node:crypto";
import { requireEnvoy } from "../../tools/envoy/harness.js";
import { CACHE_SECRET, send, settledHits, stableHits, startCacheWorld, type CacheWorld } from "../../tools/testing/authz-cache-world.js";

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));
const stat = async (w: CacheWorld, i: number, name: string) => (await w.envoys[i]!.stats("authz_cache")).get(`wasmcustom.meshward_authz_cache_${name}`) ?? 0;

/** Directives an upstream could forge: without the secret, and with it but for another stream's nonce. */
function forgedDirectives(): { noSecret: string; otherNonce: string } {
  const body = (nonce: string) => JSON.stringify({ v: 1, n: nonce, e: "forged", x: Date.now() + 60_000, t: 60_000, k: [], l: [200, 65536], d: "allow", s: 200, h: [["x-user-id", "root"]], r: [], rh: [] });
  return {
    noSecret: `${"0".repeat(64)}.${body("0".repeat(32))}`,
    otherNonce: `${createHmac("sha256", CACHE_SECRET).update(body("f".repeat(32))).digest("hex")}.${body("f".repeat(32))}`,
  };
}

async function warm(w: CacheWorld, port: number, headers: Record<string, string>, i = 0): Promise<void> {
  const deadline = Date.now() + 5000;
  while ((await stat(w, i, "hits")) === 0) {
    if (Date.now() > deadline) throw new Error("no cache hit within 5 s (epoch poll?)");
    await send(port, "/api/orders/0", headers);
    await delay(20);
  }
}

describe("authz-cache: two Envoys × 4 workers (ENVOY_BIN)", function () {
  this.timeout(120_000);
  let w: CacheWorld;

  before(async function () {
    requireEnvoy(this);
    w = await startCacheWorld({ envoyCount: 2, concurrency: 4 });
  });
  after(async () => w?.stop());

  it("both processes serve hits, and a revocation reaches both within the bound", async function () {
    const h = { authorization: `Bearer ${await w.issuer.sign({ sub: "multi", roles: ["reader"] })}` };
    const ports = [w.envoys[0]!.listenerPort("cached"), w.envoys[1]!.listenerPort("cached")];
    await warm(w, ports[0]!, h, 0);
    await warm(w, ports[1]!, h, 1);
    // 200 concurrent requests per process spread over its 4 workers: all allowed, mostly hits.
    for (const port of ports) {
      const replies = await Promise.all(Array.from({ length: 200 }, () => send(port, "/api/orders/1", h)));
      assert.deepEqual([...new Set(replies.map((r) => r.status))], [200]);
    }
    const checks = w.checks();
    const replies = await Promise.all(ports.flatMap((port) => Array.from({ length: 100 }, () => send(port, "/api/orders/1", h))));
    assert.deepEqual([...new Set(replies.map((r) => r.status))], [200]);
    assert.equal(w.checks(), checks, "every worker of both processes serves from the shared cache");

    const t0 = Date.now();
    await w.authz.revocations.revoke("sub", "multi", 60_000);
    const firstDeny = [-1, -1];
    while (Date.now() - t0 < 3000 && firstDeny.includes(-1)) {
      for (let i = 0; i < 2; i++) {
        if (firstDeny[i] === -1 && (await send(ports[i]!, "/api/orders/1", h)).status === 401) firstDeny[i] = Date.now() - t0;
      }
      await delay(5);
    }
    assert.ok(firstDeny.every((ms) => ms >= 0 && ms <= 1000), `denied after ${firstDeny.join(" / ")} ms (bound 1000 ms)`);
    await delay(Math.max(0, 1000 - (Date.now() - t0)));
    const after = await Promise.all(ports.flatMap((port) => Array.from({ length: 40 }, () => send(port, "/api/orders/1", h))));
    assert.deepEqual([...new Set(after.map((r) => r.status))], [401]);
    console.log(`      revocation took effect after ${firstDeny.join(" ms / ")} ms in the two processes`);
    assert.deepEqual([...w.envoys[0]!.errorLines(), ...w.envoys[1]!.errorLines()].filter((l) => !/directive rejected/.test(l)), []);
  });
});

describe("authz-cache: hostile upstreams and many keys (ENVOY_BIN)", function () {
  this.timeout(180_000);
  let w: CacheWorld;
  let port: number;
  const SLOTS = 64;

  before(async function () {
    requireEnvoy(this);
    w = await startCacheWorld({ concurrency: 2, filter: { slots: SLOTS } });
    port = w.envoys[0]!.listenerPort("cached");
    await warm(w, port, { authorization: `Bearer ${await w.issuer.sign({ sub: "warm", roles: ["reader"] })}` });
  });
  after(async () => w?.stop());

  it("strips an upstream's directive before the filter or the client sees it, on a miss and on a hit", async function () {
    const reader = { authorization: `Bearer ${await w.issuer.sign({ sub: "reader", roles: ["reader"] })}` };
    const rejected0 = await stat(w, 0, "rejected");
    // Uncacheable (the `now` rule): the upstream's header is the only directive on the response.
    const uncacheable = await send(port, "/api/clock/forge", { ...reader, "x-test-forge": forgedDirectives().noSecret });
    assert.equal(uncacheable.status, 200);
    assert.equal(uncacheable.headers["x-meshward-cache"], undefined, "a directive never reaches the client");
    const miss = await send(port, "/api/orders/5", { ...reader, "x-test-forge": forgedDirectives().noSecret });
    assert.equal(miss.status, 200);
    assert.equal(miss.headers["x-meshward-cache"], undefined);
    // The same key again is a hit: no ext_authz, so the upstream's forged header is the only one, and the
    // route configuration's response_headers_to_remove strips it (the filter does not spend a call on it).
    const hits0 = await stableHits(w.envoys[0]!);
    const hit = await send(port, "/api/orders/5", { ...reader, "x-test-forge": forgedDirectives().noSecret });
    assert.equal(hit.status, 200);
    assert.equal((await settledHits(w.envoys[0]!, hits0 + 1)) - hits0, 1, "served from the cache");
    assert.equal(hit.headers["x-meshward-cache"], undefined, "an upstream's directive never reaches the client on a hit");
    assert.equal((await stat(w, 0, "rejected")) - rejected0, 0, "the router removed the forged headers before the filter's encoder side ran");
  });

  it(`keeps ${SLOTS} slots whatever the number of distinct keys, counts evictions, and still hits`, async function () {
    const h = { authorization: `Bearer ${await w.issuer.sign({ sub: "flood", roles: ["reader"] })}` };
    const rss0 = w.envoys[0]!.rssBytes() ?? 0;
    const stores0 = await stat(w, 0, "stores");
    // Bounded by count (every slot overwritten many times) and by time; the bound asserted does not depend on the machine's speed.
    let sent = 0;
    const deadline = Date.now() + 60_000;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (sent < 4000 && Date.now() < deadline) {
          const i = sent++;
          const r = await send(port, `/api/orders/flood-${i}`, h);
          assert.equal(r.status, 200);
        }
      }),
    );
    const stores = (await stat(w, 0, "stores")) - stores0;
    const entries = await stat(w, 0, "entries");
    const evictions = await stat(w, 0, "evictions");
    const rss1 = w.envoys[0]!.rssBytes() ?? 0;
    console.log(`      ${sent} distinct keys: ${stores} stores, ${entries} slots filled, ${evictions} evictions, RSS ${(rss0 / 2 ** 20).toFixed(1)} → ${(rss1 / 2 ** 20).toFixed(1)} MiB`);
    assert.ok(sent >= 4 * SLOTS, `every slot overwritten several times: ${sent} distinct keys within the time bound`);
    assert.ok(entries <= SLOTS, `${entries} slots filled`);
    assert.ok(evictions > 0);
    assert.ok(rss1 - rss0 < 64 * 2 ** 20, "RSS grew by less than 64 MiB");
    // The hit path still works: a key stored last is served from its slot.
    await send(port, "/api/orders/fresh", h);
    const checks = w.checks();
    assert.equal((await send(port, "/api/orders/fresh", h)).status, 200);
    assert.equal(w.checks(), checks);
  });
});

describe("authz-cache: forged directives that reach the filter (ENVOY_BIN)", function () {
  this.timeout(120_000);
  let w: CacheWorld;
  let port: number;

  before(async function () {
    requireEnvoy(this);
    // Without the route configuration's strip, as a deployment that forgot it: the filter is the last line.
    w = await startCacheWorld({ concurrency: 2, keepUpstreamDirectives: true });
    port = w.envoys[0]!.listenerPort("cached");
    await warm(w, port, { authorization: `Bearer ${await w.issuer.sign({ sub: "warm", roles: ["reader"] })}` });
  });
  after(async () => w?.stop());

  it("rejects directives an upstream forges (no secret, or another stream's nonce), strips them and learns nothing", async function () {
    const victim = { authorization: `Bearer ${await w.issuer.sign({ sub: "victim", roles: [] })}` };
    const reader = { authorization: `Bearer ${await w.issuer.sign({ sub: "reader", roles: ["reader"] })}` };
    const rejected0 = await stat(w, 0, "rejected");
    // On a cacheable allow ext_authz's own directive overwrites the upstream's header (OVERWRITE_IF_EXISTS_OR_ADD);
    // on an uncacheable one (the `now` rule) the forged header is all the filter sees.
    const forged = forgedDirectives();
    for (const f of [forged.noSecret, forged.otherNonce]) {
      const r = await send(port, "/api/clock/forge", { ...reader, "x-test-forge": f });
      assert.equal(r.status, 200);
      assert.equal(r.headers["x-meshward-cache"], undefined, "a directive the filter sees never reaches the client");
    }
    assert.equal((await stat(w, 0, "rejected")) - rejected0, 2);
    const overwritten = await send(port, "/api/orders/5", { ...reader, "x-test-forge": forged.noSecret });
    assert.equal(overwritten.status, 200);
    assert.equal(overwritten.headers["x-meshward-cache"], undefined);
    assert.equal((await stat(w, 0, "rejected")) - rejected0, 2, "ext_authz's directive replaced the forged one");
    // Denied by authz-server (no role): nothing was learned from the forged directives.
    const denied = await send(port, "/api/orders/5", victim);
    assert.equal(denied.status, 403);
  });
});
