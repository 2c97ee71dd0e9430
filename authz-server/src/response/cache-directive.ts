// The cache directive authz-server attaches to a cacheable decision for the authz-cache filter:
// `x-meshward-cache: <hex HMAC-SHA256>.<json>`, bound to the stream's nonce (filters/authz-cache/README.md).
import { createHmac } from "node:crypto";
import { readSecretRef } from "../credentials/introspection.js";
import type { Attributes, Decision } from "../model.js";
import type { CompiledPolicy } from "../policy/compiled.js";
import { decisionDependencies } from "../policy/dependencies.js";
import { durationMs } from "../policy/duration.js";
import type { CheckResponseObject } from "./check-response.js";

export const CACHE_DIRECTIVE_HEADER = "x-meshward-cache";
export const CACHE_NONCE_HEADER = "x-meshward-cache-nonce";
export const DEFAULT_CACHE_MAX_TTL_MS = 60_000;
const NONCE = /^[0-9a-f]{32}$/;

interface CacheSettings {
  readonly maxTtlMs: number;
  readonly cacheDenials: boolean;
  readonly secret: string | undefined;
}

const settingsByPolicy = new WeakMap<CompiledPolicy, CacheSettings>();

/** The policy's `spec.cache` settings; the secret is read once per policy generation. Throws PolicyInvalid on an unreadable secret. */
export function cacheSettings(policy: CompiledPolicy): CacheSettings {
  let s = settingsByPolicy.get(policy);
  if (!s) {
    const spec = policy.document.spec.cache;
    const secret = spec?.enabled && spec.secret ? readSecretRef(spec.secret, policy.file, "spec.cache.secret") : undefined;
    s = { maxTtlMs: durationMs(spec?.maxTtl, DEFAULT_CACHE_MAX_TTL_MS), cacheDenials: spec?.cacheDenials !== false, secret };
    settingsByPolicy.set(policy, s);
  }
  return s;
}

/** Why a decision is not cacheable, or undefined when it is (given its rule set's dependencies). */
export function uncacheableDecision(decision: Decision): string | undefined {
  if (decision.unavailable) return "unavailable";
  if (decision.httpStatus === 431) return "request_too_large";
  if (decision.httpStatus >= 500) return "server_error";
  if (decision.bearerError === "invalid_token") return "credential_error";
  if (decision.reason === "internal_error") return "internal_error";
  return undefined;
}

export interface DirectiveInput {
  readonly decision: Decision;
  readonly policy: CompiledPolicy;
  readonly attrs: Attributes;
  readonly response: CheckResponseObject;
  readonly epoch: string;
  readonly nowMs: number;
}

/**
 * The directive header value, or undefined when the request carries no valid nonce (no authz-cache
 * filter in front), caching is off, or the decision is not cacheable.
 */
export function cacheDirective(input: DirectiveInput): string | undefined {
  const { decision, policy, attrs, response, nowMs } = input;
  const nonce = attrs.headers[CACHE_NONCE_HEADER];
  if (!nonce || !NONCE.test(nonce)) return undefined;
  const settings = cacheSettings(policy);
  if (!settings.secret) return undefined;
  if (uncacheableDecision(decision)) return undefined;
  if (!decision.allowed && !settings.cacheDenials) return undefined;
  const deps = decisionDependencies(policy, policy.rulesForHost(attrs.host), attrs);
  if (!deps.shape) return undefined;

  let expiresAt = nowMs + settings.maxTtlMs;
  const user = decision.identity.user;
  if (user?.expiresAt !== undefined) expiresAt = Math.min(expiresAt, user.expiresAt * 1000);
  if (user?.providerType === "introspection") {
    const p = policy.providers.introspection?.find((i) => i.name === user.provider);
    expiresAt = Math.min(expiresAt, nowMs + durationMs(p?.cacheTtl, 60_000));
  }
  const ttl = expiresAt - nowMs;
  if (ttl < 1000) return undefined;

  const pairs = (hs: readonly { header: { key: string; value: string } }[]) => hs.map((h) => [h.header.key, h.header.value]);
  // The size limits travel along: a hit is refused for a request authz-server would answer 431.
  const body: Record<string, unknown> = { v: 1, n: nonce, e: input.epoch, x: expiresAt, t: ttl, k: deps.shape, l: [policy.limits.maxHeaders, policy.limits.maxHeaderBytes] };
  if (decision.allowed && response.okResponse) {
    Object.assign(body, {
      d: "allow",
      s: 200,
      h: pairs(response.okResponse.headers),
      r: response.okResponse.headersToRemove,
      rh: pairs(response.okResponse.responseHeadersToAdd),
    });
  } else if (!decision.allowed && response.deniedResponse) {
    Object.assign(body, { d: "deny", s: response.deniedResponse.status.code, h: pairs(response.deniedResponse.headers), b: response.deniedResponse.body });
  } else {
    return undefined;
  }
  // Header-safe JSON: only printable ASCII (non-ASCII escaped as \uXXXX).
  const json = JSON.stringify(body).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  const mac = createHmac("sha256", settings.secret).update(json).digest("hex");
  return `${mac}.${json}`;
}

/** Adds the directive to the rendered response (in place): response_headers_to_add on allow, the denial's headers on deny. */
export function attachCacheDirective(input: DirectiveInput): boolean {
  const value = cacheDirective(input);
  if (!value) return false;
  const h = { header: { key: CACHE_DIRECTIVE_HEADER, value }, appendAction: "OVERWRITE_IF_EXISTS_OR_ADD" as const };
  if (input.response.okResponse) input.response.okResponse.responseHeadersToAdd = [...input.response.okResponse.responseHeadersToAdd, h];
  else if (input.response.deniedResponse) input.response.deniedResponse.headers = [...input.response.deniedResponse.headers, h];
  return true;
}
