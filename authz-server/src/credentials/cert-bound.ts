// Certificate-bound access tokens (RFC 8705 §3): a token whose `cnf` claim holds `x5t#S256` is only
// accepted with the client certificate it was bound to — the one Envoy forwards in the CheckRequest.
import { createHash, timingSafeEqual, X509Certificate } from "node:crypto";
import { CredentialInvalid } from "../errors.js";
import type { Attributes, UserIdentity } from "../model.js";
import type { CredentialPlugin, IdentityCheck } from "./index.js";
import { ExpiringLru } from "./expiring-lru.js";

/** base64url(SHA-256(DER)) of the first certificate in a PEM string (RFC 8705 §3.1). */
export function certificateThumbprint(pem: string): string {
  return createHash("sha256").update(new X509Certificate(pem).raw).digest("base64url");
}

const MAX_CERT_CHARS = 64 * 1024;

/**
 * Envoy's `attributes.source.certificate` is the URL-encoded PEM of the peer certificate, present when
 * the listener has `include_peer_certificate: true` and the client presented one over TLS.
 */
export function createCertBoundCheck(opts: { readonly now?: () => number; readonly cacheSize?: number } = {}): IdentityCheck {
  const now = opts.now ?? Date.now;
  const thumbprints = new ExpiringLru<string | null>(opts.cacheSize ?? 1024);
  const thumbprintOf = (encoded: string): string | null => {
    const cached = thumbprints.get(encoded, now());
    if (cached !== undefined) return cached;
    let t: string | null;
    try {
      t = certificateThumbprint(decodeURIComponent(encoded));
    } catch {
      t = null;
    }
    thumbprints.set(encoded, t, now() + 10 * 60_000);
    return t;
  };
  return {
    name: "certificate-bound",
    check(user: UserIdentity, _candidate: unknown, attrs: Attributes): Promise<void> {
      const cnf = user.claims.cnf;
      if (cnf === undefined || cnf === null || typeof cnf !== "object" || !Object.hasOwn(cnf, "x5t#S256")) return Promise.resolve();
      const bound = (cnf as Record<string, unknown>)["x5t#S256"];
      if (typeof bound !== "string" || !/^[A-Za-z0-9_-]{43}$/.test(bound)) {
        return Promise.reject(new CredentialInvalid("ERR_CERT_BOUND_MALFORMED", "cnf x5t#S256 is not a base64url SHA-256 thumbprint"));
      }
      const encoded = attrs.source.certificate;
      if (!encoded) {
        return Promise.reject(new CredentialInvalid("ERR_CERT_BOUND_NO_CERTIFICATE", "token is bound to a client certificate (cnf x5t#S256) and the request presented none"));
      }
      const actual = encoded.length <= MAX_CERT_CHARS ? thumbprintOf(encoded) : null;
      if (actual === null) {
        return Promise.reject(new CredentialInvalid("ERR_CERT_BOUND_BAD_CERTIFICATE", "the client certificate could not be parsed"));
      }
      const a = Buffer.from(actual);
      const b = Buffer.from(bound);
      if (a.length !== b.length || !timingSafeEqual(a, b)) {
        return Promise.reject(new CredentialInvalid("ERR_CERT_BOUND_MISMATCH", "the client certificate does not match the token's cnf x5t#S256"));
      }
      return Promise.resolve();
    },
  };
}

/** The credentials-stage plugin adding the certificate-binding check. */
export function certBoundPlugin(): CredentialPlugin {
  const check = createCertBoundCheck();
  return { name: "certificate-bound", build: () => ({ checks: [check] }) };
}
