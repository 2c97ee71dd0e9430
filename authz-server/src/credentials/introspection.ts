// OAuth2 token introspection (RFC 7662) for opaque bearer tokens: client_secret_basic/post, `active`
// and exp/nbf/aud checks, identity mapping, results cached by token hash (in memory and optionally
// Redis), a request timeout and a circuit breaker. Endpoint trouble is a 503-class `introspection_unavailable`.
import { hash } from "node:crypto";
import { readFileSync } from "node:fs";
import { Counter, Gauge, type Registry } from "prom-client";
import { CredentialInvalid, DependencyUnavailable, PolicyInvalid, type AuthzError } from "../errors.js";
import type { Attributes, UserIdentity } from "../model.js";
import type { CredentialSourceSpec, IntrospectionProviderSpec, SecretRefSpec } from "../policy/document.js";
import { durationMs } from "../policy/duration.js";
import { fetchJson, FetchFailed, type FetchLike } from "./bounded-fetch.js";
import { CircuitBreaker, type BreakerState } from "./circuit-breaker.js";
import { assertFetchableUrl } from "./discovery.js";
import { DEFAULT_SOURCES, extractFrom } from "./extract.js";
import type { CredentialCandidate, CredentialPlugin, CredentialVerifier } from "./index.js";
import { ExpiringLru } from "./expiring-lru.js";
import type { CachedIntrospection, IntrospectionCache } from "./introspection-cache.js";
import { stringsAt } from "./jwt.js";

export interface IntrospectionOptions {
  readonly name: string;
  readonly endpoint: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly auth: "client_secret_basic" | "client_secret_post";
  /** Upper bound on caching an active result (the token's `exp` bounds it too). */
  readonly cacheTtlMs: number;
  /** How long inactive/expired results are cached. */
  readonly negativeCacheTtlMs: number;
  readonly cacheMaxEntries: number;
  readonly timeoutMs: number;
  readonly maxBytes: number;
  readonly clockSkewMs: number;
  readonly audiences?: readonly string[];
  readonly rolesClaim?: string;
  /** Default `scope` (space-separated, RFC 7662 §2.2). */
  readonly scopesClaim?: string;
  /** Consecutive failures that open the breaker, and how long it stays open before a trial call. */
  readonly breakerFailures: number;
  readonly breakerOpenMs: number;
  readonly allowInsecureHttp: boolean;
}

export const DEFAULT_INTROSPECTION_OPTIONS = Object.freeze({
  auth: "client_secret_basic" as const,
  cacheTtlMs: 60_000,
  negativeCacheTtlMs: 5_000,
  cacheMaxEntries: 10_000,
  timeoutMs: 1_000,
  maxBytes: 64 * 1024,
  clockSkewMs: 30_000,
  breakerFailures: 5,
  breakerOpenMs: 10_000,
  allowInsecureHttp: false,
});

export interface IntrospectionDeps {
  readonly fetch?: FetchLike;
  /** Epoch milliseconds. */
  readonly now?: () => number;
  /** Shared second-tier cache (Redis) so that all replicas reuse each other's results. */
  readonly sharedCache?: IntrospectionCache;
  readonly registry?: Registry;
  readonly log?: { warn(obj: object, msg: string): void };
}

/** A verified identity, or why the token is refused (a string, so the hit path needs only a typeof). */
type Outcome = UserIdentity | keyof typeof FAILURES;

const FAILURES = {
  token_inactive: ["ERR_TOKEN_INACTIVE", "the authorization server reports the token inactive"],
  token_expired: ["ERR_TOKEN_EXPIRED", "token is expired"],
  invalid_audience: ["ERR_TOKEN_AUDIENCE", "token audience is not accepted"],
} as const;

export class Introspector {
  private readonly fetch: FetchLike;
  private readonly now: () => number;
  private readonly local: ExpiringLru<Outcome>;
  private readonly inflight = new Map<string, Promise<Outcome>>();
  private readonly breaker: CircuitBreaker;
  private readonly authHeader: string | undefined;
  private readonly metrics: IntrospectionMetrics | undefined;
  /** Plain counters on the hot path (a labelled prom-client inc costs microseconds); exported at scrape time. */
  private readonly lookups: CacheCounts;
  private lastFailure: string | undefined;

