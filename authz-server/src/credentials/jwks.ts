// KeySource over a JWKS (URI, OIDC discovery, file, or inline keys): node:crypto KeyObjects, single-flight
// fetches, refetch on unknown kid with a cooldown and a negative cache, stale-while-revalidate, refresh ahead of expiry.
import { createPublicKey, type KeyObject } from "node:crypto";
import { readFile as fsReadFile } from "node:fs/promises";
import type { Registry } from "prom-client";
import { fetchJson, FetchFailed, type FetchLike } from "./bounded-fetch.js";
import { assertFetchableUrl, clampTtl, createDiscoveryClient, DiscoveryFailed, type DiscoveryClient } from "./discovery.js";
import { jwksMetrics, type JwksMetrics } from "./jwks-metrics.js";
import type { JwtProviderSpec } from "../policy/document.js";
import type { KeySourceFactory } from "./index.js";
import { durationMs } from "../policy/duration.js";
import { KeySourceError, keySetId, type KeySource, type KeySourceStatus, type VerificationKey } from "./key-source.js";

/** Where the keys come from (the policy's `jwks:` value). */
export type JwksSpec =
  | { readonly uri: string }
  | { readonly file: string }
  | { readonly discovery: true }
  | { readonly keys: readonly unknown[] };

export interface KeySourceConfig {
  /** Provider name: the `provider` label on metrics and the subject of status details. */
  readonly provider: string;
  /** Required with `discovery: true`: the discovery document must name exactly this issuer. */
  readonly issuer?: string;
  readonly jwks: JwksSpec;
  readonly tuning?: Partial<KeySourceTuning>;
}

export interface KeySourceTuning {
  /** Whole-request timeout of one fetch. */
  readonly fetchTimeoutMs: number;
  /** Largest accepted JWKS / discovery document. */
  readonly maxBytes: number;
  /** Bounds applied to `Cache-Control: max-age` (and to the file re-read interval). */
  readonly minTtlMs: number;
  readonly maxTtlMs: number;
  /** Lifetime of keys when the response carries no max-age. */
  readonly defaultTtlMs: number;
  /** Refresh in the background when this fraction of the lifetime has passed (before expiry). */
  readonly refreshAhead: number;
  /** Minimum interval between refetches triggered by unknown kids. */
  readonly unknownKidCooldownMs: number;
  /** How long a kid confirmed absent is refused without triggering a refetch. */
  readonly negativeCacheTtlMs: number;
  /** Bound on remembered unknown kids (attacker-chosen values). */
  readonly negativeCacheMax: number;
  /** Back-off after failed fetches: doubles from min to max. */
  readonly retryMinMs: number;
  readonly retryMaxMs: number;
  /** Accept plain-http endpoints on non-loopback hosts. */
  readonly allowInsecureHttp: boolean;
  /** RSA keys with a shorter modulus are skipped. */
  readonly minRsaBits: number;
  /** Run timers that refresh before expiry and retry after failures; without, refresh happens lazily on lookups. */
  readonly backgroundRefresh: boolean;
}

export const DEFAULT_KEY_SOURCE_TUNING: KeySourceTuning = Object.freeze({
  fetchTimeoutMs: 5_000,
  maxBytes: 256 * 1024,
  minTtlMs: 60_000,
  maxTtlMs: 24 * 3_600_000,
  defaultTtlMs: 10 * 60_000,
  refreshAhead: 0.8,
  unknownKidCooldownMs: 10_000,
  negativeCacheTtlMs: 60_000,
  negativeCacheMax: 1024,
  retryMinMs: 1_000,
  retryMaxMs: 60_000,
  allowInsecureHttp: false,
  minRsaBits: 2048,
  backgroundRefresh: true,
});

export interface KeySourceDeps {
  /** Defaults to the global fetch. */
  readonly fetch?: FetchLike;
  /** Milliseconds; defaults to Date.now. Drives lifetimes, cooldowns and the negative cache. */
  readonly now?: () => number;
  /** Metrics are registered here when given. */
  readonly registry?: Registry;
  readonly readFile?: (path: string) => Promise<Buffer>;
  readonly log?: { warn(obj: object, msg: string): void; info?(obj: object, msg: string): void };
}

