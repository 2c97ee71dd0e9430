// Test keys generated at test time with node:crypto, and a JWT signer that can also produce the
// malformed and hostile tokens the tests need (alg none, HS256 keyed with an RSA public key…).
import { createHmac, generateKeyPairSync, sign, type KeyObject } from "node:crypto";

export interface TestKey {
  readonly kid: string;
  readonly alg: "RS256" | "ES256" | "PS256" | "ES384";
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** Public JWK with kid, alg and use. */
  readonly jwk: Record<string, unknown>;
}

let counter = 0;

export function newKey(alg: TestKey["alg"] = "RS256", kid = `k${++counter}-${alg.toLowerCase()}`): TestKey {
  const pair =
    alg === "ES256" ? generateKeyPairSync("ec", { namedCurve: "P-256" }) : alg === "ES384" ? generateKeyPairSync("ec", { namedCurve: "P-384" }) : generateKeyPairSync("rsa", { modulusLength: 2048 });
  return { kid, alg, ...pair, jwk: { ...pair.publicKey.export({ format: "jwk" }), kid, alg, use: "sig" } };
}

const b64 = (v: unknown) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");

/** Signs `payload` with `key` (kid and alg from the key unless `header` overrides them). */
export function signJwt(key: TestKey, payload: Record<string, unknown>, header: Record<string, unknown> = {}): string {
  const h = { alg: key.alg, kid: key.kid, typ: "JWT", ...header };
  const input = `${b64(h)}.${b64(payload)}`;
  const alg = String(h.alg);
  const hash = `sha${alg.slice(2)}`;
  const sig = alg.startsWith("ES")
    ? sign(hash, Buffer.from(input), { key: key.privateKey, dsaEncoding: "ieee-p1363" })
    : alg.startsWith("PS")
      ? sign(hash, Buffer.from(input), { key: key.privateKey, padding: 6, saltLength: 32 })
      : sign(hash, Buffer.from(input), key.privateKey);
  return `${input}.${sig.toString("base64url")}`;
}

/** The classic key-confusion token: HS256 with the RSA public key's PEM as the HMAC secret. */
export function signHs256WithPublicKey(key: TestKey, payload: Record<string, unknown>): string {
  const input = `${b64({ alg: "HS256", typ: "JWT", kid: key.kid })}.${b64(payload)}`;
  const secret = key.publicKey.export({ format: "pem", type: "spki" });
  return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
}

export function unsecuredJwt(payload: Record<string, unknown>, alg = "none"): string {
  return `${b64({ alg, typ: "JWT" })}.${b64(payload)}.`;
}
