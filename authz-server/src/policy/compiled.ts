// The immutable runtime form of a policy, produced once per load by compile-policy.ts and read by
// the identity and policy stages on every request.
import type { Attributes, PeerIdentity, UserIdentity } from "../model.js";
import type { Condition } from "./cel.js";
import type { PolicyDocument, ProvidersSpec, RateLimitSpec } from "./document.js";

/** Why a requirement is not met; the order of this list is the order of precedence for the denial reason. */
export type RequirementFailure =
  | "missing_credentials"
  | "insufficient_permissions"
  | "peer_required"
  | "peer_not_allowed";

export interface RequirementInput {
  readonly user: UserIdentity | undefined;
  readonly peer: PeerIdentity | undefined;
  /** User roles when a user is present, else the peer's bound roles. */
  readonly roles: ReadonlySet<string>;
}

/** Returns undefined when met, else the failure. */
export type CompiledRequirement = (input: RequirementInput) => RequirementFailure | undefined;

export interface CompiledRule {
  readonly name: string;
  readonly effect: "allow" | "deny";
  readonly dryRun: boolean;
  readonly anonymous: boolean;
  readonly matches: (attrs: Attributes) => boolean;
  readonly requirement: CompiledRequirement | undefined;
  /** Whether the requirement involves permissions or roles (a 403 then says `insufficient_scope`). */
  readonly needsPermissions: boolean;
  /** Exact host names (lower-case, no port) when the rule matches only those; undefined = any host. */
  readonly exactHosts: readonly string[] | undefined;
  readonly when: Condition | undefined;
}

export interface ProviderOutput {
  readonly claimsToHeaders: readonly { readonly claim: string; readonly header: string }[];
  /** Headers to remove upstream on allow (the credential's headers when `forward: false`). */
  readonly removeHeaders: readonly string[];
}

export interface CompiledPolicy {
  /** Short content hash of the policy file (also the `version` label of the policy metric). */
  readonly version: string;
  readonly file: string;
  readonly document: PolicyDocument;
  readonly providers: ProvidersSpec;
  readonly rules: readonly CompiledRule[];
  readonly dryRunRules: readonly CompiledRule[];
  /** The enforced rules that can match a request for `host` (lower-case, port stripped), in policy order. */
  readonly rulesForHost: (host: string) => readonly CompiledRule[];
  readonly usesConditions: boolean;
  readonly trustDomains: ReadonlySet<string>;
  /** Subject (user subject or SPIFFE ID) → roles from `bindings`. */
  readonly bindings: ReadonlyMap<string, readonly string[]>;
  readonly providerOutputs: ReadonlyMap<string, ProviderOutput>;
  readonly limits: { readonly maxCredentialBytes: number; readonly maxHeaders: number; readonly maxHeaderBytes: number };
  readonly response: { readonly realm: string; readonly subjectHeader?: string; readonly rolesHeader?: string };
  readonly rateLimits: readonly RateLimitSpec[];
}
