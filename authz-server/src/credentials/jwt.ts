// JWT bearer tokens: several providers selected by `iss`, alg allow-lists, exp/nbf/iat with clock
// skew, audiences, roles and scopes from claim paths, and a bounded cache of verified tokens.
//
// Signatures are checked with node:crypto `verify` on KeyObjects from the KeySource, not with jose's
// jwtVerify: measured here, jose (WebCrypto) costs ≈230 µs per RS256 token while node:crypto with a
// cached KeyObject costs ≈34 µs (bench/authz.ts reports both in the same run). jose is not needed for
// the rest either: Buffer does base64url, and our errors carry the pipeline's own codes.
import { createHmac, createSecretKey, timingSafeEqual, verify as cryptoVerify, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Clock } from "../clock.js";
import type { CheckCode } from "../error-codes.js";
import { CredentialInvalid, DependencyUnavailable, PolicyInvalid } from "../errors.js";
import type { Attributes, UserIdentity } from "../model.js";
import type { CredentialSourceSpec, JwtProviderSpec } from "../policy/document.js";
import { durationMs } from "../policy/duration.js";
import { looksLikeCompactJws, parseCompactJws } from "./compact-jws.js";
import { DEFAULT_SOURCES, extractFrom } from "./extract.js";
import type { CredentialCandidate, CredentialPlugin, CredentialVerifier } from "./index.js";
import { KeySourceError, type KeySource, type VerificationKey } from "./key-source.js";
import { TokenCache } from "./token-cache.js";

/** Verified tokens are cached at most this long even when `exp` is later or absent. */
const MAX_CACHE_TTL_MS = 5 * 60_000;

interface Provider {
  readonly spec: JwtProviderSpec;
  readonly algorithms: ReadonlySet<string>;
  readonly audiences: ReadonlySet<string> | undefined;
  readonly skewS: number;
  readonly keySource: KeySource | undefined;
  readonly secret: KeyObject | undefined;
  readonly sources: readonly CredentialSourceSpec[];
}

export interface JwtVerifierOptions {
  readonly providers: readonly JwtProviderSpec[];
  /** Key source per provider name (providers with only HS* algorithms have none). */
  readonly keySources: ReadonlyMap<string, KeySource>;
  readonly clock: Clock;
  /** Path of the policy file, for messages about unreadable secrets. */
  readonly file: string;
  readonly cacheSize?: number;
  readonly onCache?: (hit: boolean) => void;
  readonly env?: NodeJS.ProcessEnv;
}

/** JWT providers (`spec.providers.jwt`) as a credential plugin: one verifier for all of them, key sources built per provider. */
export function jwtPlugin(): CredentialPlugin {
  return {
    name: "jwt",
    build(ctx) {
      const jwt = ctx.policy.providers.jwt ?? [];
      if (!jwt.length) return {};
      const keySources = new Map<string, KeySource>();
      try {
        jwt.forEach((p, i) => {
          if (!p.jwks) return;
          try {
            keySources.set(p.name, ctx.createKeySource(p, ctx));
          } catch (err) {
            throw new PolicyInvalid(ctx.policy.file, `spec.providers.jwt[${i}].jwks`, (err as Error).message);
          }
        });
        const verifier = createJwtVerifier({
          providers: jwt,
          keySources,
          clock: ctx.clock,
          file: ctx.policy.file,
          ...(ctx.onTokenCache ? { onCache: ctx.onTokenCache } : {}),
          ...(ctx.tokenCacheSize !== undefined ? { cacheSize: ctx.tokenCacheSize } : {}),
        });
        return { verifiers: [verifier] };
      } catch (err) {
        for (const s of keySources.values()) s.close();
        throw err;
      }
    },
  };
}