  constructor(readonly opts: IntrospectionOptions, private readonly deps: IntrospectionDeps = {}) {
    assertFetchableUrl(opts.endpoint, opts.allowInsecureHttp, `introspection provider ${opts.name}: endpoint`);
    this.fetch = deps.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.now = deps.now ?? Date.now;
    this.local = new ExpiringLru<Outcome>(opts.cacheMaxEntries);
    this.metrics = deps.registry ? introspectionMetrics(deps.registry) : undefined;
    this.lookups = this.metrics?.cacheCounts(opts.name) ?? newCacheCounts();
    this.breaker = new CircuitBreaker({
      failureThreshold: opts.breakerFailures,
      openMs: opts.breakerOpenMs,
      now: this.now,
      onStateChange: (s) => this.metrics?.breaker.set({ provider: opts.name }, BREAKER_VALUE[s]),
    });
    this.metrics?.breaker.set({ provider: opts.name }, 0);
    // RFC 6749 §2.3.1: client id and secret are form-urlencoded before Basic encoding.
    this.authHeader = opts.auth === "client_secret_basic"
      ? `Basic ${Buffer.from(`${formEncode(opts.clientId)}:${formEncode(opts.clientSecret)}`).toString("base64")}`
      : undefined;
  }

  get breakerState(): BreakerState {
    return this.breaker.state;
  }

  /** The verified user for an opaque token, or rejects with CredentialInvalid (401) / DependencyUnavailable (503). */
  async introspect(token: string): Promise<UserIdentity> {
    // The in-process cache belongs to this provider, so the bare token hash is its key (as in the JWT cache).
    const key = hash("sha256", token, "base64");
    const hit = this.local.get(key, this.now());
    if (hit) {
      this.lookups.memoryHit++;
      return unwrap(hit);
    }
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.resolve(key, token).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return unwrap(await pending);
  }

  status(): { ready: boolean; detail?: string } {
    // Never "not ready": every replica would leave the Service at once while the authorization server is down.
    const s = this.breaker.state;
    return s === "closed" ? { ready: true } : { ready: true, detail: `introspection endpoint failing (circuit ${s}): ${this.lastFailure ?? ""}` };
  }

  private async resolve(key: string, token: string): Promise<Outcome> {
    this.lookups.memoryMiss++;
    if (this.deps.sharedCache) {
      const shared = await this.deps.sharedCache.get(this.sharedKey(key));
      if (shared) this.lookups.sharedHit++; else this.lookups.sharedMiss++;
      if (shared && shared.until > this.now()) {
        const outcome = shared.active ? this.toOutcome(shared.claims) : shared.reason;
        this.local.set(key, outcome, shared.until);
        return outcome;
      }
    }
    const claims = await this.call(token);
    const now = this.now();
    let entry: CachedIntrospection;
    if (claims === undefined) {
      entry = { active: false, reason: "token_inactive", until: now + this.opts.negativeCacheTtlMs };
    } else {
      const exp = typeof claims.exp === "number" && Number.isFinite(claims.exp) ? claims.exp * 1000 : undefined;
      if (exp !== undefined && now >= exp + this.opts.clockSkewMs) {
        entry = { active: false, reason: "token_expired", until: now + this.opts.negativeCacheTtlMs };
      } else {
        entry = { active: true, claims, until: Math.min(now + this.opts.cacheTtlMs, exp ?? Infinity) };
      }
    }
    const outcome = entry.active ? this.toOutcome(entry.claims) : entry.reason;
    const ttl = entry.until - now;
    if (ttl > 0) {
      this.local.set(key, outcome, entry.until);
      await this.deps.sharedCache?.set(this.sharedKey(key), entry, ttl);
    }
    return outcome;
  }

  private sharedKey(tokenHash: string): string {
    return `${this.opts.name}:${tokenHash}`;
  }

