// OIDC discovery: resolves `<issuer without trailing />/.well-known/openid-configuration`, refuses a
// document whose `issuer` differs from the configured one, and caches its `jwks_uri` with refresh.
import { fetchJson, FetchFailed, type FetchLike } from "./bounded-fetch.js";
import type { JwksMetrics } from "./jwks-metrics.js";

export type DiscoveryFailureCode = "issuer_mismatch" | "invalid_document";

export class DiscoveryFailed extends Error {
  constructor(readonly code: DiscoveryFailureCode, message: string) {
    super(message);
    this.name = "DiscoveryFailed";
  }
}

/** The discovery URL for an issuer, per OpenID Connect Discovery 1.0 §4. */
export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/+$/, "")}/.well-known/openid-configuration`;
}

export interface DiscoveryOptions {
  readonly provider: string;
  readonly issuer: string;
  readonly fetchTimeoutMs: number;
  readonly maxBytes: number;
  readonly minTtlMs: number;
  readonly maxTtlMs: number;
  readonly defaultTtlMs: number;
  /** Accept `http:` URLs for non-loopback hosts (loopback is always accepted). */
  readonly allowInsecureHttp: boolean;
}

export interface DiscoveryDeps {
  readonly fetch: FetchLike;
  readonly now: () => number;
  readonly metrics?: JwksMetrics;
}

export interface DiscoveryClient {
  /** The cached `jwks_uri`, fetching the document when absent, expired or when `refresh` is set. Rejects with FetchFailed or DiscoveryFailed. */
  jwksUri(refresh?: boolean): Promise<string>;
}

export function createDiscoveryClient(opts: DiscoveryOptions, deps: DiscoveryDeps): DiscoveryClient {
  const url = discoveryUrl(opts.issuer);
  assertFetchableUrl(url, opts.allowInsecureHttp, "discovery URL");
  let cached: { uri: string; expiresAt: number } | undefined;
  let inflight: Promise<string> | undefined;

  const load = async (): Promise<string> => {
    try {
      const doc = await fetchJson(url, { fetch: deps.fetch, timeoutMs: opts.fetchTimeoutMs, maxBytes: opts.maxBytes, init: { headers: { accept: "application/json" } } });
      const uri = validateDocument(doc.body, opts);
      const ttl = clampTtl(doc.maxAgeSeconds, opts);
      cached = { uri, expiresAt: deps.now() + ttl };
      deps.metrics?.fetches.inc({ provider: opts.provider, document: "discovery", result: "ok" });
      return uri;
    } catch (err) {
      const code = err instanceof FetchFailed || err instanceof DiscoveryFailed ? err.code : "invalid_document";
      deps.metrics?.fetches.inc({ provider: opts.provider, document: "discovery", result: code });
      deps.metrics?.failures.inc({ provider: opts.provider, document: "discovery", reason: code });
      throw err;
    }
  };

  return {
    jwksUri(refresh = false) {
      if (cached && !refresh && deps.now() < cached.expiresAt) return Promise.resolve(cached.uri);
      inflight ??= load().finally(() => { inflight = undefined; });
      return inflight;
    },
  };
}

function validateDocument(body: unknown, opts: DiscoveryOptions): string {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new DiscoveryFailed("invalid_document", "discovery document is not a JSON object");
  const doc = body as Record<string, unknown>;
  if (doc.issuer !== opts.issuer) {
    throw new DiscoveryFailed("issuer_mismatch", `discovery issuer mismatch: document names ${JSON.stringify(doc.issuer)}, configured ${JSON.stringify(opts.issuer)}`);
  }
  if (typeof doc.jwks_uri !== "string" || doc.jwks_uri.length === 0) throw new DiscoveryFailed("invalid_document", "discovery document has no jwks_uri");
  try {
    assertFetchableUrl(doc.jwks_uri, opts.allowInsecureHttp, "jwks_uri");
  } catch (err) {
    throw new DiscoveryFailed("invalid_document", (err as Error).message);
  }
  return doc.jwks_uri;
}

export function clampTtl(maxAgeSeconds: number | undefined, o: { minTtlMs: number; maxTtlMs: number; defaultTtlMs: number }): number {
  const ms = maxAgeSeconds === undefined ? o.defaultTtlMs : maxAgeSeconds * 1000;
  return Math.min(o.maxTtlMs, Math.max(o.minTtlMs, ms));
}

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "[::1]", "localhost"]);

/** Throws unless `url` is https, or http to a loopback host (or any host when `allowInsecureHttp`). */
export function assertFetchableUrl(url: string, allowInsecureHttp: boolean, what: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`${what} ${JSON.stringify(url)} is not a valid URL`);
  }
  if (u.protocol === "https:") return;
  if (u.protocol === "http:" && (allowInsecureHttp || LOOPBACK_HOSTS.has(u.hostname))) return;
  throw new Error(`${what} ${JSON.stringify(url)} must use https`);
}
