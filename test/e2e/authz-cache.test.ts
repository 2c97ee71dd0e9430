// The authz-cache filter in a real Envoy (ENVOY_BIN): hits skip ext_authz, answers equal authz-server's
// (differential against a listener without the cache), invalidation by revocation, reload and a key
// rotated out of the JWKS within the stated bound, token expiry, CEL on a header, deny-overrides, hostile clients and upstreams.
import { strict as assert } from "node:assert";
import { writeFileSync } from "node:fs";
import { requireEnvoy } from "../../tools/envoy/harness.js";
import {
  SKIP_HEADER, SKIP_TOKEN, cacheHits, cachePolicy, send, startCacheWorld, type CacheWorld, type Reply,
} from "../../tools/testing/authz-cache-world.js";
import { AUDIENCE, ISSUER } from "../../tools/testing/e2e-authz.js";
import { startJwksServer, type JwksServer } from "../../tools/testing/jwks-server.js";
import { newKey, signJwt, type TestKey } from "../../tools/testing/tokens.js";

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));
const IDENTITY = ["x-user-id", "x-user-tier", "x-user-roles"] as const;

function upstreamHeaders(r: Reply): Record<string, string> {
  return (JSON.parse(r.body) as { headers: Record<string, string> }).headers;
}

/** What a client and upstream can observe of a decision, minus the per-decision id. */
function observed(r: Reply): string {
  if (r.status === 200) {
    const h = upstreamHeaders(r);
    return `200 ${IDENTITY.map((n) => `${n}=${h[n] ?? "-"}`).join(" ")} skip=${h[SKIP_HEADER] ?? "-"} nonce=${h["x-meshward-cache-nonce"] ? "set" : "-"}`;
  }
  const body = r.body.replace(/"decisionId":"[0-9a-f]+"/, "");
  return `${r.status} ${body} www=${String(r.headers["www-authenticate"] ?? "-")} directive=${r.headers["x-meshward-cache"] ? "leaked" : "-"}`;
}

/** Milliseconds from `t0` until `cond` holds, checked every `stepMs`; -1 when not within 3 s. */
async function msUntil(t0: number, cond: () => Promise<boolean>, stepMs: number): Promise<number> {
  while (Date.now() - t0 < 3000) {
    if (await cond()) return Date.now() - t0;
    await delay(stepMs);
  }
  return -1;
}

async function waitFor(cond: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(20);
  }
}