export function createJwtVerifier(opts: JwtVerifierOptions): CredentialVerifier {
  const byIssuer = new Map<string, Provider>();
  opts.providers.forEach((spec, i) => {
    byIssuer.set(spec.issuer, {
      spec,
      algorithms: new Set(spec.algorithms),
      audiences: spec.audiences ? new Set(spec.audiences) : undefined,
      skewS: durationMs(spec.clockSkew, 30_000) / 1000,
      keySource: opts.keySources.get(spec.name),
      secret: spec.secret ? loadSecret(spec.secret, opts.file, `spec.providers.jwt[${i}].secret`, opts.env ?? process.env) : undefined,
      sources: spec.from ?? DEFAULT_SOURCES,
    });
  });
  const sources = uniqueSources(opts.providers.flatMap((p) => p.from ?? DEFAULT_SOURCES));
  const cache = new TokenCache(opts.cacheSize ?? 10_000);
  const { clock } = opts;
  const withKeys = [...byIssuer.values()].filter((p) => p.keySource !== undefined);
  const seenKeySets = withKeys.map(() => "");
  let keyGeneration = 0;
  /** A token verified with a key that a refresh removed must not stay valid: any key-set change empties the cache. */
  const forgetOnKeyChange = (): number => {
    for (let i = 0; i < withKeys.length; i++) {
      const id = withKeys[i]!.keySource!.keySetId();
      if (id !== seenKeySets[i]) {
        seenKeySets[i] = id;
        keyGeneration++;
        cache.clear();
      }
    }
    return keyGeneration;
  };

  return {
    type: "jwt",
    extract(attrs: Attributes): CredentialCandidate | undefined {
      for (const s of sources) {
        const found = extractFrom(attrs, [s]);
        if (found && looksLikeCompactJws(found.value)) return found;
      }
      return undefined;
    },
    async verify(candidate: CredentialCandidate): Promise<UserIdentity> {
      const generation = forgetOnKeyChange();
      const key = TokenCache.keyOf(candidate.value);
      const nowMs = clock.now();
      const cached = cache.get(key, nowMs);
      opts.onCache?.(cached !== undefined);
      if (cached) return cached;
      const user = await verifyToken(candidate.value, byIssuer, nowMs / 1000);
      const expMs = typeof user.expiresAt === "number" ? user.expiresAt * 1000 : Infinity;
      // Not cached when the keys changed while it was verified (it may have used a key just removed).
      if (forgetOnKeyChange() === generation) cache.set(key, user, Math.min(expMs, nowMs + MAX_CACHE_TTL_MS));
      return user;
    },
    keySetId() {
      return withKeys.map((p) => `${p.spec.name}=${p.keySource!.keySetId()}`).join(" ");
    },
    status() {
      for (const [issuer, p] of byIssuer) {
        const s = p.keySource?.status();
        if (s && !s.ready) return { ready: false, detail: `provider ${p.spec.name} (${issuer}): ${s.detail ?? "keys not loaded"}` };
      }
      return { ready: true };
    },
    close() {
      cache.clear();
      for (const p of byIssuer.values()) p.keySource?.close();
    },
  };
}

