// The one place where outcomes become answers: a policy verdict or a pipeline error → Decision with
// its HTTP status, RFC 6750 challenge and unavailable flag. check-response.ts only renders it.
import type { AuthzError } from "../errors.js";
import type { Decision, Identity } from "../model.js";
import type { Verdict } from "../policy/evaluate.js";

const NO_DRY_RUN: Decision["dryRun"] = Object.freeze([]);

export function decideFromVerdict(id: string, verdict: Verdict, identity: Identity): Decision {
  if (verdict.allowed) {
    return { id, allowed: true, httpStatus: 200, reason: verdict.reason, ...rule(verdict.rule), identity, dryRun: verdict.dryRun };
  }
  if (verdict.credentialError) {
    return { ...decideFromError(id, verdict.credentialError, identity), ...rule(verdict.rule), dryRun: verdict.dryRun };
  }
  const base = { id, allowed: false, reason: verdict.reason, ...rule(verdict.rule), identity, dryRun: verdict.dryRun };
  // No credential where one was required: 401 with a bare challenge (RFC 6750 §3.1: no error code).
  if (verdict.reason === "missing_credentials") return { ...base, httpStatus: 401, bearerError: "" };
  if (verdict.insufficientScope) return { ...base, httpStatus: 403, bearerError: "insufficient_scope" };
  return { ...base, httpStatus: 403 };
}

export function decideFromError(id: string, err: AuthzError, identity: Identity): Decision {
  const base = { id, allowed: false, reason: err.reason, identity, dryRun: NO_DRY_RUN };
  switch (err.kind) {
    case "unauthenticated":
      return { ...base, httpStatus: 401, bearerError: "invalid_token" };
    case "bad_request":
      return { ...base, httpStatus: 400 };
    case "request_too_large":
      return { ...base, httpStatus: 431 };
    case "unavailable":
      return { ...base, httpStatus: 503, unavailable: true };
    case "internal":
      return { ...base, httpStatus: 500, internal: true };
  }
}

function rule(name: string | undefined): { rule?: string } {
  return name === undefined ? {} : { rule: name };
}