describe("authz-cache in a real Envoy (ENVOY_BIN)", function () {
  this.timeout(120_000);
  let w: CacheWorld;
  let cached: number;
  let plain: number;
  let bearer: (claims: Record<string, unknown>, expiresInSec?: number) => Promise<Record<string, string>>;

  before(async function () {
    requireEnvoy(this);
    w = await startCacheWorld({ concurrency: 4 });
    cached = w.envoys[0]!.listenerPort("cached");
    plain = w.envoys[0]!.listenerPort("plain");
    bearer = async (claims, exp) => ({ authorization: `Bearer ${await w.issuer.sign(claims, exp)}` });
    // The first epoch poll has landed once a cacheable decision is stored.
    const h = await bearer({ sub: "warmup", roles: ["reader"] });
    await waitFor(async () => {
      await send(cached, "/api/orders/0", h);
      return (await cacheHits(w.envoys[0]!)) > 0;
    }, 5000, "a first cache hit");
  });

  after(async function () {
    await w?.stop();
  });

  it("serves a repeat request without ext_authz, with the identity headers authz-server gave", async function () {
    const h = await bearer({ sub: "alice", roles: ["reader"], tier: "gold" });
    const first = await send(cached, "/api/orders/1", h);
    const checks = w.checks();
    const again = await send(cached, "/api/orders/1", { ...h, "x-unrelated": "varies-1" });
    const third = await send(cached, "/api/orders/1", { ...h, "x-unrelated": "varies-2" });
    assert.equal(w.checks(), checks, "no Check for a hit (an unreferenced header varied)");
    assert.equal(first.status, 200, first.body);
    assert.equal(observed(again), observed(first));
    assert.equal(observed(third), observed(first));
    assert.equal(upstreamHeaders(again)["x-user-id"], "alice");
    assert.equal(upstreamHeaders(again)["x-user-roles"], "reader");
    assert.equal(again.headers["x-meshward-decision-id"], first.headers["x-meshward-decision-id"], "a hit replays the learned decision id");
    assert.equal(again.headers["x-meshward-cache"], undefined, "directives never reach the client");
    assert.deepEqual(w.envoys[0]!.errorLines(), []);
  });

  it("never lets a client mark a hit or choose identity headers", async function () {
    const checks = w.checks();
    // The right skip token, sent by the client: the filter strips it, ext_authz runs and denies.
    const r = await send(cached, "/api/orders/1", { [SKIP_HEADER]: SKIP_TOKEN, "x-user-id": "root", "x-meshward-cache-nonce": "0".repeat(32) });
    assert.equal(r.status, 401, r.body);
    assert.equal(w.checks(), checks + 1);
    const h = await bearer({ sub: "bob", roles: ["reader"] });
    await send(cached, "/api/orders/1", h);
    const hit = await send(cached, "/api/orders/1", { ...h, "x-user-id": "root", "x-user-tier": "platinum", [SKIP_HEADER]: "guess" });
    assert.equal(hit.status, 200);
    const up = upstreamHeaders(hit);
    assert.equal(up["x-user-id"], "bob");
    assert.equal(up["x-user-tier"], undefined, "a client-sent identity header the decision did not set is removed on a hit");
    assert.equal(up[SKIP_HEADER], undefined, "the marker never reaches the upstream");
  });

  it("keys on a header a CEL condition reads, and on nothing else", async function () {
    const h = await bearer({ sub: "carol", roles: ["reader"] });
    const acme = await send(cached, "/api/tenant/x", { ...h, "x-tenant": "acme" });
    assert.equal(acme.status, 200);
    const checks = w.checks();
    const other = await send(cached, "/api/tenant/x", { ...h, "x-tenant": "other" });
    assert.equal(other.status, 403, "a different x-tenant is decided afresh");
    assert.equal(w.checks(), checks + 1);
    const none = await send(cached, "/api/tenant/x", h);
    assert.equal(none.status, 403);
    const acmeAgain = await send(cached, "/api/tenant/x", { ...h, "x-tenant": "acme" });
    assert.equal(acmeAgain.status, 200);
    const twoValues = await send(cached, "/api/tenant/x", { ...h, "x-tenant": ["acme", "acme"] as unknown as string });
    assert.equal(observed(twoValues), observed(await send(plain, "/api/tenant/x", { ...h, "x-tenant": ["acme", "acme"] as unknown as string })));
  });

  it("applies deny-overrides on a sibling path even when the allow is cached", async function () {
    const h = await bearer({ sub: "dave", roles: ["reader"] });
    assert.equal((await send(cached, "/api/orders/7", h)).status, 200);
    assert.equal((await send(cached, "/api/orders/7", h)).status, 200);
    const denied = await send(cached, "/api/orders/export", h);
    assert.equal(denied.status, 403);
    assert.match(denied.body, /denied_by_rule/);
    const checks = w.checks();
    const deniedAgain = await send(cached, "/api/orders/export", h);
    assert.equal(observed(deniedAgain), observed(denied), "a cached denial is the same denial");
    assert.equal(w.checks(), checks, "denials are cached too");
  });

  it("answers 431 like authz-server for a request over the policy's header limit, even when its key is cached", async function () {
    const h = await bearer({ sub: "heidi", roles: ["reader"] });
    assert.equal((await send(cached, "/api/orders/3", h)).status, 200);
    const checks = w.checks();
    assert.equal((await send(cached, "/api/orders/3", h)).status, 200);
    assert.equal(w.checks(), checks, "cached");
    // limits.maxHeaders is 40: the same keyed attributes with 45 unreferenced headers more.
    const many: Record<string, string> = { ...h };
    for (let i = 0; i < 45; i++) many[`x-pad-${i}`] = "x";
    const [a, b] = await Promise.all([send(cached, "/api/orders/3", many), send(plain, "/api/orders/3", many)]);
    assert.equal(b.status, 431, b.body);
    assert.equal(observed(a), observed(b));
  });

  it("never caches a decision that reads `now`", async function () {
    const before = w.checks();
    for (let i = 0; i < 3; i++) assert.equal((await send(cached, "/api/clock/x")).status, 200);
    assert.equal(w.checks(), before + 3);
  });

  it("stops serving an allow when the token expires during the TTL", async function () {
    const h = await bearer({ sub: "erin", roles: ["reader"] }, 3);
    assert.equal((await send(cached, "/api/orders/1", h)).status, 200);
    const checks = w.checks();
    assert.equal((await send(cached, "/api/orders/1", h)).status, 200);
    assert.equal(w.checks(), checks, "cached while the token is valid");
    // `exp` is whole seconds: wait past it (the JWT verifier's clock skew may accept it a little longer).
    await waitFor(async () => (await send(cached, "/api/orders/1", h)).status === 401, 60_000, "401 after exp");
    const plainAnswer = await send(plain, "/api/orders/1", h);
    assert.equal(plainAnswer.status, 401);
  });

  it("invalidates within the bound after a revocation, in every worker", async function () {
    const h = await bearer({ sub: "frank", roles: ["reader"] });
    assert.equal((await send(cached, "/api/orders/1", h)).status, 200);
    assert.equal((await send(cached, "/api/orders/1", h)).status, 200);
    const t0 = Date.now();
    await w.authz.revocations.revoke("sub", "frank", 60_000);
    const firstDeny = await msUntil(t0, async () => (await send(cached, "/api/orders/1", h)).status !== 200, 10);
    assert.ok(firstDeny >= 0 && firstDeny <= 1000, `denied ${firstDeny} ms after the revocation (bound 1000 ms)`);
    // After the bound, every request on every worker (fresh connections spread over 4 workers) is denied.
    await delay(Math.max(0, 1000 - (Date.now() - t0)));
    const after = await Promise.all(Array.from({ length: 40 }, () => send(cached, "/api/orders/1", h)));
    assert.deepEqual([...new Set(after.map((r) => r.status))], [401]);
    console.log(`      revocation took effect after ${firstDeny} ms`);
  });

  it("invalidates within the bound after a policy reload", async function () {
    const h = await bearer({ sub: "grace", roles: ["reader"] });
    assert.equal((await send(cached, "/api/orders/9", h)).status, 200);
    assert.equal((await send(cached, "/api/orders/9", h)).status, 200);
    const secretFile = `${w.dir}/cache-secret`;
    const jwks = `${w.dir}/jwks.json`;
    // The new policy denies /api/orders/9 to everyone.
    writeFileSync(w.policyFile, cachePolicy(jwks, secretFile).replace("  rules:\n", "  rules:\n    - name: no-nine\n      effect: deny\n      match: { paths: [\"/api/orders/9\"] }\n"));
    const t0 = Date.now();
    assert.ok(w.authz.holder.reload(), "reload accepted");
    const firstDeny = await msUntil(t0, async () => (await send(cached, "/api/orders/9", h)).status === 403, 10);
    assert.ok(firstDeny >= 0 && firstDeny <= 1000, `denied ${firstDeny} ms after the reload (bound 1000 ms)`);
    const stats = await w.envoys[0]!.stats("authz_cache");
    assert.ok((stats.get("wasmcustom.meshward_authz_cache_invalidations") ?? 0) >= 1);
    console.log(`      reload took effect after ${firstDeny} ms`);
  });

  it("agrees with Envoy without the cache on 10,000 random requests", async function () {
    this.timeout(300_000);
    const users = await Promise.all(
      [
        { sub: "u1", roles: ["reader"], tier: "gold" },
        { sub: "u2", roles: ["writer"] },
        { sub: "u3", roles: [] },
        { sub: "u4", roles: ["reader", "writer"], tier: "beta" },
        { sub: "u5", roles: ["reader"] },
      ].map((c) => w.issuer.sign(c, 3600)),
    );
    const paths = ["/api/orders/1", "/api/orders/2", "/api/orders/2?q=1", "/api/orders/export", "/api/tenant/a", "/api/clock/now", "/healthz", "/other", "/api/orders/a/b"];
    const hosts = ["api.example.com", "b.example.com", "API.example.com:80"];
    let seed = 42;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const requests = Array.from({ length: 10_000 }, () => {
      const headers: Record<string, string> = { host: hosts[rnd(hosts.length)]! };
      const u = rnd(users.length + 2);
      if (u < users.length) headers.authorization = `Bearer ${users[u]}`;
      else if (u === users.length) headers.authorization = "Bearer not-a-token";
      const tenant = rnd(3);
      if (tenant === 0) headers["x-tenant"] = "acme";
      else if (tenant === 1) headers["x-tenant"] = "other";
      headers["x-noise"] = String(rnd(1000));
      if (rnd(10) === 0) headers["x-user-id"] = "forged";
      return { path: paths[rnd(paths.length)]!, method: rnd(4) === 0 ? "POST" : "GET", headers };
    });
    const statsBefore = await w.envoys[0]!.stats("authz_cache");
    let mismatches = 0;
    const examples: string[] = [];
    const CONCURRENCY = 16;
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < requests.length) {
          const q = requests[next++]!;
          const [a, b] = await Promise.all([send(cached, q.path, q.headers, q.method), send(plain, q.path, q.headers, q.method)]);
          if (observed(a) !== observed(b)) {
            mismatches++;
            if (examples.length < 5) examples.push(`${q.method} ${q.path} ${JSON.stringify(q.headers).slice(0, 120)}: cached ${observed(a)} | plain ${observed(b)}`);
          }
        }
      }),
    );
    const stats = await w.envoys[0]!.stats("authz_cache");
    const hits = (stats.get("wasmcustom.meshward_authz_cache_hits") ?? 0) - (statsBefore.get("wasmcustom.meshward_authz_cache_hits") ?? 0);
    const misses = (stats.get("wasmcustom.meshward_authz_cache_misses") ?? 0) - (statsBefore.get("wasmcustom.meshward_authz_cache_misses") ?? 0);
    console.log(`      10,000 requests: ${hits} hits, ${misses} misses, ${mismatches} mismatches (no policy change during the run: staleness window empty)`);
    assert.equal(mismatches, 0, examples.join("\n"));
    assert.ok(hits > 1000, `the mix hits the cache (${hits} hits)`);
  });
  it("differs from Envoy without the cache only inside the staleness window while users are revoked and restored", async function () {
    this.timeout(180_000);
    const subs = ["s1", "s2", "s3", "s4"];
    const tokens = await Promise.all(subs.map((sub) => w.issuer.sign({ sub, roles: ["reader"] }, 3600)));
    const paths = ["/api/orders/1", "/api/orders/2", "/api/orders/export", "/healthz"];
    const changes: number[] = [];
    const WINDOW_MS = 1000;
    let stop = false;
    // Every 2 s revoke or restore one of the users: half of the time lies outside every window.
    const changer = (async () => {
      let k = 0;
      while (!stop) {
        await delay(2000);
        const sub = subs[k % subs.length]!;
        if (Math.floor(k / subs.length) % 2 === 0) await w.authz.revocations.revoke("sub", sub, 60_000);
        else await w.authz.revocations.unrevoke("sub", sub);
        changes.push(Date.now());
        k++;
      }
    })();
    let inWindow = 0;
    let outside = 0;
    const examples: string[] = [];
    let n = 0;
    const deadline = Date.now() + 14_000;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        // Time-bounded so at least 6 changes happen however fast the machine is; the count is a safety cap.
        while (n < 60_000 && Date.now() < deadline) {
          const i = n++;
          const headers = { authorization: `Bearer ${tokens[i % tokens.length]}` };
          const path = paths[(i >> 2) % paths.length]!;
          const sent = Date.now();
          const [a, b] = await Promise.all([send(cached, path, headers), send(plain, path, headers)]);
          if (observed(a) === observed(b)) continue;
          // A change made before this request was answered may not have reached the filter yet.
          if (changes.some((c) => c <= Date.now() && sent - c <= WINDOW_MS)) inWindow++;
          else {
            outside++;
            if (examples.length < 3) examples.push(`${path}: cached ${observed(a)} | plain ${observed(b)}`);
          }
        }
      }),
    );
    stop = true;
    await changer;
    console.log(`      ${n} requests over ${changes.length} revocation changes: ${inWindow} differences inside the ${WINDOW_MS} ms window, ${outside} outside`);
    assert.equal(outside, 0, examples.join("\n"));
    assert.ok(changes.length >= 5);
  });
});