/** A KeySource plus an explicit refresh, for startup and tests. */
export interface JwksKeySource extends KeySource {
  /** Fetches now (joining an in-flight fetch); never rejects — the outcome shows in status(). */
  refresh(): Promise<void>;
}

export function createKeySource(config: KeySourceConfig, deps: KeySourceDeps = {}): JwksKeySource {
  const tuning: KeySourceTuning = { ...DEFAULT_KEY_SOURCE_TUNING, ...config.tuning };
  const metrics = deps.registry ? jwksMetrics(deps.registry) : undefined;
  if ("keys" in config.jwks) return createStaticKeySource(config.provider, config.jwks.keys, tuning, metrics);
  return new RemoteKeySource(config, tuning, deps, metrics);
}

/**
 * The key source of a schema-validated JWT provider from the policy (`jwks.refreshInterval` = key
 * lifetime when the endpoint sends no max-age, `jwks.cooldown` = unknown-kid refetch cooldown,
 * `jwks.timeout` = fetch timeout). Undefined when the provider has no `jwks` (HS* with a secret).
 */
export function createKeySourceForProvider(p: JwtProviderSpec, deps: KeySourceDeps = {}, tuning: Partial<KeySourceTuning> = {}): JwksKeySource | undefined {
  const j = p.jwks;
  if (!j) return undefined;
  const spec: JwksSpec = j.uri !== undefined ? { uri: j.uri } : j.file !== undefined ? { file: j.file } : j.keys !== undefined ? { keys: j.keys } : { discovery: true };
  const t: Partial<KeySourceTuning> = { ...tuning };
  const d = DEFAULT_KEY_SOURCE_TUNING;
  if (j.refreshInterval !== undefined) Object.assign(t, { defaultTtlMs: durationMs(j.refreshInterval, d.defaultTtlMs) });
  if (j.cooldown !== undefined) Object.assign(t, { unknownKidCooldownMs: durationMs(j.cooldown, d.unknownKidCooldownMs) });
  if (j.timeout !== undefined) Object.assign(t, { fetchTimeoutMs: durationMs(j.timeout, d.fetchTimeoutMs) });
  return createKeySource({ provider: p.name, issuer: p.issuer, jwks: spec, tuning: t }, deps);
}

const liveSources = new WeakMap<object, Map<string, { readonly source: JwksKeySource; refs: number }>>();

/**
 * The `KeySourceFactory` the credentials stage (index.ts) is built with. A policy reload builds the new
 * generation before closing the old one; a provider whose name, issuer and jwks settings are unchanged
 * gets the same live source (reference-counted), so a reload neither refetches keys nor makes requests
 * wait for a first fetch.
 */
export const jwksKeySourceFactory: KeySourceFactory = (p, deps) => {
  let byConfig = liveSources.get(deps.registry);
  if (!byConfig) { byConfig = new Map(); liveSources.set(deps.registry, byConfig); }
  const fingerprint = JSON.stringify([p.name, p.issuer, p.jwks]);
  let entry = byConfig.get(fingerprint);
  if (!entry) {
    const source = createKeySourceForProvider(p, { now: () => deps.clock.now(), registry: deps.registry, log: deps.logger });
    if (!source) throw new Error(`provider ${p.name}: no jwks configured`);
    entry = { source, refs: 0 };
    byConfig.set(fingerprint, entry);
  }
  const e = entry;
  const map = byConfig;
  e.refs++;
  let closed = false;
  return {
    getKeys: (h) => e.source.getKeys(h),
    status: () => e.source.status(),
    keySetId: () => e.source.keySetId(),
    close() {
      if (closed) return;
      closed = true;
      if (--e.refs > 0) return;
      e.source.close();
      if (map.get(fingerprint) === e) map.delete(fingerprint);
    },
  };
};

// ---- JWK → KeyObject -------------------------------------------------------------------------

export interface ParsedJwks {
  readonly keys: readonly VerificationKey[];
  readonly skipped: readonly { readonly kid?: string; readonly reason: string }[];
}