  /** POSTs the token; resolves the claims of an active token or undefined for an inactive one. */
  private async call(token: string): Promise<Record<string, unknown> | undefined> {
    const provider = this.opts.name;
    if (!this.breaker.tryAcquire()) {
      this.metrics?.requests.inc({ provider, result: "circuit_open" });
      throw unavailable(provider, `circuit open after repeated failures (retry in ${this.breaker.retryInMs()} ms): ${this.lastFailure ?? ""}`);
    }
    const form = new URLSearchParams({ token, token_type_hint: "access_token" });
    const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded", accept: "application/json" };
    if (this.authHeader) headers.authorization = this.authHeader;
    else { form.set("client_id", this.opts.clientId); form.set("client_secret", this.opts.clientSecret); }
    let body: unknown;
    try {
      body = (await fetchJson(this.opts.endpoint, { fetch: this.fetch, timeoutMs: this.opts.timeoutMs, maxBytes: this.opts.maxBytes, init: { method: "POST", headers, body: form.toString() } })).body;
      if (typeof body !== "object" || body === null || Array.isArray(body) || typeof (body as { active?: unknown }).active !== "boolean") {
        throw new FetchFailed("invalid_json", "response is not an RFC 7662 object with a boolean 'active'");
      }
    } catch (err) {
      this.breaker.onFailure();
      const code = err instanceof FetchFailed ? err.code : "network";
      this.lastFailure = `${code}: ${(err as Error).message}`;
      this.metrics?.requests.inc({ provider, result: code });
      this.deps.log?.warn({ provider, code, breaker: this.breaker.state }, `introspection: ${(err as Error).message}`);
      throw unavailable(provider, this.lastFailure, err);
    }
    this.breaker.onSuccess();
    const claims = body as Record<string, unknown>;
    this.metrics?.requests.inc({ provider, result: claims.active ? "active" : "inactive" });
    if (claims.active !== true) return undefined;
    const { active: _active, ...rest } = claims;
    return rest;
  }

  private toOutcome(claims: Readonly<Record<string, unknown>>): Outcome {
    const aud = this.opts.audiences;
    if (aud && aud.length > 0) {
      const list = typeof claims.aud === "string" ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : [];
      if (!list.some((a) => typeof a === "string" && aud.includes(a))) return "invalid_audience";
    }
    const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);
    const exp = typeof claims.exp === "number" && Number.isFinite(claims.exp) ? claims.exp : undefined;
    const identity: UserIdentity = Object.freeze({
      kind: "user",
      provider: this.opts.name,
      providerType: "introspection",
      // Client-credentials tokens have no sub: the client is then the subject.
      subject: str(claims.sub) ?? str(claims.username) ?? str(claims.client_id) ?? "",
      claims: Object.freeze({ ...claims }),
      roles: Object.freeze(stringsAt(claims, this.opts.rolesClaim)),
      scopes: Object.freeze(stringsAt(claims, this.opts.scopesClaim ?? "scope")),
      ...(exp !== undefined ? { expiresAt: exp } : {}),
    });
    return identity;
  }
}

function unwrap(o: Outcome): UserIdentity {
  if (typeof o !== "string") return o;
  throw failure(o);
}

function failure(reason: keyof typeof FAILURES): CredentialInvalid {
  const [code, message] = FAILURES[reason];
  return new CredentialInvalid(code, message);
}

function unavailable(provider: string, detail: string, cause?: unknown): AuthzError {
  return new DependencyUnavailable("ERR_INTROSPECTION_UNAVAILABLE", `introspection provider ${provider}: ${detail}`, cause === undefined ? undefined : { cause });
}

function formEncode(s: string): string {
  return encodeURIComponent(s).replace(/%20/g, "+");
}

// ---- policy wiring ---------------------------------------------------------------------------

