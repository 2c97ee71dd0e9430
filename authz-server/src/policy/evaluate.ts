// Stage 5: evaluates the compiled rules for one request. Deny rules override, then the first allow
// rule whose requirements and condition hold allows; otherwise default deny. dryRun rules are
// evaluated beside the enforced ones and only reported.
import type { AuthzError } from "../errors.js";
import type { Attributes, Identity } from "../model.js";
import type { CelVariables } from "./cel.js";
import type { CompiledPolicy, CompiledRule, RequirementInput } from "./compiled.js";

export interface Verdict {
  readonly allowed: boolean;
  /** `allowed`, `denied_by_rule`, `condition_error`, `condition_not_met`, `no_matching_rule`, a requirement failure, or the credential error's reason. */
  readonly reason: string;
  readonly rule?: string;
  /** Set when the denial is the credential's fault (invalid, too large, or its verification infrastructure failed). */
  readonly credentialError?: AuthzError;
  /** A permission/role requirement failed for an authenticated caller (RFC 6750 `insufficient_scope`). */
  readonly insufficientScope?: boolean;
  readonly dryRun: readonly { readonly rule: string; readonly wouldDeny: boolean }[];
}

export interface EvaluationInput {
  readonly attrs: Attributes;
  readonly identity: Identity;
  /** The credential presented but rejected: fatal for every rule except `allow: anonymous`. */
  readonly credentialError: AuthzError | undefined;
  /** Milliseconds since the epoch (CEL's `now`). */
  readonly nowMs: number;
}

type Outcome =
  | { readonly kind: "none" }
  | { readonly kind: "allow" }
  | { readonly kind: "deny"; readonly reason: string }
  | { readonly kind: "fail"; readonly reason: string; readonly error?: AuthzError; readonly scope?: boolean };

const NONE: Outcome = { kind: "none" };
const ALLOW: Outcome = { kind: "allow" };

export function evaluatePolicy(policy: CompiledPolicy, input: EvaluationInput): Verdict {
  const ctx = new RuleContext(input);
  const verdict = evaluateRules(policy.rulesForHost(input.attrs.host), ctx);
  if (policy.dryRunRules.length === 0) return verdict;
  const dryRun: { rule: string; wouldDeny: boolean }[] = [];
  for (const rule of policy.dryRunRules) {
    const o = evaluateRule(rule, ctx);
    if (o.kind === "deny" && verdict.allowed) dryRun.push({ rule: rule.name, wouldDeny: true });
    if (o.kind === "allow" && !verdict.allowed && verdict.reason !== "denied_by_rule") dryRun.push({ rule: rule.name, wouldDeny: false });
  }
  return dryRun.length ? { ...verdict, dryRun } : verdict;
}

const NO_DRY_RUN: Verdict["dryRun"] = Object.freeze([]);

function evaluateRules(rules: readonly CompiledRule[], ctx: RuleContext): Verdict {
  let allowedBy: string | undefined;
  let firstFail: { rule: string; o: Extract<Outcome, { kind: "fail" }> } | undefined;
  let credentialFail: typeof firstFail;
  let missingFail: typeof firstFail;
  for (const rule of rules) {
    if (allowedBy !== undefined && rule.effect === "allow") continue;
    const o = evaluateRule(rule, ctx);
    if (o.kind === "deny") return { allowed: false, reason: o.reason, rule: rule.name, dryRun: NO_DRY_RUN };
    if (o.kind === "allow") allowedBy = rule.name;
    else if (o.kind === "fail") {
      firstFail ??= { rule: rule.name, o };
      if (o.error) credentialFail ??= { rule: rule.name, o };
      if (o.reason === "missing_credentials") missingFail ??= { rule: rule.name, o };
    }
  }
  if (allowedBy !== undefined) return { allowed: true, reason: "allowed", rule: allowedBy, dryRun: NO_DRY_RUN };
  const fail = credentialFail ?? missingFail ?? firstFail;
  if (!fail) return { allowed: false, reason: "no_matching_rule", dryRun: NO_DRY_RUN };
  return {
    allowed: false,
    reason: fail.o.reason,
    rule: fail.rule,
    ...(fail.o.error ? { credentialError: fail.o.error } : {}),
    ...(fail.o.scope ? { insufficientScope: true } : {}),
    dryRun: NO_DRY_RUN,
  };
}

function evaluateRule(rule: CompiledRule, ctx: RuleContext): Outcome {
  if (!rule.matches(ctx.input.attrs)) return NONE;
  if (rule.effect === "deny") {
    if (!rule.when) return { kind: "deny", reason: "denied_by_rule" };
    const c = ctx.condition(rule);
    // A deny condition that cannot be evaluated denies (fail closed).
    return c === true ? { kind: "deny", reason: "denied_by_rule" } : c === false ? NONE : { kind: "deny", reason: "condition_error" };
  }
  if (!rule.anonymous) {
    const err = ctx.input.credentialError;
    if (err) return { kind: "fail", reason: err.reason, error: err };
    const failure = rule.requirement?.(ctx.requirementInput());
    if (failure) return { kind: "fail", reason: failure, scope: failure === "insufficient_permissions" && rule.needsPermissions && !!ctx.input.identity.user };
  }
  if (rule.when) {
    const c = ctx.condition(rule);
    if (c !== true) return { kind: "fail", reason: c === false ? "condition_not_met" : "condition_error" };
  }
  return ALLOW;
}

/** Per-request values shared by all rules, built on first use. */
class RuleContext {
  private requirement?: RequirementInput;
  private vars?: CelVariables;
  constructor(readonly input: EvaluationInput) {}

  requirementInput(): RequirementInput {
    if (!this.requirement) {
      const { user, peer } = this.input.identity;
      this.requirement = { user, peer, roles: new Set(user ? user.roles : peer?.roles ?? []) };
    }
    return this.requirement;
  }

  /** true / false, or "error" when the expression fails to evaluate. */
  condition(rule: CompiledRule): boolean | "error" {
    try {
      return rule.when!(this.celVariables());
    } catch {
      return "error";
    }
  }

  private celVariables(): CelVariables {
    if (this.vars) return this.vars;
    const { attrs, identity, nowMs } = this.input;
    const { user, peer } = identity;
    this.vars = {
      request: { method: attrs.method, path: attrs.path, host: attrs.host, scheme: attrs.scheme, headers: attrs.headers, query: attrs.query },
      source: {
        address: attrs.source.address,
        principal: attrs.source.principal,
        namespace: peer?.namespace ?? "",
        serviceAccount: peer?.serviceAccount ?? "",
      },
      identity: user
        ? { subject: user.subject, provider: user.provider, claims: user.claims, roles: user.roles, scopes: user.scopes }
        : { subject: peer?.principal ?? "", provider: "", claims: {}, roles: peer?.roles ?? [], scopes: [] },
      context: attrs.contextExtensions,
      now: new Date(nowMs),
    };
    return this.vars;
  }
}