async function verifyToken(token: string, byIssuer: ReadonlyMap<string, Provider>, nowS: number): Promise<UserIdentity> {
  const jws = parseCompactJws(token);
  const { header, payload } = jws;
  const alg = header.alg;
  if (typeof alg !== "string" || alg === "") throw invalid("ERR_JWT_MALFORMED", "header has no 'alg'");
  if (alg.toLowerCase() === "none") throw invalid("ERR_JWT_ALG_NOT_ALLOWED", "unsecured JWTs (alg none) are never accepted");
  if (header.crit !== undefined) {
    // We implement no JWS extensions, so every critical header parameter is unknown (RFC 7515 §4.1.11).
    throw invalid("ERR_JWT_CRIT_UNSUPPORTED", "token uses critical header extensions we do not implement");
  }
  if (header.b64 !== undefined) throw invalid("ERR_JWT_MALFORMED", "'b64' without 'crit'");
  const kid = header.kid;
  if (kid !== undefined && typeof kid !== "string") throw invalid("ERR_JWT_MALFORMED", "'kid' is not a string");
  const iss = payload.iss;
  if (typeof iss !== "string") throw invalid("ERR_JWT_NO_ISSUER", "token has no 'iss'");
  const provider = byIssuer.get(iss);
  if (!provider) throw invalid("ERR_JWT_UNKNOWN_ISSUER", "no provider for this issuer");
  if (!provider.algorithms.has(alg)) throw invalid("ERR_JWT_ALG_NOT_ALLOWED", `alg ${alg} is not allowed for provider ${provider.spec.name}`);

  await verifySignature(jws.signingInput, jws.signature, alg, kid, provider);
  checkClaims(payload, provider, nowS);

  const sub = payload.sub;
  if (sub !== undefined && typeof sub !== "string") throw invalid("ERR_JWT_MALFORMED", "'sub' is not a string");
  const exp = payload.exp as number | undefined;
  return Object.freeze({
    kind: "user",
    provider: provider.spec.name,
    providerType: "jwt",
    subject: sub ?? "",
    claims: Object.freeze(payload),
    roles: Object.freeze(stringsAt(payload, provider.spec.roles?.claim)),
    scopes: Object.freeze(stringsAt(payload, provider.spec.scopes?.claim ?? (payload.scope !== undefined ? "scope" : "scp"))),
    ...(exp !== undefined ? { expiresAt: exp } : {}),
  });
}

const HASH: Record<string, string> = { "256": "sha256", "384": "sha384", "512": "sha512" };
const CURVE: Record<string, string> = { ES256: "prime256v1", ES384: "secp384r1", ES512: "secp521r1" };
const EC_SIG_BYTES: Record<string, number> = { ES256: 64, ES384: 96, ES512: 132 };

async function verifySignature(input: string, signature: Buffer, alg: string, kid: string | undefined, provider: Provider): Promise<void> {
  if (alg.startsWith("HS")) {
    const secret = provider.secret;
    if (!secret) throw invalid("ERR_JWT_ALG_NOT_ALLOWED", "HMAC without a configured secret");
    const mac = createHmac(HASH[alg.slice(2)]!, secret).update(input).digest();
    if (mac.length !== signature.length || !timingSafeEqual(mac, signature)) throw badSignature();
    return;
  }
  const source = provider.keySource;
  if (!source) throw invalid("ERR_JWT_NO_KEYS", "provider has no key source");
  let keys: readonly VerificationKey[];
  try {
    keys = await source.getKeys(kid === undefined ? { alg } : { alg, kid });
  } catch (err) {
    if (err instanceof KeySourceError && err.code === "unknown_kid") throw invalid("ERR_JWT_UNKNOWN_KID", "no key matches the token's kid", err);
    throw new DependencyUnavailable("ERR_KEYS_UNAVAILABLE", `keys of provider ${provider.spec.name} are unavailable`, { cause: err });
  }
  const data = Buffer.from(input);
  for (const k of keys) {
    if (k.alg !== undefined && k.alg !== alg) continue;
    if (!keyFits(k.key, alg)) continue;
    if (verifyWith(k.key, alg, data, signature)) return;
  }
  throw badSignature();
}

function keyFits(key: KeyObject, alg: string): boolean {
  if (key.type !== "public") return false;
  const t = key.asymmetricKeyType;
  if (alg.startsWith("RS")) return t === "rsa";
  if (alg.startsWith("PS")) return t === "rsa" || t === "rsa-pss";
  if (alg.startsWith("ES")) return t === "ec" && key.asymmetricKeyDetails?.namedCurve === CURVE[alg];
  if (alg === "EdDSA") return t === "ed25519" || t === "ed448";
  return false;
}

