// The data that flows through the authz pipeline: attributes → credentials → identity → decision.
// Every stage reads and writes these types; nothing here does I/O.

/** A request normalized from an Envoy CheckRequest (stage 1). Header names are lower-case. */
export interface Attributes {
  readonly method: string;
  /** Path without the query string, as sent (not decoded). */
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  /** The first query parameter given more than once with different values (after decoding), if any. */
  readonly repeatedQuery?: string;
  readonly host: string;
  readonly scheme: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly source: {
    readonly address: string;
    /** Mesh principal from the peer certificate, e.g. `spiffe://cluster.local/ns/a/sa/b`. */
    readonly principal: string;
    /** URL-encoded PEM of the client certificate when Envoy sends it (`include_peer_certificate`). */
    readonly certificate: string;
  };
  readonly destination: { readonly address: string; readonly principal: string };
  readonly contextExtensions: Readonly<Record<string, string>>;
  /** Total bytes of header names and values, for size limits. */
  readonly headerBytes: number;
  readonly headerCount: number;
}

/** A verified caller. `kind: "user"` comes from a JWT, introspected token or API key. */
export interface UserIdentity {
  readonly kind: "user";
  readonly provider: string;
  readonly providerType: "jwt" | "introspection" | "apiKey";
  readonly subject: string;
  readonly claims: Readonly<Record<string, unknown>>;
  readonly roles: readonly string[];
  readonly scopes: readonly string[];
  /** Unix seconds after which this identity must not be served from a cache. */
  readonly expiresAt?: number;
}

/** A mesh workload identity parsed from a SPIFFE ID in an accepted trust domain. */
export interface PeerIdentity {
  readonly kind: "peer";
  readonly principal: string;
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly roles: readonly string[];
}

export interface Identity {
  readonly user?: UserIdentity;
  readonly peer?: PeerIdentity;
}

/** The outcome of one Check: feeds the CheckResponse, the decision log, metrics and dynamic metadata. */
export interface Decision {
  readonly id: string;
  readonly allowed: boolean;
  /** HTTP status for a denial (401, 403, 431, 503…); 200 when allowed. */
  readonly httpStatus: number;
  /** Machine-readable reason, e.g. `allowed`, `no_matching_rule`, `token_expired`, `condition_error`. */
  readonly reason: string;
  readonly rule?: string;
  readonly identity: Identity;
  /** Rules in dryRun that would have changed the outcome. */
  readonly dryRun: readonly { readonly rule: string; readonly wouldDeny: boolean }[];
  /** True when the failure is in our infrastructure (JWKS, Redis, introspection), not the client. */
  readonly unavailable?: boolean;
  /** The pipeline itself failed (gRPC INTERNAL, HTTP 500). */
  readonly internal?: boolean;
  /**
   * RFC 6750 challenge for a denial: present on 401 (and on 403 when scopes/permissions apply); the
   * `error` attribute (`invalid_token`, `insufficient_scope`) or "" for a bare challenge (no credentials).
   */
  readonly bearerError?: string;
}
