// The catalogue of authz-server's stable ERR_* codes: every code the product raises, answers or logs,
// with where it belongs. Meanings and answers are written out in docs/errors.md (test/docs keeps both in step).

/** What kind of answer a Check error calls for; response/decide.ts maps each kind to gRPC and HTTP. */
export type ErrorKind =
  /** The credential is missing, malformed or fails verification: 401 with a Bearer challenge. */
  | "unauthenticated"
  /** The request itself is too large to consider: 431. */
  | "request_too_large"
  /** The request is ambiguous (a non-canonical path, a malformed authority): 400. */
  | "bad_request"
  /** Our infrastructure (JWKS, introspection endpoint, store) failed: UNAVAILABLE + 503. */
  | "unavailable"
  /** The decision pipeline itself failed (a bug, not a dependency): INTERNAL + 500. */
  | "internal";

/** Where a code is answered: a Check answer (with its kind and the reason clients see), start-up/admin, or the quota service. */
export type CodeEntry = { readonly area: "check"; readonly kind: ErrorKind; readonly reason: string } | { readonly area: "startup" } | { readonly area: "quota" };

const check = <K extends ErrorKind, R extends string>(kind: K, reason: R) => ({ area: "check", kind, reason }) as const;
const STARTUP = { area: "startup" } as const;
const QUOTA = { area: "quota" } as const;

export const ERROR_CODES = {
  ERR_JWT_MALFORMED: check("unauthenticated", "token_malformed"),
  ERR_JWT_ALG_NOT_ALLOWED: check("unauthenticated", "algorithm_not_allowed"),
  ERR_JWT_CRIT_UNSUPPORTED: check("unauthenticated", "unsupported_crit"),
  ERR_JWT_NO_ISSUER: check("unauthenticated", "unknown_issuer"),
  ERR_JWT_UNKNOWN_ISSUER: check("unauthenticated", "unknown_issuer"),
  ERR_JWT_NO_KEYS: check("unauthenticated", "unknown_kid"),
  ERR_JWT_UNKNOWN_KID: check("unauthenticated", "unknown_kid"),
  ERR_JWT_SIGNATURE: check("unauthenticated", "invalid_signature"),
  ERR_JWT_EXPIRED: check("unauthenticated", "token_expired"),
  ERR_JWT_NOT_YET_VALID: check("unauthenticated", "token_not_yet_valid"),
  ERR_JWT_ISSUED_IN_FUTURE: check("unauthenticated", "token_not_yet_valid"),
  ERR_JWT_AUDIENCE: check("unauthenticated", "invalid_audience"),
  ERR_TOKEN_INACTIVE: check("unauthenticated", "token_inactive"),
  ERR_TOKEN_EXPIRED: check("unauthenticated", "token_expired"),
  ERR_TOKEN_AUDIENCE: check("unauthenticated", "invalid_audience"),
  ERR_API_KEY_INVALID: check("unauthenticated", "invalid_api_key"),
  ERR_TOKEN_REVOKED: check("unauthenticated", "token_revoked"),
  ERR_CERT_BOUND_NO_CERTIFICATE: check("unauthenticated", "certificate_required"),
  ERR_CERT_BOUND_MISMATCH: check("unauthenticated", "certificate_mismatch"),
  ERR_CERT_BOUND_BAD_CERTIFICATE: check("unauthenticated", "certificate_mismatch"),
  ERR_CERT_BOUND_MALFORMED: check("unauthenticated", "token_malformed"),
  ERR_CREDENTIAL_UNSUPPORTED: check("unauthenticated", "unsupported_credential"),
  ERR_CREDENTIAL_VERIFY_FAILED: check("unauthenticated", "invalid_token"),
  ERR_CREDENTIAL_TOO_LARGE: check("unauthenticated", "token_too_large"),
  ERR_REQUEST_TOO_LARGE: check("request_too_large", "request_too_large"),
  ERR_KEYS_UNAVAILABLE: check("unavailable", "keys_unavailable"),
  ERR_INTROSPECTION_UNAVAILABLE: check("unavailable", "introspection_unavailable"),
  ERR_REVOCATION_UNAVAILABLE: check("unavailable", "revocation_unavailable"),
  ERR_INTERNAL: check("internal", "internal_error"),
  ERR_PATH_NOT_CANONICAL: check("bad_request", "non_canonical_path"),
  ERR_AUTHORITY_MALFORMED: check("bad_request", "malformed_authority"),
  ERR_QUERY_AMBIGUOUS: check("bad_request", "ambiguous_query"),

  ERR_USAGE: STARTUP,
  ERR_POLICY_INVALID: STARTUP,
  ERR_ADMIN_CONFIG: STARTUP,
  ERR_REVOCATION_STORE_UNAVAILABLE: STARTUP,

  ERR_QUOTA_REQUEST_INVALID: QUOTA,
  ERR_QUOTA_LIMIT_UNKNOWN: QUOTA,
  ERR_QUOTA_ROUTE_UNKNOWN: QUOTA,
  ERR_QUOTA_METHOD_NOT_ALLOWED: QUOTA,
  ERR_QUOTA_STORE_UNAVAILABLE: QUOTA,
  ERR_QUOTA_UNAUTHENTICATED: QUOTA,
  ERR_QUOTA_RLS_REQUEST_INVALID: QUOTA,
} as const satisfies Record<`ERR_${string}`, CodeEntry>;

type Catalogue = typeof ERROR_CODES;
/** Every stable code of authz-server: a typo is a compile error. */
export type ErrorCode = keyof Catalogue;
/** The codes of Check errors of one kind, e.g. `CheckCode<"unavailable">`. */
export type CheckCode<K extends ErrorKind = ErrorKind> = { [C in ErrorCode]: Catalogue[C] extends { readonly kind: K } ? C : never }[ErrorCode];
/** The codes the quota service answers with. */
export type QuotaCode = { [C in ErrorCode]: Catalogue[C]["area"] extends "quota" ? C : never }[ErrorCode];

/** The reason clients see for a Check code (`x-meshward-reason`, the deny body, the decision log). */
export function reasonOf(code: CheckCode): string {
  return ERROR_CODES[code].reason;
}

/** An error with a stable code; `name` is the subclass's, so logs read `JwtExpired: …`-style sentences. */
export abstract class CodedError<C extends ErrorCode> extends Error {
  constructor(
    readonly code: C,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}