/** Checks one JWS signature with one key (exported for the RFC 7515/7520 vector tests). */
export function verifyWith(key: KeyObject, alg: string, data: Buffer, signature: Buffer): boolean {
  try {
    if (alg === "EdDSA") return cryptoVerify(null, data, key, signature);
    const hash = HASH[alg.slice(2)]!;
    if (alg.startsWith("ES")) {
      if (signature.length !== EC_SIG_BYTES[alg]) return false;
      return cryptoVerify(hash, data, { key, dsaEncoding: "ieee-p1363" }, signature);
    }
    if (alg.startsWith("PS")) {
      return cryptoVerify(hash, data, { key, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: Number(alg.slice(2)) / 8 }, signature);
    }
    return cryptoVerify(hash, data, key, signature);
  } catch {
    return false;
  }
}

function checkClaims(payload: Readonly<Record<string, unknown>>, provider: Provider, nowS: number): void {
  const skew = provider.skewS;
  const num = (name: string): number | undefined => {
    const v = payload[name];
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !Number.isFinite(v)) throw invalid("ERR_JWT_MALFORMED", `'${name}' is not a number`);
    return v;
  };
  const exp = num("exp");
  const nbf = num("nbf");
  const iat = num("iat");
  if (exp !== undefined && nowS >= exp + skew) throw invalid("ERR_JWT_EXPIRED", "token is expired");
  if (nbf !== undefined && nowS + skew < nbf) throw invalid("ERR_JWT_NOT_YET_VALID", "token is not valid yet (nbf)");
  if (iat !== undefined && iat > nowS + skew) throw invalid("ERR_JWT_ISSUED_IN_FUTURE", "token was issued in the future (iat)");
  if (provider.audiences) {
    const aud = payload.aud;
    const list = typeof aud === "string" ? [aud] : Array.isArray(aud) ? aud : [];
    if (!list.some((a) => typeof a === "string" && provider.audiences!.has(a))) throw invalid("ERR_JWT_AUDIENCE", "token audience is not accepted");
  }
}

/** Strings at a dotted claim path (a claim whose name contains dots is tried whole first); arrays or space-separated strings. */
export function stringsAt(claims: Readonly<Record<string, unknown>>, path: string | undefined): string[] {
  if (!path) return [];
  let value: unknown = Object.hasOwn(claims, path) ? claims[path] : undefined;
  if (value === undefined) {
    value = claims;
    for (const seg of path.split(".")) {
      if (value === null || typeof value !== "object" || Array.isArray(value) || !Object.hasOwn(value, seg)) return [];
      value = (value as Record<string, unknown>)[seg];
    }
  }
  if (typeof value === "string") return value.split(" ").filter(Boolean);
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === "string");
  return [];
}

/** HMAC secret from an env variable (UTF-8) or a file (raw bytes, one trailing newline dropped). */
function loadSecret(ref: { file?: string; env?: string }, file: string, path: string, env: NodeJS.ProcessEnv): KeyObject {
  let value: Buffer;
  if (ref.env !== undefined) {
    const text = env[ref.env];
    if (!text) throw new PolicyInvalid(file, `${path}.env`, `environment variable ${ref.env} is not set`);
    value = Buffer.from(text, "utf8");
  } else {
    try {
      value = readFileSync(ref.file!);
    } catch (err) {
      throw new PolicyInvalid(file, `${path}.file`, `cannot read secret file: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
    }
    const end = value.at(-1) === 0x0a ? (value.at(-2) === 0x0d ? 2 : 1) : 0;
    value = value.subarray(0, value.length - end);
  }
  if (value.length < 32) throw new PolicyInvalid(file, path, `HMAC secret has ${value.length} bytes; at least 32 are required`);
  return createSecretKey(value);
}

function uniqueSources(list: readonly CredentialSourceSpec[]): CredentialSourceSpec[] {
  const seen = new Set<string>();
  return list.filter((s) => {
    const k = JSON.stringify(s);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function invalid(code: CheckCode<"unauthenticated">, message: string, cause?: unknown): CredentialInvalid {
  return new CredentialInvalid(code, message, cause === undefined ? undefined : { cause });
}

function badSignature(): CredentialInvalid {
  return invalid("ERR_JWT_SIGNATURE", "signature verification failed");
}