/** Reads a `{ file }` or `{ env }` secret; errors name the policy file and path. */
export function readSecretRef(ref: SecretRefSpec, policyFile: string, path: string, env: NodeJS.ProcessEnv = process.env): string {
  if (ref.env !== undefined) {
    const v = env[ref.env];
    if (!v) throw new PolicyInvalid(policyFile, `${path}.env`, `environment variable ${ref.env} is not set`);
    return v;
  }
  if (ref.file === undefined) throw new PolicyInvalid(policyFile, path, "needs 'file' or 'env'");
  let v: string;
  try {
    v = readFileSync(ref.file, "utf8").replace(/\r?\n$/, "");
  } catch (err) {
    throw new PolicyInvalid(policyFile, `${path}.file`, `cannot read secret file: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
  }
  if (!v) throw new PolicyInvalid(policyFile, `${path}.file`, "secret file is empty");
  return v;
}

export function introspectionOptionsFromSpec(spec: IntrospectionProviderSpec, policyFile: string, index: number, env: NodeJS.ProcessEnv = process.env): IntrospectionOptions {
  const d = DEFAULT_INTROSPECTION_OPTIONS;
  return {
    ...d,
    name: spec.name,
    endpoint: spec.endpoint,
    clientId: spec.clientId,
    clientSecret: readSecretRef(spec.clientSecret, policyFile, `spec.providers.introspection[${index}].clientSecret`, env),
    auth: spec.auth ?? d.auth,
    cacheTtlMs: durationMs(spec.cacheTtl, d.cacheTtlMs),
    timeoutMs: durationMs(spec.timeout, d.timeoutMs),
    ...(spec.audiences ? { audiences: spec.audiences } : {}),
    ...(spec.roles ? { rolesClaim: spec.roles.claim } : {}),
    ...(spec.scopes ? { scopesClaim: spec.scopes.claim } : {}),
  };
}

/** A CredentialVerifier over one introspection provider (opaque tokens from its `from` sources). */
export function createIntrospectionVerifier(introspector: Introspector, from: readonly CredentialSourceSpec[] = DEFAULT_SOURCES): CredentialVerifier {
  return {
    type: "introspection",
    extract: (attrs: Attributes): CredentialCandidate | undefined => extractFrom(attrs, from),
    verify: (candidate: CredentialCandidate) => introspector.introspect(candidate.value),
    status: () => introspector.status(),
    close: () => undefined,
  };
}

/**
 * The credentials-stage plugin: one verifier per `spec.providers.introspection` entry, in policy order.
 * Introspectors (and so their caches and breakers) survive policy reloads while a provider's settings are unchanged.
 */
export function introspectionPlugin(deps: Omit<IntrospectionDeps, "now" | "registry"> & { readonly env?: NodeJS.ProcessEnv } = {}): CredentialPlugin {
  const live = new Map<string, { fingerprint: string; introspector: Introspector }>();
  return {
    name: "introspection",
    build(ctx) {
      const specs = ctx.policy.providers.introspection ?? [];
      const verifiers = specs.map((spec, i) => {
        const opts = introspectionOptionsFromSpec(spec, ctx.policy.file, i, deps.env);
        const fingerprint = JSON.stringify(opts);
        let entry = live.get(spec.name);
        if (!entry || entry.fingerprint !== fingerprint) {
          const d: IntrospectionDeps = { ...deps, now: () => ctx.clock.now(), registry: ctx.registry, log: ctx.logger };
          entry = { fingerprint, introspector: new Introspector(opts, d) };
          live.set(spec.name, entry);
        }
        return createIntrospectionVerifier(entry.introspector, spec.from ?? DEFAULT_SOURCES);
      });
      for (const name of live.keys()) if (!specs.some((s) => s.name === name)) live.delete(name);
      return { verifiers };
    },
  };
}

// ---- metrics ---------------------------------------------------------------------------------

interface CacheCounts { memoryHit: number; memoryMiss: number; sharedHit: number; sharedMiss: number }
const newCacheCounts = (): CacheCounts => ({ memoryHit: 0, memoryMiss: 0, sharedHit: 0, sharedMiss: 0 });

interface IntrospectionMetrics {
  readonly requests: Counter<"provider" | "result">;
  readonly breaker: Gauge<"provider">;
  /** The per-provider lookup counters, kept across policy reloads. */
  cacheCounts(provider: string): CacheCounts;
}

const BREAKER_VALUE: Readonly<Record<BreakerState, number>> = { closed: 0, half_open: 1, open: 2 };
const metricBundles = new WeakMap<Registry, IntrospectionMetrics>();

function introspectionMetrics(registry: Registry): IntrospectionMetrics {
  let m = metricBundles.get(registry);
  if (m) return m;
  const registers = [registry];
  const counts = new Map<string, CacheCounts>();
  new Counter({
    name: "meshward_introspection_cache_lookups_total",
    help: "Introspection cache lookups by provider, tier (memory, shared) and result.",
    labelNames: ["provider", "tier", "result"] as const,
    registers,
    collect() {
      this.reset();
      for (const [provider, c] of counts) {
        this.inc({ provider, tier: "memory", result: "hit" }, c.memoryHit);
        this.inc({ provider, tier: "memory", result: "miss" }, c.memoryMiss);
        this.inc({ provider, tier: "shared", result: "hit" }, c.sharedHit);
        this.inc({ provider, tier: "shared", result: "miss" }, c.sharedMiss);
      }
    },
  });
  m = {
    cacheCounts(provider) {
      let c = counts.get(provider);
      if (!c) { c = newCacheCounts(); counts.set(provider, c); }
      return c;
    },
    requests: new Counter({ name: "meshward_introspection_requests_total", help: "Calls to introspection endpoints by provider and result (active, inactive, circuit_open or a failure code).", labelNames: ["provider", "result"] as const, registers }),
    breaker: new Gauge({ name: "meshward_introspection_circuit_state", help: "Circuit breaker of the introspection endpoint: 0 closed, 1 half-open, 2 open.", labelNames: ["provider"] as const, aggregator: "max", registers }),
  };
  metricBundles.set(registry, m);
  return m;
}
