// The error catalogue of the authz pipeline: every failure a stage can raise, with a stable code and
// a machine-readable reason. Only the response stage (response/decide.ts) turns these into answers.

/** What kind of answer an error calls for; response/decide.ts maps each kind to gRPC and HTTP. */
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

export abstract class AuthzError extends Error {
  abstract readonly kind: ErrorKind;
  constructor(
    /** Stable code, e.g. `ERR_JWT_EXPIRED`. */
    readonly code: string,
    /** Machine-readable reason for the decision, e.g. `token_expired`. */
    readonly reason: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A credential was presented and is not acceptable (malformed, expired, bad signature…). */
export class CredentialInvalid extends AuthzError {
  readonly kind = "unauthenticated";
}

/** A credential is larger than `spec.limits.maxCredentialBytes`. */
export class CredentialTooLarge extends AuthzError {
  readonly kind = "unauthenticated";
  constructor(size: number, limit: number) {
    super("ERR_CREDENTIAL_TOO_LARGE", "token_too_large", `credential of ${size} bytes exceeds the limit of ${limit}`);
  }
}

/** Too many headers or too many header bytes. */
export class RequestTooLarge extends AuthzError {
  readonly kind = "request_too_large";
  constructor(message: string) {
    super("ERR_REQUEST_TOO_LARGE", "request_too_large", message);
  }
}

/** A request the policy cannot judge unambiguously: a non-canonical path or a malformed authority. */
export class RequestAmbiguous extends AuthzError {
  readonly kind = "bad_request";
}

/** A dependency needed for this request failed; not the client's fault. */
export class DependencyUnavailable extends AuthzError {
  readonly kind = "unavailable";
}

/** The decision pipeline threw: neither the client's fault nor a dependency outage. */
export class InternalFailure extends AuthzError {
  readonly kind = "internal";
  constructor(options?: { cause?: unknown }) {
    super("ERR_INTERNAL", "internal_error", "internal error in the decision pipeline", options);
  }
}

/** A policy file is invalid: the message names the file, the path inside it and the problem. */
export class PolicyInvalid extends Error {
  readonly code = "ERR_POLICY_INVALID";
  constructor(
    readonly file: string,
    readonly path: string,
    readonly problem: string,
  ) {
    super(`${file}: ${path ? `${path}: ` : ""}${problem}`);
    this.name = "PolicyInvalid";
  }
}
