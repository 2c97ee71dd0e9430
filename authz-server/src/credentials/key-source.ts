// The contract between JWT verification (jwt.ts) and where verification keys come from (jwks.ts:
// JWKS URI, OIDC discovery, file, inline). Keys are node:crypto KeyObjects so verification can use
// node:crypto directly, without WebCrypto's per-call overhead.
import { createHash, type KeyObject } from "node:crypto";

export interface VerificationKey {
  readonly key: KeyObject;
  readonly kid?: string;
  /** The JWK's `alg` when it names one: a token must then use exactly this alg with this key. */
  readonly alg?: string;
}

export interface KeySourceStatus {
  readonly ready: boolean;
  /** Why the source is not ready (e.g. "discovery issuer mismatch"), for /readyz. */
  readonly detail?: string;
  readonly keyCount: number;
}

export interface KeySource {
  /**
   * The keys that may verify a token with this protected header. With a `kid`, the matching key
   * (fetching the JWKS again, single-flight and rate-limited, when the kid is unknown); without
   * one, every key usable for `alg`. Rejects with a `KeySourceError`.
   */
  getKeys(header: { readonly alg: string; readonly kid?: string }): Promise<readonly VerificationKey[]>;
  status(): KeySourceStatus;
  /**
   * Names the key set now served (see `keySetId`); changes exactly when a refresh installs a different
   * set, e.g. a key removed by rotation. The decision-cache epoch and the verified-token cache follow it.
   */
  keySetId(): string;
  /** Stops background refresh timers. */
  close(): void;
}

/** `unavailable`: the key endpoint failed (503-class); `unknown_kid`: the keys are known and none matches (401). */
export class KeySourceError extends Error {
  constructor(readonly code: "unavailable" | "unknown_kid", message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "KeySourceError";
  }
}

/** A digest of a key set: every key's kid, alg and SHA-256 of its SPKI encoding, order-independent; "" for no keys. */
export function keySetId(keys: readonly VerificationKey[]): string {
  if (keys.length === 0) return "";
  const lines = keys.map((k) => `${k.kid ?? ""} ${k.alg ?? ""} ${createHash("sha256").update(k.key.export({ type: "spki", format: "der" })).digest("base64url")}`).sort();
  return createHash("sha256").update(lines.join("\n")).digest("base64url").slice(0, 22);
}
