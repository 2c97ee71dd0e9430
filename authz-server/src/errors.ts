// The error classes of the authz pipeline: every failure a stage can raise, with a stable code from
// error-codes.ts and the reason that code stands for. Only the response stage (response/decide.ts) turns these into answers.
import { CodedError, reasonOf, type CheckCode, type ErrorKind } from "./error-codes.js";

export type { ErrorKind } from "./error-codes.js";

export abstract class AuthzError<K extends ErrorKind = ErrorKind> extends CodedError<CheckCode<K>> {
  abstract readonly kind: K;
  /** Machine-readable reason for the decision, e.g. `token_expired`: the catalogue's reason for `code`. */
  readonly reason: string;
  constructor(code: CheckCode<K>, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.reason = reasonOf(code);
  }
}

/** A credential was presented and is not acceptable (malformed, expired, bad signature…). */
export class CredentialInvalid extends AuthzError<"unauthenticated"> {
  readonly kind = "unauthenticated";
}

/** A credential is larger than `spec.limits.maxCredentialBytes`. */
export class CredentialTooLarge extends AuthzError<"unauthenticated"> {
  readonly kind = "unauthenticated";
  constructor(size: number, limit: number) {
    super("ERR_CREDENTIAL_TOO_LARGE", `credential of ${size} bytes exceeds the limit of ${limit}`);
  }
}

/** Too many headers or too many header bytes. */
export class RequestTooLarge extends AuthzError<"request_too_large"> {
  readonly kind = "request_too_large";
  constructor(message: string) {
    super("ERR_REQUEST_TOO_LARGE", message);
  }
}

/** A request the policy cannot judge unambiguously: a non-canonical path or a malformed authority. */
export class RequestAmbiguous extends AuthzError<"bad_request"> {
  readonly kind = "bad_request";
}

/** A dependency needed for this request failed; not the client's fault. */
export class DependencyUnavailable extends AuthzError<"unavailable"> {
  readonly kind = "unavailable";
}

/** The decision pipeline threw: neither the client's fault nor a dependency outage. */
export class InternalFailure extends AuthzError<"internal"> {
  readonly kind = "internal";
  constructor(options?: { cause?: unknown }) {
    super("ERR_INTERNAL", "internal error in the decision pipeline", options);
  }
}

/** A policy file is invalid: the message names the file, the path inside it and the problem. */
export class PolicyInvalid extends CodedError<"ERR_POLICY_INVALID"> {
  constructor(
    readonly file: string,
    readonly path: string,
    readonly problem: string,
  ) {
    super("ERR_POLICY_INVALID", `${file}: ${path ? `${path}: ` : ""}${problem}`);
  }
}