describe("authz-cache: a signing key rotated out of the JWKS (ENVOY_BIN)", function () {
  this.timeout(60_000);
  let w: CacheWorld;
  let jwks: JwksServer;
  const kept = newKey("ES256");
  const removed = newKey("ES256");
  const token = (key: TestKey, sub: string) =>
    ({ authorization: `Bearer ${signJwt(key, { iss: ISSUER, aud: AUDIENCE, sub, roles: ["reader"], iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 300 })}` });

  before(async function () {
    requireEnvoy(this);
    // authz-server fetches the keys from a loopback JWKS endpoint (a URI, not a file), refetching on an unknown kid.
    jwks = await startJwksServer([kept.jwk, removed.jwk]);
    w = await startCacheWorld({ concurrency: 2, policy: (_file, secret) => cachePolicy({ uri: jwks.url, cooldown: "100ms" }, secret) });
  });
  after(async () => {
    await w?.stop();
    await jwks?.stop();
  });

  it("serves hits for a token until its key is removed, then authz-server's 401 within the bound", async function () {
    const cached = w.envoys[0]!.listenerPort("cached");
    const plain = w.envoys[0]!.listenerPort("plain");
    const h = token(removed, "rotated-out");
    const hits = () => cacheHits(w.envoys[0]!);
    await waitFor(async () => (await send(cached, "/api/orders/1", h)).status === 200 && (await hits()) > 0, 5000, "a first cache hit");
    const checks = w.checks();
    const before = await send(cached, "/api/orders/1", h);
    assert.equal(before.status, 200);
    assert.equal(upstreamHeaders(before)["x-user-id"], "rotated-out");
    assert.equal(w.checks(), checks, "before the removal the token's allow is a hit");

    jwks.setKeys([kept.jwk]);
    // The refresh that drops the key: here a token with a kid authz-server has never seen makes it refetch
    // (a timed refresh ahead of max-age does the same); the key-set change is a new epoch.
    const t0 = Date.now();
    assert.equal((await send(plain, "/api/orders/1", token(newKey("ES256"), "stranger"))).status, 401);
    const firstDeny = await msUntil(t0, async () => (await send(cached, "/api/orders/1", h)).status === 401, 5);
    assert.ok(firstDeny >= 0 && firstDeny <= 1000, `denied ${firstDeny} ms after the refresh (bound 1000 ms)`);
    await delay(Math.max(0, 1000 - (Date.now() - t0)));
    const afterChecks = w.checks();
    for (let i = 0; i < 10; i++) {
      const [c, p] = await Promise.all([send(cached, "/api/orders/1", h), send(plain, "/api/orders/1", h)]);
      assert.equal(c.status, 401);
      assert.equal(observed(c), observed(p), "the cached chain answers as authz-server without the cache");
      assert.match(c.body, /unknown_kid/);
    }
    assert.ok(w.checks() - afterChecks >= 20, "after the bound every request is decided afresh by authz-server");
    const still = token(kept, "kept");
    assert.equal((await send(cached, "/api/orders/1", still)).status, 200, "the kept key still verifies");
    console.log(`      the removed key's allow stopped being served ${firstDeny} ms after authz-server's JWKS refresh`);
    assert.deepEqual(w.envoys[0]!.errorLines(), []);
  });
});
