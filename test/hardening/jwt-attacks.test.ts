// JWT attacks against the real server with the Istio sample key (test/fixtures/jose/istio-jwt-samples):
// algorithm confusion, unsecured tokens, embedded and remote keys, kid injection, crit/b64, and the
// exact exp/nbf/iat boundaries with clock skew on an injected clock.
import assert from "node:assert/strict";
import { createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { checkRequest, startHarness, testClock, type Harness } from "../../tools/testing/authz-harness.js";
import { startJwksServer, type JwksServer } from "../../tools/testing/jwks-server.js";
import { startHitCounter, type HitCounter } from "./helpers/hit-counter.js";
import { fixturePath } from "../fixtures/index.js";
import { RawCheckClient, type Answer } from "./helpers/raw-check.js";
import { jwtPolicy } from "../../tools/testing/policy.js";

const sample = (name: string): string => fixturePath(`jose/istio-jwt-samples/${name}`);
const ISS = "testing@secure.istio.io";
const NOW_S = 1_800_000_000;
const SKEW_S = 30;

const istioJwks = JSON.parse(readFileSync(sample("jwks.json"), "utf8")) as { keys: Record<string, unknown>[] };
const istioJwk = istioJwks.keys[0]!;
const KID = String(istioJwk.kid);
const istioPrivate = createPrivateKey(readFileSync(sample("key.pem")));
const istioPublic = createPublicKey({ key: istioJwk as never, format: "jwk" });
const demoJwt = readFileSync(sample("demo.jwt"), "utf8").trim();

const b64 = (v: unknown) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");

function jws(header: Record<string, unknown>, payload: Record<string, unknown>, signer: (input: string) => Buffer): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${signer(input).toString("base64url")}`;
}
const rs256 = (key: KeyObject) => (input: string) => sign("sha256", Buffer.from(input), key);
const es256 = (key: KeyObject) => (input: string) => sign("sha256", Buffer.from(input), { key, dsaEncoding: "ieee-p1363" });
const hmac = (alg: string, secret: Buffer | string) => (input: string) => createHmac(`sha${alg.slice(2)}`, secret).update(input).digest();

const policy = (jwksUrl: string) => jwtPolicy({ name: "istio", issuer: ISS, jwks: { uri: jwksUrl, cooldown: "60s" }, algorithms: ["RS256", "ES256"], clockSkew: `${SKEW_S}s` }, `
  rules:
    - name: api
      match: { paths: ["/api/**"] }
      require: { user: true }
`);

describe("hardening: JWT attacks are denied (Istio sample key, real server)", function () {
  this.timeout(30_000);
  let jwks: JwksServer;
  let attackerSite: HitCounter;
  let h: Harness;
  let raw: RawCheckClient;
  const clock = testClock(NOW_S * 1000);
  const attacker = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const ecJwk = { ...ec.publicKey.export({ format: "jwk" }), kid: "ec-1", alg: "ES256", use: "sig" };
  const attackerJwk = { ...attacker.publicKey.export({ format: "jwk" }), kid: "attacker", alg: "RS256", use: "sig" };
  let serial = 0;
  const claims = (extra: Record<string, unknown> = {}) => ({ iss: ISS, sub: "mallory", iat: NOW_S - 10, exp: NOW_S + 600, jti: `a${++serial}`, ...extra });
  const header = (extra: Record<string, unknown> = {}) => ({ alg: "RS256", kid: KID, typ: "JWT", ...extra });

  before(async () => {
    jwks = await startJwksServer([istioJwk, ecJwk]);
    attackerSite = await startHitCounter(JSON.stringify({ keys: [attackerJwk] }));
    h = await startHarness(policy(jwks.url), { clock });
    raw = new RawCheckClient(h.grpcPort);
  });
  after(async () => {
    raw?.close();
    await h?.stop();
    await jwks?.stop();
    await attackerSite?.stop();
  });

  const send = (token: string): Promise<Answer> => raw.send(checkRequest({ path: "/api/x", headers: { authorization: `Bearer ${token}` } }));
  async function denied(token: string, reason: string | readonly string[]): Promise<void> {
    const a = await send(token);
    assert.equal(a.allowed, false, "attack token was allowed");
    const reasons = typeof reason === "string" ? [reason] : reason;
    assert.ok(reasons.includes(a.reason), `reason ${a.reason}, expected ${reasons.join(" | ")}`);
    assert.equal(a.status, 401);
  }

  it("accepts the genuine Istio demo.jwt and a token freshly signed with the Istio sample key (baseline)", async () => {
    assert.equal((await send(demoJwt)).allowed, true);
    assert.equal((await send(jws(header(), claims(), rs256(istioPrivate)))).allowed, true);
  });

  describe("algorithm confusion: HMAC keyed with public key material", () => {
    const spkiPem = () => istioPublic.export({ format: "pem", type: "spki" }) as string;
    const secrets: [string, () => Buffer | string][] = [
      ["the SPKI PEM", spkiPem],
      ["the SPKI PEM without its trailing newline", () => spkiPem().trimEnd()],
      ["the PKCS#1 PEM", () => istioPublic.export({ format: "pem", type: "pkcs1" }) as string],
      ["the SPKI DER bytes", () => istioPublic.export({ format: "der", type: "spki" }) as Buffer],
      ["the JWK JSON text", () => JSON.stringify(istioJwk)],
      ["the raw modulus bytes", () => Buffer.from(String(istioJwk.n), "base64url")],
      ["the EC public key PEM", () => ec.publicKey.export({ format: "pem", type: "spki" }) as string],
      ["the EC point bytes (Wycheproof-style)", () => Buffer.concat([Buffer.from([4]), Buffer.from(String(ecJwk.x), "base64url"), Buffer.from(String(ecJwk.y), "base64url")])],
    ];
    for (const alg of ["HS256", "HS384", "HS512"]) {
      for (const [what, secret] of secrets) {
        it(`denies ${alg} signed with ${what}`, async () => {
          const kid = what.includes("EC") ? "ec-1" : KID;
          await denied(jws(header({ alg, kid }), claims(), hmac(alg, secret())), "algorithm_not_allowed");
        });
      }
    }

    it("denies an RS256-signed token relabelled PS256 / RS512 / ES256 (algorithm outside the allow-list or wrong key type)", async () => {
      const sig = rs256(istioPrivate);
      await denied(jws(header({ alg: "PS256" }), claims(), sig), "algorithm_not_allowed");
      await denied(jws(header({ alg: "RS512" }), claims(), sig), "algorithm_not_allowed");
      await denied(jws(header({ alg: "ES256" }), claims(), sig), ["invalid_signature", "unknown_kid"]);
    });
  });

  describe("unsecured tokens (alg none in every spelling)", () => {
    const spellings = ["none", "None", "NONE", "nOnE", "noNe"];
    for (const alg of spellings) {
      it(`denies alg '${alg}' with an empty signature`, async () => {
        await denied(`${b64({ alg, typ: "JWT" })}.${b64(claims())}.`, "algorithm_not_allowed");
      });
      it(`denies alg '${alg}' carrying a genuine RS256 signature and the real kid`, async () => {
        const signed = jws(header(), claims(), rs256(istioPrivate)).split(".");
        const relabelled = `${b64({ alg, kid: KID, typ: "JWT" })}.${signed[1]}.${signed[2]}`;
        await denied(relabelled, "algorithm_not_allowed");
      });
    }
    for (const alg of ["none ", " none", "none\u0000", "nonE\t"]) {
      it(`denies the near-miss alg ${JSON.stringify(alg)}`, async () => {
        await denied(`${b64({ alg, typ: "JWT" })}.${b64(claims())}.`, ["algorithm_not_allowed", "token_malformed"]);
      });
    }

    it("denies the Istio demo token stripped of its signature", async () => {
      await denied(demoJwt.slice(0, demoJwt.lastIndexOf(".") + 1), ["invalid_signature", "token_malformed"]);
    });
  });

  describe("keys the token brings itself are never used", () => {
    it("ignores an embedded jwk: attacker-signed with its own key in the header → denied", async () => {
      await denied(jws(header({ jwk: attackerJwk }), claims(), rs256(attacker.privateKey)), "invalid_signature");
      await denied(jws({ alg: "RS256", jwk: attackerJwk }, claims(), rs256(attacker.privateKey)), "invalid_signature");
      await denied(jws({ alg: "RS256", kid: "attacker", jwk: attackerJwk }, claims(), rs256(attacker.privateKey)), "unknown_kid");
    });

    it("never fetches jku / x5u / x5c URLs: attacker-signed tokens pointing at a loopback key server are denied and the server gets zero hits", async () => {
      const url = `${attackerSite.origin}/jwks.json`;
      const variants: Record<string, unknown>[] = [
        { jku: url },
        { jku: url, kid: "attacker" },
        { x5u: `${attackerSite.origin}/cert.pem` },
        { x5u: `${attackerSite.origin}/cert.pem`, kid: "attacker" },
        { jku: url, x5u: url, kid: KID },
        { x5c: [attacker.publicKey.export({ format: "der", type: "spki" }).toString("base64")], kid: "attacker" },
        { kid: url },
        { kid: `${attackerSite.origin}/../jwks.json` },
      ];
      for (const extra of variants) {
        const a = await send(jws({ ...header(), ...extra }, claims(), rs256(attacker.privateKey)));
        assert.equal(a.allowed, false, JSON.stringify(Object.keys(extra)));
        assert.ok(["invalid_signature", "unknown_kid"].includes(a.reason), a.reason);
      }
      await new Promise((r) => setTimeout(r, 200)); // let any stray background fetch arrive
      assert.deepEqual(attackerSite.hits, []);
    });
  });

  describe("kid path traversal and injection", () => {
    const kids = [
      "../../../../../../dev/null",
      "/dev/null",
      "../../test/fixtures/jose/istio-jwt-samples/key.pem",
      "file:///etc/passwd",
      "' OR '1'='1",
      "x'; DROP TABLE keys; --",
      "${jndi:ldap://127.0.0.1:1/a}",
      "|cat /etc/passwd",
      "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
      `${KID}\u0000`,
      `${KID} `,
      KID.toLowerCase(),
      "__proto__",
      "constructor",
      "hasOwnProperty",
    ];
    for (const kid of kids) {
      it(`denies kid ${JSON.stringify(kid)} with HS256 over an empty key and with an attacker RSA key`, async () => {
        await denied(jws({ alg: "HS256", kid, typ: "JWT" }, claims(), hmac("HS256", Buffer.alloc(0))), "algorithm_not_allowed");
        await denied(jws({ alg: "RS256", kid, typ: "JWT" }, claims(), rs256(attacker.privateKey)), ["unknown_kid", "invalid_signature"]);
      });
    }

    it("does not refetch the JWKS for each injected kid (cooldown) and keeps verifying real tokens", async () => {
      const before = jwks.fetches;
      for (let i = 0; i < 20; i++) await denied(jws({ alg: "RS256", kid: `../inject-${i}` }, claims(), rs256(attacker.privateKey)), "unknown_kid");
      assert.ok(jwks.fetches - before <= 1, `${jwks.fetches - before} fetches`);
      assert.equal((await send(jws(header(), claims(), rs256(istioPrivate)))).allowed, true);
    });
  });

  describe("crit and b64", () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ["crit naming an unknown extension", { crit: ["http://example.invalid/ext"], "http://example.invalid/ext": true }, "unsupported_crit"],
      ["crit naming a registered non-extension (exp)", { crit: ["exp"], exp: NOW_S + 10 }, "unsupported_crit"],
      ["crit naming a member that is absent", { crit: ["missing"] }, "unsupported_crit"],
      ["b64:false with crit (RFC 7797 unencoded payload, not implemented)", { b64: false, crit: ["b64"] }, "unsupported_crit"],
      ["b64:false without crit", { b64: false }, "token_malformed"],
      ["b64:true without crit", { b64: true }, "token_malformed"],
    ];
    for (const [what, extra, reason] of cases) {
      it(`denies a validly signed token with ${what}`, async () => {
        await denied(jws(header(extra), claims(), rs256(istioPrivate)), reason);
      });
    }

    it("denies an RFC 7797 detached-style token whose signature covers the raw payload", async () => {
      const payload = JSON.stringify(claims());
      const h64 = b64(header({ b64: false, crit: ["b64"] }));
      const sig = sign("sha256", Buffer.from(`${h64}.${payload}`), istioPrivate).toString("base64url");
      await denied(`${h64}.${b64(payload)}.${sig}`, "unsupported_crit");
    });
  });

  describe("signature encodings", () => {
    it("denies ES256 with a DER-encoded signature and with r = s = 0 (CVE-2022-21449 'psychic signature')", async () => {
      const der = jws({ alg: "ES256", kid: "ec-1" }, claims(), (input) => sign("sha256", Buffer.from(input), { key: ec.privateKey, dsaEncoding: "der" }));
      await denied(der, "invalid_signature");
      await denied(jws({ alg: "ES256", kid: "ec-1" }, claims(), () => Buffer.alloc(64)), "invalid_signature");
      assert.equal((await send(jws({ alg: "ES256", kid: "ec-1" }, claims(), es256(ec.privateKey)))).allowed, true, "genuine ES256 still verifies");
    });

    it("denies an RSA signature of zero bytes, of all-zero bytes and one re-used from another token", async () => {
      await denied(jws(header(), claims(), () => Buffer.alloc(256)), "invalid_signature");
      const other = demoJwt.split(".")[2]!;
      const [hh, pp] = jws(header(), claims(), rs256(istioPrivate)).split(".");
      await denied(`${hh}.${pp}.${other}`, "invalid_signature");
    });
  });

  describe("exp / nbf / iat at the exact boundaries (clockSkew 30 s, injected clock)", () => {
    const at = async (nowS: number, extra: Record<string, unknown>): Promise<Answer> => {
      clock.set(nowS * 1000);
      try {
        return await send(jws(header(), claims({ iat: undefined, ...extra }), rs256(istioPrivate)));
      } finally {
        clock.set(NOW_S * 1000);
      }
    };
    const EXP = NOW_S + 100;

    it("accepts exp until now = exp + skew - 1 s and rejects from now = exp + skew (token_expired)", async () => {
      assert.equal((await at(EXP + SKEW_S - 1, { exp: EXP })).allowed, true);
      const onBoundary = await at(EXP + SKEW_S, { exp: EXP });
      assert.equal(onBoundary.reason, "token_expired");
      assert.equal((await at(EXP + SKEW_S + 1, { exp: EXP })).reason, "token_expired");
    });

    it("accepts nbf from now = nbf - skew and rejects at now = nbf - skew - 1 s (token_not_yet_valid)", async () => {
      const NBF = NOW_S + 100;
      assert.equal((await at(NBF - SKEW_S - 1, { nbf: NBF })).reason, "token_not_yet_valid");
      assert.equal((await at(NBF - SKEW_S, { nbf: NBF })).allowed, true);
      assert.equal((await at(NBF - SKEW_S + 1, { nbf: NBF })).allowed, true);
    });

    it("accepts iat up to now + skew and rejects iat = now + skew + 1 s", async () => {
      assert.equal((await at(NOW_S, { iat: NOW_S + SKEW_S })).allowed, true);
      assert.equal((await at(NOW_S, { iat: NOW_S + SKEW_S + 1 })).reason, "token_not_yet_valid");
    });

    it("expires a cached verified token at exactly exp + skew, not later", async () => {
      const token = jws(header(), claims({ exp: EXP }), rs256(istioPrivate));
      const hitsBefore = await h.metric("meshward_authz_token_cache_lookups_total", { result: "hit" });
      try {
        clock.set(NOW_S * 1000);
        assert.equal((await send(token)).allowed, true);
        assert.equal((await send(token)).allowed, true);
        assert.ok((await h.metric("meshward_authz_token_cache_lookups_total", { result: "hit" })) > hitsBefore, "second answer came from the cache");
        clock.set((EXP + SKEW_S - 1) * 1000);
        assert.equal((await send(token)).allowed, true);
        clock.set((EXP + SKEW_S) * 1000);
        assert.equal((await send(token)).reason, "token_expired");
      } finally {
        clock.set(NOW_S * 1000);
      }
    });

    const malformedTimes: [string, unknown][] = [["a string", String(NOW_S + 600)], ["null", null], ["an array", [NOW_S + 600]], ["an object", { $gt: 0 }], ["a boolean", true]];
    for (const [what, v] of malformedTimes) {
      it(`denies exp that is ${what} as token_malformed (never treated as 'no expiry')`, async () => {
        await denied(jws(header(), claims({ exp: v }), rs256(istioPrivate)), "token_malformed");
      });
    }
  });
});