const CURVE_BY_CRV: Readonly<Record<string, string>> = { "P-256": "prime256v1", "P-384": "secp384r1", "P-521": "secp521r1", Ed25519: "ed25519", Ed448: "ed448" };
const PUBLIC_MEMBERS: Readonly<Record<string, readonly string[]>> = { RSA: ["n", "e"], EC: ["crv", "x", "y"], OKP: ["crv", "x"] };

/** Converts a JWKS document into verification keys, skipping keys that cannot verify signatures here. Throws on a malformed document. */
export function parseJwks(doc: unknown, opts: { readonly minRsaBits: number } = DEFAULT_KEY_SOURCE_TUNING): ParsedJwks {
  if (typeof doc !== "object" || doc === null || !Array.isArray((doc as { keys?: unknown }).keys)) {
    throw new Error("JWKS is not an object with a keys array");
  }
  const keys: VerificationKey[] = [];
  const skipped: { kid?: string; reason: string }[] = [];
  const seen = new Set<string>();
  for (const raw of (doc as { keys: unknown[] }).keys) {
    const r = parseJwk(raw, opts.minRsaBits);
    if ("reason" in r) { skipped.push(r); continue; }
    if (r.kid !== undefined) {
      if (seen.has(r.kid)) { skipped.push({ kid: r.kid, reason: "duplicate kid" }); continue; }
      seen.add(r.kid);
    }
    keys.push(r);
  }
  return { keys, skipped };
}

function parseJwk(raw: unknown, minRsaBits: number): VerificationKey | { kid?: string; reason: string } {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return { reason: "not an object" };
  const jwk = raw as Record<string, unknown>;
  const kid = typeof jwk.kid === "string" ? jwk.kid : undefined;
  const skip = (reason: string) => (kid === undefined ? { reason } : { kid, reason });
  if (jwk.kid !== undefined && kid === undefined) return skip("kid is not a string");
  if (jwk.use !== undefined && jwk.use !== "sig") return skip(`use ${JSON.stringify(jwk.use)} is not sig`);
  if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes("verify"))) return skip("key_ops lacks verify");
  if (jwk.alg !== undefined && (typeof jwk.alg !== "string" || !ALG_KEY_TYPE[jwk.alg])) return skip(`unsupported alg ${JSON.stringify(jwk.alg)}`);
  const kty = typeof jwk.kty === "string" ? jwk.kty : "";
  const members = PUBLIC_MEMBERS[kty];
  if (!members) return skip(`unsupported kty ${JSON.stringify(jwk.kty)}`);
  if (kty !== "RSA" && !(typeof jwk.crv === "string" && CURVE_BY_CRV[jwk.crv])) return skip(`unsupported crv ${JSON.stringify(jwk.crv)}`);
  const pub: Record<string, string> = { kty };
  for (const m of members) {
    if (typeof jwk[m] !== "string") return skip(`missing ${m}`);
    pub[m] = jwk[m] as string;
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: pub as unknown as import("node:crypto").JsonWebKey, format: "jwk" });
  } catch (err) {
    return skip(`invalid key material: ${(err as Error).message}`);
  }
  if (kty === "RSA" && (key.asymmetricKeyDetails?.modulusLength ?? 0) < minRsaBits) return skip(`RSA modulus shorter than ${minRsaBits} bits`);
  const alg = typeof jwk.alg === "string" ? jwk.alg : undefined;
  if (alg !== undefined && !keyFitsAlg(key, alg)) return skip(`alg ${alg} does not fit the key type`);
  return { key, ...(kid === undefined ? {} : { kid }), ...(alg === undefined ? {} : { alg }) };
}

const ALG_KEY_TYPE: Readonly<Record<string, { type: readonly string[]; curve?: string }>> = {
  RS256: { type: ["rsa"] }, RS384: { type: ["rsa"] }, RS512: { type: ["rsa"] },
  PS256: { type: ["rsa", "rsa-pss"] }, PS384: { type: ["rsa", "rsa-pss"] }, PS512: { type: ["rsa", "rsa-pss"] },
  ES256: { type: ["ec"], curve: "prime256v1" }, ES384: { type: ["ec"], curve: "secp384r1" }, ES512: { type: ["ec"], curve: "secp521r1" },
  EdDSA: { type: ["ed25519", "ed448"] }, Ed25519: { type: ["ed25519"] },
};

