// Component tests of the JWKS / OIDC discovery key source against a loopback identity provider.
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { Registry } from "prom-client";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { createKeySource, createKeySourceForProvider, DEFAULT_KEY_SOURCE_TUNING, jwksKeySourceFactory, parseJwks, type JwksKeySource, type KeySourceTuning } from "../../../authz-server/src/credentials/jwks.js";
import { discoveryUrl } from "../../../authz-server/src/credentials/discovery.js";
import { KeySourceError } from "../../../authz-server/src/credentials/key-source.js";
import { newKey, startIdp, type IdpServer } from "./fixtures/idp-server.js";
import { systemClock } from "../../../authz-server/src/clock.js";

const NO_TIMERS: Partial<KeySourceTuning> = { backgroundRefresh: false, retryMinMs: 0, retryMaxMs: 0 };

async function rejectsWith(p: Promise<unknown>, code: "unavailable" | "unknown_kid", detail?: RegExp): Promise<KeySourceError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof KeySourceError, `expected KeySourceError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (detail) assert.match(err.message, detail);
    return err;
  }
  assert.fail(`expected a KeySourceError ${code}`);
}

describe("credentials/jwks: parsing a JWKS into node:crypto keys", () => {
  it("keeps RSA, EC and OKP signing keys with their kid and alg, and skips keys that cannot verify signatures", () => {
    const ec = newKey("ES256");
    const rsa = newKey("RS256");
    const ed = generateKeyPairSync("ed25519").publicKey.export({ format: "jwk" });
    const weakRsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ format: "jwk" });
    const parsed = parseJwks({
      keys: [
        ec.jwk,
        rsa.jwk,
        { ...ed, kid: "ed" },
        { kty: "oct", k: "c2VjcmV0", kid: "hmac" },
        { ...ec.jwk, kid: "enc", use: "enc" },
        { ...weakRsa, kid: "weak" },
        { kty: "EC", crv: "secp256k1", x: "AAAA", y: "AAAA", kid: "k1" },
        { ...ec.jwk, kid: "wrong-alg", alg: "RS256" },
        { ...ec.jwk, kid: "ops", key_ops: ["encrypt"] },
        { ...ec.jwk },
        "not-a-key",
      ],
    });
    assert.deepEqual(parsed.keys.map((k) => [k.kid, k.alg, k.key.asymmetricKeyType]), [
      [ec.kid, "ES256", "ec"],
      [rsa.kid, "RS256", "rsa"],
      ["ed", undefined, "ed25519"],
    ]);
    assert.deepEqual(parsed.skipped.map((s) => s.kid), ["hmac", "enc", "weak", "k1", "wrong-alg", "ops", ec.kid, undefined]);
    assert.match(parsed.skipped.find((s) => s.kid === "weak")?.reason ?? "", /shorter than 2048/);
    assert.match(parsed.skipped.find((s) => s.kid === ec.kid)?.reason ?? "", /duplicate kid/);
  });

  it("refuses a document without a keys array", () => {
    assert.throws(() => parseJwks({ nope: [] }), /keys array/);
    assert.throws(() => parseJwks(null), /keys array/);
  });

  it("returns only keys whose type and curve fit the token's alg", async () => {
    const ec = newKey("ES256");
    const rsa = newKey("RS256");
    const src = createKeySource({ provider: "inline", jwks: { keys: [ec.jwk, { ...rsa.jwk, alg: undefined }] } });
    assert.deepEqual((await src.getKeys({ alg: "RS256" })).map((k) => k.kid), [rsa.kid]);
    assert.deepEqual((await src.getKeys({ alg: "ES256" })).map((k) => k.kid), [ec.kid]);
    assert.deepEqual(await src.getKeys({ alg: "ES256", kid: rsa.kid }), []);
    assert.deepEqual(await src.getKeys({ alg: "PS256", kid: rsa.kid }).then((ks) => ks.map((k) => k.kid)), [rsa.kid]);
    await rejectsWith(src.getKeys({ alg: "ES256", kid: "nope" }), "unknown_kid");
  });
});

describe("credentials/jwks: OIDC discovery and JWKS fetching from a loopback IdP", function () {
  let idp: IdpServer;
  let t: number;
  const now = (): number => t;
  let sources: JwksKeySource[] = [];
  const make = (jwks: Parameters<typeof createKeySource>[0]["jwks"], tuning: Partial<KeySourceTuning> = {}, registry?: Registry, issuer?: string): JwksKeySource => {
    const s = createKeySource({ provider: "corp", issuer: issuer ?? idp.issuer, jwks, tuning: { ...NO_TIMERS, ...tuning } }, registry ? { now, registry } : { now });
    sources.push(s);
    return s;
  };

  beforeEach(async () => {
    idp = await startIdp();
    t = 1_000_000;
  });
  afterEach(async () => {
    for (const s of sources) s.close();
    sources = [];
    await idp.close();
  });

  it("builds the discovery URL from the issuer without a trailing slash", () => {
    assert.equal(discoveryUrl("https://idp.example.com/"), "https://idp.example.com/.well-known/openid-configuration");
    assert.equal(discoveryUrl("https://idp.example.com/realms/x"), "https://idp.example.com/realms/x/.well-known/openid-configuration");
  });

  it("resolves jwks_uri through discovery when the document names the configured issuer", async () => {
    const src = make({ discovery: true });
    const keys = await src.getKeys({ alg: "ES256", kid: idp.keys[0]!.kid });
    assert.equal(keys.length, 1);
    assert.equal(idp.hitCount("/.well-known/openid-configuration"), 1);
    assert.equal(idp.hitCount("/jwks.json"), 1);
    assert.deepEqual(src.status(), { ready: true, keyCount: 1 });
  });

  it("refuses a discovery document whose issuer differs: not ready, /readyz detail says why, lookups are unavailable (503 class)", async () => {
    idp.issuer = "https://evil.example.com/";
    const src = make({ discovery: true }, {}, undefined, `${idp.url}/`);
    await rejectsWith(src.getKeys({ alg: "ES256", kid: idp.keys[0]!.kid }), "unavailable", /issuer mismatch/);
    const st = src.status();
    assert.equal(st.ready, false);
    assert.match(st.detail ?? "", /provider corp: discovery issuer mismatch: document names "https:\/\/evil\.example\.com\/"/);
    assert.equal(idp.hitCount("/jwks.json"), 0, "the JWKS of a mismatching issuer is never fetched");
  });

  it("refuses plain http to a non-loopback host at configuration time", () => {
    assert.throws(() => make({ uri: "http://idp.example.com/jwks.json" }), /must use https/);
  });

  it("serves a rotation without failed lookups: a token with the new kid triggers one refetch and both keys keep working", async () => {
    const src = make({ uri: `${idp.url}/jwks.json` });
    const old = idp.keys[0]!;
    await src.refresh();
    let failures = 0;
    let ok = 0;
    let rotated: string | undefined;
    for (let i = 0; i < 200; i++) {
      if (i === 50) rotated = idp.rotate().kid;
      if (i === 150) idp.keys = idp.keys.filter((k) => k.kid !== old.kid);
      const kids = rotated ? [old.kid, rotated] : [old.kid];
      const results = await Promise.allSettled(kids.map((kid) => src.getKeys({ alg: "ES256", kid })));
      for (const r of results) if (r.status === "fulfilled" && r.value.length === 1) ok++; else failures++;
      t += 10;
    }
    assert.equal(failures, 0);
    assert.equal(ok, 50 + 150 * 2);
    assert.equal(idp.hitCount("/jwks.json"), 2, "one initial fetch, one refetch for the new kid");
  });

  it("names its key set: the id changes when a refresh adds or removes a key, not when it returns the same set in another order", async () => {
    const src = make({ uri: `${idp.url}/jwks.json` });
    assert.equal(src.keySetId(), "", "no keys loaded yet");
    await src.refresh();
    const one = src.keySetId();
    assert.match(one, /^[A-Za-z0-9_-]{22}$/);
    const added = idp.rotate();
    await src.refresh();
    const two = src.keySetId();
    assert.notEqual(two, one);
    idp.keys = [...idp.keys].reverse();
    await src.refresh();
    assert.equal(src.keySetId(), two, "order does not matter");
    const other = make({ uri: `${idp.url}/jwks.json` });
    await other.refresh();
    assert.equal(other.keySetId(), two, "another process fetching the same JWKS names it alike");
    idp.keys = idp.keys.filter((k) => k.kid !== added.kid);
    await src.refresh();
    assert.equal(src.keySetId(), one, "the removal is a change back to the first set");
    // Same kid, other key material: a different set.
    const kid = idp.keys[0]!.kid;
    const fresh = newKey("ES256");
    idp.keys = [{ ...fresh, kid, jwk: { ...fresh.jwk, kid } }];
    await src.refresh();
    assert.notEqual(src.keySetId(), one);
  });

  it("keeps serving known keys while the endpoint is down, and answers an unknown kid as unavailable (503 class, cannot tell)", async () => {
    const src = make({ uri: `${idp.url}/jwks.json` }, { fetchTimeoutMs: 300 });
    const kid = idp.keys[0]!.kid;
    await src.refresh();
    idp.mode = "down";
    t += 3_600_000; // past every lifetime: the next lookup refreshes in the background
    assert.equal((await src.getKeys({ alg: "ES256", kid })).length, 1);
    await src.refresh();
    assert.equal((await src.getKeys({ alg: "ES256", kid })).length, 1, "stale key still served");
    t += 20_000;
    await rejectsWith(src.getKeys({ alg: "ES256", kid: "rotated-away" }), "unavailable", /not among the cached keys.*jwks fetch failed \(network\)/);
    const st = src.status();
    assert.equal(st.ready, true);
    assert.match(st.detail ?? "", /serving cached keys; last refresh failed/);
  });

  it("refuses an unknown kid as unknown_kid (401 class) when the endpoint answers and the kid is not there", async () => {
    const src = make({ uri: `${idp.url}/jwks.json` });
    await src.refresh();
    t += 60_000;
    await rejectsWith(src.getKeys({ alg: "ES256", kid: "forged" }), "unknown_kid", /no key with kid "forged"/);
    assert.equal(idp.hitCount("/jwks.json"), 2);
  });

  it("bounds refetches by the cooldown under a flood of distinct unknown kids, and does not refetch a negatively cached kid", async () => {
    const registry = new Registry();
    const src = make({ uri: `${idp.url}/jwks.json` }, { unknownKidCooldownMs: 10_000, negativeCacheTtlMs: 60_000, negativeCacheMax: 16 }, registry);
    await src.refresh();
    const start = t;
    for (let i = 0; i < 300; i++) {
      await rejectsWith(src.getKeys({ alg: "ES256", kid: `flood-${i}` }), "unknown_kid");
      t += 100;
    }
    const elapsed = t - start; // 30 s
    const refetches = idp.hitCount("/jwks.json") - 1;
    assert.ok(refetches >= 1 && refetches <= Math.ceil(elapsed / 10_000), `refetches=${refetches}`);
    const before = idp.hitCount("/jwks.json");
    t += 10_000;
    await rejectsWith(src.getKeys({ alg: "ES256", kid: "flood-299" }), "unknown_kid");
    assert.equal(idp.hitCount("/jwks.json"), before, "negatively cached kid does not trigger a refetch");
    const text = await registry.metrics();
    assert.match(text, /meshward_jwks_unknown_kid_total\{provider="corp",outcome="cooldown"\} \d+/);
    assert.match(text, /meshward_jwks_unknown_kid_total\{provider="corp",outcome="negative_cached"\} 1/);
  });

  it("single-flights concurrent lookups: 50 simultaneous unknown kids cause one fetch, and 50 cold lookups one initial fetch", async () => {
    idp.mode = "slow";
    idp.slowMs = 100;
    const src = make({ uri: `${idp.url}/jwks.json` });
    const kid0 = idp.keys[0]!.kid;
    const cold = await Promise.all(Array.from({ length: 50 }, () => src.getKeys({ alg: "ES256", kid: kid0 })));
    assert.ok(cold.every((k) => k.length === 1));
    assert.equal(idp.hitCount("/jwks.json"), 1);
    const fresh = idp.rotate().kid;
    t += 60_000;
    const results = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => src.getKeys({ alg: "ES256", kid: i % 2 === 0 ? fresh : `unknown-${i}` })));
    assert.equal(idp.hitCount("/jwks.json"), 2);
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 25);
    assert.ok(results.every((r) => r.status === "fulfilled" || (r.reason as KeySourceError).code === "unknown_kid"));
  });

  for (const mode of ["garbage", "oversized", "empty", "http500"] as const) {
    it(`keeps the stale keys when the endpoint returns ${mode}, and reports why`, async () => {
      const registry = new Registry();
      const src = make({ uri: `${idp.url}/jwks.json` }, { maxBytes: 256 * 1024 }, registry);
      const kid = idp.keys[0]!.kid;
      await src.refresh();
      idp.mode = mode;
      idp.rotate({ retireOld: true });
      t += 3_600_000;
      await src.refresh();
      assert.equal((await src.getKeys({ alg: "ES256", kid })).length, 1);
      const expected = { garbage: /invalid_json/, oversized: /too_large/, empty: /no usable signing key/, http500: /HTTP 500/ }[mode];
      assert.match(src.status().detail ?? "", expected);
      const reason = { garbage: "invalid_json", oversized: "too_large", empty: "invalid_jwks", http500: "http_status" }[mode];
      assert.match(await registry.metrics(), new RegExp(`meshward_jwks_fetch_failures_total\\{provider="corp",document="jwks",reason="${reason}"\\} 1`));
      assert.match(await registry.metrics(), /meshward_jwks_keys\{provider="corp"\} 1/);
    });
  }

  it("times out a slow endpoint and reports the source unavailable when no key was ever loaded", async () => {
    idp.mode = "slow";
    idp.slowMs = 2_000;
    const src = make({ uri: `${idp.url}/jwks.json` }, { fetchTimeoutMs: 150 });
    await rejectsWith(src.getKeys({ alg: "ES256", kid: idp.keys[0]!.kid }), "unavailable", /timeout/);
    assert.equal(src.status().ready, false);
  });

  it("honours Cache-Control max-age within bounds: refresh starts in the background at 80% of the lifetime", async () => {
    idp.cacheControl = "public, max-age=5"; // clamped up to the 60 s minimum
    const src = make({ uri: `${idp.url}/jwks.json` });
    const kid = idp.keys[0]!.kid;
    await src.refresh();
    t += 47_000;
    await src.getKeys({ alg: "ES256", kid });
    assert.equal(idp.hitCount("/jwks.json"), 1);
    t += 2_000;
    await src.getKeys({ alg: "ES256", kid });
    await src.refresh(); // joins the background fetch the lookup started
    assert.equal(idp.hitCount("/jwks.json"), 2);
    idp.cacheControl = "max-age=31536000"; // clamped down to 24 h
    await src.refresh();
    const n = idp.hitCount("/jwks.json");
    t += 0.79 * 24 * 3_600_000;
    await src.getKeys({ alg: "ES256", kid });
    assert.equal(idp.hitCount("/jwks.json"), n);
    t += 0.02 * 24 * 3_600_000;
    await src.getKeys({ alg: "ES256", kid });
    await src.refresh();
    assert.equal(idp.hitCount("/jwks.json"), n + 1);
  });

  it("refreshes before expiry on a timer when background refresh is on", async () => {
    idp.cacheControl = "no-cache"; // lifetime 0, clamped up to minTtlMs
    const src = createKeySource({ provider: "timer", jwks: { uri: `${idp.url}/jwks.json` }, tuning: { minTtlMs: 100, refreshAhead: 0.5 } });
    sources.push(src);
    await src.refresh();
    const first = idp.hitCount("/jwks.json");
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(idp.hitCount("/jwks.json") >= first + 2, `hits=${idp.hitCount("/jwks.json")}`);
  });

  it("reports key count and key age per provider in the injected registry", async () => {
    const registry = new Registry();
    const src = make({ uri: `${idp.url}/jwks.json` }, {}, registry);
    await src.refresh();
    t += 42_000;
    const text = await registry.metrics();
    assert.match(text, /meshward_jwks_fetches_total\{provider="corp",document="jwks",result="ok"\} 1/);
    assert.match(text, /meshward_jwks_keys_age_seconds\{provider="corp"\} 42/);
  });
});

describe("credentials/jwks: file sources and policy settings", () => {
  it("loads keys from a JWKS file and picks up a rotated file on refresh, keeping the old keys if the file turns bad", async () => {
    const dir = mkdtempSync(join(tmpdir(), "meshward-jwks-"));
    const file = join(dir, "jwks.json");
    const k1 = newKey();
    const k2 = newKey();
    writeFileSync(file, JSON.stringify({ keys: [k1.jwk] }));
    const src = createKeySource({ provider: "filed", jwks: { file }, tuning: NO_TIMERS });
    try {
      assert.equal((await src.getKeys({ alg: "ES256", kid: k1.kid })).length, 1);
      writeFileSync(file, JSON.stringify({ keys: [k1.jwk, k2.jwk] }));
      assert.equal((await src.getKeys({ alg: "ES256", kid: k2.kid })).length, 1, "unknown kid re-reads the file");
      writeFileSync(file, "{ broken");
      await src.refresh();
      assert.equal((await src.getKeys({ alg: "ES256", kid: k2.kid })).length, 1);
      assert.match(src.status().detail ?? "", /invalid_json/);
    } finally {
      src.close();
    }
  });

  it("maps the policy's jwks.refreshInterval, cooldown and timeout onto the source", async () => {
    const idp = await startIdp();
    let t = 0;
    const src = createKeySourceForProvider(
      { name: "corp", issuer: idp.issuer, algorithms: ["ES256"], jwks: { uri: `${idp.url}/jwks.json`, refreshInterval: "2m", cooldown: "1m", timeout: "2s" } },
      { now: () => t },
      { backgroundRefresh: false },
    )!;
    try {
      await src.refresh();
      t = 0.8 * 120_000 - 1;
      await src.getKeys({ alg: "ES256", kid: idp.keys[0]!.kid });
      assert.equal(idp.hitCount("/jwks.json"), 1);
      t = 0.8 * 120_000;
      await src.getKeys({ alg: "ES256", kid: idp.keys[0]!.kid });
      await src.refresh();
      assert.equal(idp.hitCount("/jwks.json"), 2, "refreshed at 80% of the 2 min lifetime");
      await rejectsWith(src.getKeys({ alg: "ES256", kid: "nope-1" }), "unknown_kid");
      t += 59_000;
      await rejectsWith(src.getKeys({ alg: "ES256", kid: "nope-2" }), "unknown_kid");
      assert.equal(idp.hitCount("/jwks.json"), 3, "second unknown kid within the 1 min cooldown: no fetch");
      assert.equal(createKeySourceForProvider({ name: "hs", issuer: "x", algorithms: ["HS256"] }), undefined);
      assert.equal(DEFAULT_KEY_SOURCE_TUNING.maxBytes, 256 * 1024);
    } finally {
      src.close();
      await idp.close();
    }
  });

  it("shares one live source between policy generations while the provider's settings are unchanged", async () => {
    const idp = await startIdp();
    const registry = new Registry();
    const deps = { clock: systemClock, registry, logger: pino({ level: "silent" }) };
    const spec = { name: "corp", issuer: idp.issuer, algorithms: ["ES256"], jwks: { uri: `${idp.url}/jwks.json` } } as const;
    const kid = idp.keys[0]!.kid;
    const gen1 = jwksKeySourceFactory(spec, deps);
    try {
      await gen1.getKeys({ alg: "ES256", kid });
      const gen2 = jwksKeySourceFactory(spec, deps);
      gen1.close();
      assert.equal((await gen2.getKeys({ alg: "ES256", kid })).length, 1);
      assert.equal(idp.hitCount("/jwks.json"), 1, "the reload did not refetch");
      const changed = jwksKeySourceFactory({ ...spec, jwks: { ...spec.jwks, cooldown: "1s" } }, deps);
      await changed.getKeys({ alg: "ES256", kid });
      assert.equal(idp.hitCount("/jwks.json"), 2, "changed settings get their own source");
      changed.close();
      gen2.close();
      const gen3 = jwksKeySourceFactory(spec, deps);
      await gen3.getKeys({ alg: "ES256", kid });
      assert.equal(idp.hitCount("/jwks.json"), 3, "after the last close a new source starts afresh");
      gen3.close();
    } finally {
      gen1.close();
      await idp.close();
    }
  });
});
