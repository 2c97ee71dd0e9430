// The policy file as written (YAML or JSON), after schema validation: the types of `AuthzPolicy`
// (docs/policy.md). compile-policy.ts turns this into the immutable runtime form.

export interface PolicyDocument {
  readonly apiVersion: "meshward.io/v1";
  readonly kind: "AuthzPolicy";
  readonly metadata?: { readonly name?: string };
  readonly spec: PolicySpec;
}

export interface PolicySpec {
  readonly providers?: ProvidersSpec;
  readonly roles?: Readonly<Record<string, readonly string[]>>;
  readonly bindings?: readonly BindingSpec[];
  readonly rules: readonly RuleSpec[];
  readonly rateLimits?: readonly RateLimitSpec[];
  readonly limits?: LimitsSpec;
  readonly response?: ResponseSpec;
  /** The authz-cache filter's decision cache (filters/authz-cache/README.md); off unless `enabled`. */
  readonly cache?: CacheSpec;
}

export interface CacheSpec {
  readonly enabled?: boolean;
  /** Longest lifetime of a cached decision (duration, default 60s). */
  readonly maxTtl?: string;
  /** Cache denials too (default true). */
  readonly cacheDenials?: boolean;
  /** HMAC key shared with the filter (required for any directive). */
  readonly secret?: SecretRefSpec;
}

export interface ProvidersSpec {
  readonly jwt?: readonly JwtProviderSpec[];
  readonly introspection?: readonly IntrospectionProviderSpec[];
  readonly apiKeys?: readonly ApiKeyProviderSpec[];
  readonly mesh?: { readonly trustDomains: readonly string[] };
}

/** Where a credential is read: a header (with optional prefix such as "Bearer ") or a query parameter. */
export interface CredentialSourceSpec {
  readonly header?: string;
  readonly prefix?: string;
  readonly query?: string;
}

export interface SecretRefSpec {
  readonly file?: string;
  readonly env?: string;
}

export interface JwksSpec {
  readonly uri?: string;
  readonly file?: string;
  readonly discovery?: boolean;
  /** An inline JWK Set. */
  readonly keys?: readonly Record<string, unknown>[];
  /** Background refresh period (duration), for `uri` and `discovery`. */
  readonly refreshInterval?: string;
  /** Minimum time between refetches triggered by unknown kids (duration). */
  readonly cooldown?: string;
  /** Fetch timeout (duration). */
  readonly timeout?: string;
}

/** What both token providers (JWT and introspection) take: where the token is read, whom it must be for, what it maps to. */
interface TokenProviderSpec {
  readonly name: string;
  readonly audiences?: readonly string[];
  readonly from?: readonly CredentialSourceSpec[];
  readonly roles?: { readonly claim: string };
  readonly scopes?: { readonly claim: string };
  readonly claimsToHeaders?: readonly { readonly claim: string; readonly header: string }[];
  /** Keep the credential header upstream (default true); false removes it on allow. */
  readonly forward?: boolean;
}

export interface JwtProviderSpec extends TokenProviderSpec {
  readonly issuer: string;
  readonly jwks?: JwksSpec;
  readonly algorithms: readonly string[];
  readonly secret?: SecretRefSpec;
  readonly clockSkew?: string;
}

export interface IntrospectionProviderSpec extends TokenProviderSpec {
  readonly endpoint: string;
  readonly clientId: string;
  readonly clientSecret: SecretRefSpec;
  readonly auth?: "client_secret_basic" | "client_secret_post";
  readonly cacheTtl?: string;
  readonly timeout?: string;
}

export interface ApiKeyProviderSpec {
  readonly name: string;
  readonly from: readonly CredentialSourceSpec[];
  /** At least one of `keys` and `keysFile` (compile-policy.ts checks). */
  readonly keys?: readonly ApiKeySpec[];
  /** A YAML/JSON file of more keys (e.g. a mounted Secret), relative to the policy file; read at every load. */
  readonly keysFile?: string;
  /** Upstream headers from the key's claims: `sub` and `keyId` (the key id) and the key's own `claims`. */
  readonly claimsToHeaders?: readonly { readonly claim: string; readonly header: string }[];
  readonly forward?: boolean;
}

export interface ApiKeySpec {
  readonly id: string;
  readonly sha256: string;
  readonly roles?: readonly string[];
  /** Attributes of the key holder (e.g. `tier: beta`), seen as identity claims. */
  readonly claims?: Readonly<Record<string, string>>;
}

export interface BindingSpec {
  readonly subjects: readonly string[];
  readonly roles: readonly string[];
}

export interface MatchSpec {
  readonly hosts?: readonly string[];
  readonly paths?: readonly string[];
  readonly methods?: readonly string[];
  readonly sourceCidrs?: readonly string[];
  readonly notSourceCidrs?: readonly string[];
}

export interface RequirementSpec {
  readonly permissions?: readonly string[];
  readonly roles?: readonly string[];
  readonly anyOf?: readonly RequirementSpec[];
  readonly allOf?: readonly RequirementSpec[];
  readonly user?: boolean;
  readonly peer?: {
    readonly principals?: readonly string[];
    readonly namespaces?: readonly string[];
    /** `namespace/serviceAccount` */
    readonly serviceAccounts?: readonly string[];
  };
}

export interface RuleSpec {
  readonly name: string;
  readonly effect?: "allow" | "deny";
  readonly enforcement?: "enforce" | "dryRun";
  readonly match?: MatchSpec;
  readonly allow?: "anonymous";
  readonly require?: RequirementSpec;
  readonly when?: string;
  /** false: decisions that evaluated this rule are never cached. */
  readonly cache?: boolean;
}

export interface LimitsSpec {
  readonly maxCredentialBytes?: number;
  readonly maxHeaders?: number;
  readonly maxHeaderBytes?: number;
}

export interface ResponseSpec {
  /** `realm` of the WWW-Authenticate challenge (default "meshward"). */
  readonly realm?: string;
  /** Upstream header carrying the verified subject (user subject, else peer principal). */
  readonly subjectHeader?: string;
  /** Upstream header carrying the effective roles, comma-separated. */
  readonly rolesHeader?: string;
  /**
   * Headers only authz-server may set: removed from every request it allows (every provider, anonymous
   * rules included) unless this decision sets them. List every header a filter routes or limits on.
   */
  readonly identityHeaders?: readonly string[];
}

/** One `spec.rateLimits` entry: the authority for a global limit (the quota service serves it). */
export interface RateLimitSpec {
  readonly domain: string;
  readonly name: string;
  readonly capacity: number;
  readonly refillPerSecond: number;
  /** Most tokens one lease call is granted (default 1000). */
  readonly maxLease?: number;
}