/** Whether a key can verify a signature made with `alg` (key type and curve). */
export function keyFitsAlg(key: KeyObject, alg: string): boolean {
  const want = ALG_KEY_TYPE[alg];
  if (!want || !key.asymmetricKeyType || !want.type.includes(key.asymmetricKeyType)) return false;
  return want.curve === undefined || key.asymmetricKeyDetails?.namedCurve === want.curve;
}

function usableFor(keys: readonly VerificationKey[], alg: string): VerificationKey[] {
  return keys.filter((k) => (k.alg === undefined || k.alg === alg) && keyFitsAlg(k.key, alg));
}

// ---- static keys -----------------------------------------------------------------------------

function createStaticKeySource(provider: string, rawKeys: readonly unknown[], tuning: KeySourceTuning, metrics: JwksMetrics | undefined): JwksKeySource {
  const parsed = parseJwks({ keys: rawKeys }, tuning);
  if (parsed.keys.length === 0) throw new Error(`provider ${provider}: none of the inline keys is usable${parsed.skipped[0] ? ` (${parsed.skipped[0].reason})` : ""}`);
  const byKid = new Map(parsed.keys.filter((k) => k.kid !== undefined).map((k) => [k.kid as string, k]));
  metrics?.keys.set({ provider }, parsed.keys.length);
  const id = keySetId(parsed.keys);
  return {
    async getKeys(h) {
      if (h.kid === undefined) return usableFor(parsed.keys, h.alg);
      const k = byKid.get(h.kid);
      if (!k) {
        metrics?.unknownKid.inc({ provider, outcome: "static" });
        throw new KeySourceError("unknown_kid", `provider ${provider}: no key with kid ${JSON.stringify(h.kid)}`);
      }
      return usableFor([k], h.alg);
    },
    status: () => ({ ready: true, keyCount: parsed.keys.length }),
    keySetId: () => id,
    refresh: () => Promise.resolve(),
    close: () => undefined,
  };
}

// ---- remote / file keys ----------------------------------------------------------------------

interface Loaded {
  readonly body: unknown;
  readonly maxAgeSeconds?: number;
}

class RemoteKeySource implements JwksKeySource {
  private readonly provider: string;
  private readonly fetch: FetchLike;
  private readonly now: () => number;
  private readonly discovery?: DiscoveryClient;
  private readonly untrack: () => void;

  private keys: readonly VerificationKey[] = [];
  private keysId = "";
  private byKid = new Map<string, VerificationKey>();
  private fetchedAt: number | undefined;
  private refreshAt = 0;
  private nextRetryAt = 0;
  private consecutiveFailures = 0;
  private lastError: { code: string; message: string } | undefined;
  private lastKidRefetchAt = Number.NEGATIVE_INFINITY;
  private readonly negative = new Map<string, number>();
  private inflight: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly config: KeySourceConfig, private readonly tuning: KeySourceTuning, private readonly deps: KeySourceDeps, private readonly metrics: JwksMetrics | undefined) {
    this.provider = config.provider;
    this.fetch = deps.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.now = deps.now ?? Date.now;
    const spec = config.jwks;
    if ("uri" in spec) {
      assertFetchableUrl(spec.uri, tuning.allowInsecureHttp, `provider ${this.provider}: jwks.uri`);
    } else if ("discovery" in spec) {
      if (!config.issuer) throw new Error(`provider ${this.provider}: jwks.discovery requires an issuer`);
      this.discovery = createDiscoveryClient(
        { provider: this.provider, issuer: config.issuer, fetchTimeoutMs: tuning.fetchTimeoutMs, maxBytes: tuning.maxBytes, minTtlMs: tuning.minTtlMs, maxTtlMs: tuning.maxTtlMs, defaultTtlMs: tuning.defaultTtlMs, allowInsecureHttp: tuning.allowInsecureHttp },
        metrics ? { fetch: this.fetch, now: this.now, metrics } : { fetch: this.fetch, now: this.now },
      );
    }
    this.untrack = metrics?.track({ provider: this.provider, keyAgeSeconds: () => (this.fetchedAt === undefined ? undefined : (this.now() - this.fetchedAt) / 1000) }) ?? (() => undefined);
    if (tuning.backgroundRefresh) void this.refresh();
  }

  async getKeys(h: { readonly alg: string; readonly kid?: string }): Promise<readonly VerificationKey[]> {
    if (this.fetchedAt === undefined) {
      if (this.inflight || this.now() >= this.nextRetryAt) await this.refresh();
      if (this.fetchedAt === undefined) throw this.unavailable("no keys could be loaded");
    } else {
      this.maybeRefreshInBackground();
    }
    if (h.kid === undefined) return usableFor(this.keys, h.alg);
    const known = this.byKid.get(h.kid);
    if (known) return usableFor([known], h.alg);
    return this.lookupUnknownKid(h.kid, h.alg);
  }

  private async lookupUnknownKid(kid: string, alg: string): Promise<readonly VerificationKey[]> {
    const negUntil = this.negative.get(kid);
    if (negUntil !== undefined) {
      if (this.now() < negUntil) {
        this.metrics?.unknownKid.inc({ provider: this.provider, outcome: "negative_cached" });
        throw this.unknownKid(kid);
      }
      this.negative.delete(kid);
    }
    if (this.inflight) {
      await this.inflight;
    } else if (this.now() - this.lastKidRefetchAt >= this.tuning.unknownKidCooldownMs) {
      this.lastKidRefetchAt = this.now();
      this.metrics?.unknownKid.inc({ provider: this.provider, outcome: "refetched" });
      await this.refresh();
    } else {
      this.metrics?.unknownKid.inc({ provider: this.provider, outcome: "cooldown" });
    }
    const found = this.byKid.get(kid);
    if (found) {
      this.metrics?.unknownKid.inc({ provider: this.provider, outcome: "found_after_refetch" });
      return usableFor([found], alg);
    }
    // The endpoint failing means we cannot tell whether the kid is genuine: that is our outage, not the client's fault.
    if (this.lastError) throw this.unavailable(`kid ${JSON.stringify(kid)} is not among the cached keys`);
    this.rememberUnknown(kid);
    throw this.unknownKid(kid);
  }

  private rememberUnknown(kid: string): void {
    if (kid.length > 256) return;
    this.negative.delete(kid);
    while (this.negative.size >= this.tuning.negativeCacheMax) {
      const oldest = this.negative.keys().next().value as string;
      this.negative.delete(oldest);
    }
    this.negative.set(kid, this.now() + this.tuning.negativeCacheTtlMs);
  }

  status(): KeySourceStatus {
    const keyCount = this.keys.length;
    if (this.fetchedAt === undefined) {
      return { ready: false, keyCount, detail: this.lastError ? `provider ${this.provider}: ${this.lastError.message}` : `provider ${this.provider}: keys not loaded yet` };
    }
    if (this.lastError) return { ready: true, keyCount, detail: `provider ${this.provider}: serving cached keys; last refresh failed: ${this.lastError.message}` };
    return { ready: true, keyCount };
  }

  keySetId(): string {
    return this.keysId;
  }

  refresh(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.inflight ??= this.load().finally(() => { this.inflight = undefined; });
    return this.inflight;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.untrack();
  }

  private maybeRefreshInBackground(): void {
    if (this.inflight || this.closed) return;
    const now = this.now();
    if (now >= this.refreshAt && now >= this.nextRetryAt) void this.refresh();
  }

  private async load(): Promise<void> {
    const document = "discovery" in this.config.jwks ? "jwks_via_discovery" : "file" in this.config.jwks ? "jwks_file" : "jwks";
    try {
      const loaded = await this.loadDocument();
      let parsed: ParsedJwks;
      try {
        parsed = parseJwks(loaded.body, this.tuning);
      } catch (err) {
        throw new KeyLoadFailed("invalid_jwks", (err as Error).message);
      }
      if (parsed.keys.length === 0) throw new KeyLoadFailed("invalid_jwks", `JWKS holds no usable signing key${parsed.skipped[0] ? ` (${parsed.skipped[0].reason})` : ""}`);
      if (this.closed) return;
      this.install(parsed.keys, clampTtl(loaded.maxAgeSeconds, this.tuning));
      this.metrics?.fetches.inc({ provider: this.provider, document, result: "ok" });
      if (parsed.skipped.length > 0) this.deps.log?.info?.({ provider: this.provider, skipped: parsed.skipped }, "jwks: skipped unusable keys");
    } catch (err) {
      const code = errorCode(err);
      const message = code === "issuer_mismatch" || code === "invalid_document" ? (err as Error).message : `${document} fetch failed (${code}): ${(err as Error).message}`;
      this.lastError = { code, message };
      this.consecutiveFailures++;
      const backoff = Math.min(this.tuning.retryMaxMs, this.tuning.retryMinMs * 2 ** Math.min(20, this.consecutiveFailures - 1));
      this.nextRetryAt = this.now() + backoff;
      this.metrics?.fetches.inc({ provider: this.provider, document, result: code });
      this.metrics?.failures.inc({ provider: this.provider, document, reason: code });
      this.deps.log?.warn({ provider: this.provider, code, failures: this.consecutiveFailures, haveKeys: this.keys.length > 0 }, `jwks: ${message}`);
      this.schedule(backoff);
    }
  }

  private async loadDocument(): Promise<Loaded> {
    const spec = this.config.jwks;
    const limits = { fetch: this.fetch, timeoutMs: this.tuning.fetchTimeoutMs, maxBytes: this.tuning.maxBytes, init: { headers: { accept: "application/json, application/jwk-set+json" } } };
    if ("file" in spec) {
      const buf = await (this.deps.readFile ?? fsReadFile)(spec.file).catch((err: unknown) => { throw new KeyLoadFailed("file_error", `cannot read ${spec.file}: ${(err as Error).message}`); });
      if (buf.byteLength > this.tuning.maxBytes) throw new KeyLoadFailed("too_large", `${spec.file} exceeds ${this.tuning.maxBytes} bytes`);
      try {
        return { body: JSON.parse(buf.toString("utf8")) };
      } catch {
        throw new KeyLoadFailed("invalid_json", `${spec.file} is not JSON`);
      }
    }
    if ("uri" in spec) return fetchJson(spec.uri, limits);
    if (!this.discovery) throw new KeyLoadFailed("invalid_document", "no discovery client");
    // After a failed JWKS fetch the jwks_uri may have moved: re-read the discovery document first.
    const uri = await this.discovery.jwksUri(this.lastError !== undefined && this.lastError.code !== "issuer_mismatch");
    return fetchJson(uri, limits);
  }

  private install(keys: readonly VerificationKey[], ttlMs: number): void {
    const now = this.now();
    this.keys = keys;
    this.keysId = keySetId(keys);
    this.byKid = new Map(keys.filter((k) => k.kid !== undefined).map((k) => [k.kid as string, k]));
    for (const kid of this.byKid.keys()) this.negative.delete(kid);
    this.fetchedAt = now;
    this.refreshAt = now + ttlMs * this.tuning.refreshAhead;
    this.lastError = undefined;
    this.consecutiveFailures = 0;
    this.nextRetryAt = 0;
    this.metrics?.keys.set({ provider: this.provider }, keys.length);
    this.schedule(ttlMs * this.tuning.refreshAhead);
  }

  private schedule(delayMs: number): void {
    if (!this.tuning.backgroundRefresh || this.closed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => { this.timer = undefined; void this.refresh(); }, Math.max(0, Math.min(delayMs, 2 ** 31 - 1)));
    this.timer.unref();
  }

  private unavailable(why: string): KeySourceError {
    const last = this.lastError ? `: ${this.lastError.message}` : "";
    return new KeySourceError("unavailable", `provider ${this.provider}: ${why}${last}`);
  }

  private unknownKid(kid: string): KeySourceError {
    return new KeySourceError("unknown_kid", `provider ${this.provider}: no key with kid ${JSON.stringify(kid.slice(0, 64))}`);
  }
}

class KeyLoadFailed extends Error {
  constructor(readonly code: "invalid_jwks" | "file_error" | "too_large" | "invalid_json" | "invalid_document", message: string) {
    super(message);
    this.name = "KeyLoadFailed";
  }
}

function errorCode(err: unknown): string {
  if (err instanceof FetchFailed || err instanceof DiscoveryFailed || err instanceof KeyLoadFailed) return err.code;
  return "internal";
}
