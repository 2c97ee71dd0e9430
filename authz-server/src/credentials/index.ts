// Stage 2–3: finds the request's user credential and verifies it through pluggable verifiers.
//
// Design: a `CredentialVerifier` has two steps, `extract(attrs)` (cheap, no I/O: is there a credential
// of my kind, and where?) and `verify(candidate)` (signature/introspection/lookup → UserIdentity, or
// throws an AuthzError). `IdentityCheck`s (revocation, certificate-bound tokens) run after every
// successful verify, including cache hits. Plugins build verifiers and checks from the compiled policy.
//
// Precedence when several credentials are present: verifiers are consulted in the order of the plugin
// list (wiring.ts's credentialPlugins: JWT, introspection, API keys), and the FIRST one
// whose extract() finds a credential alone decides; the others are not consulted, and a credential
// that fails verification never falls back to another one. The JWT verifier claims only
// JWT-shaped values (three dot-separated parts), so opaque bearer tokens reach introspection. A
// credential in `authorization` that no verifier claims is rejected as `unsupported_credential`.
// Every candidate is size-checked (`spec.limits.maxCredentialBytes`) before verification.
import type { Registry } from "prom-client";
import type { Logger } from "pino";
import type { Clock } from "../clock.js";
import { AuthzError, CredentialInvalid, CredentialTooLarge } from "../errors.js";
import type { Attributes, UserIdentity } from "../model.js";
import type { CompiledPolicy } from "../policy/compiled.js";
import type { JwtProviderSpec } from "../policy/document.js";
import type { KeySource } from "./key-source.js";

export interface CredentialCandidate {
  readonly value: string;
  /** Where it was found, e.g. `header:authorization` — never the value itself. */
  readonly location: string;
}

export interface CredentialVerifier {
  /** e.g. `jwt`, `introspection`, `apiKey`. */
  readonly type: string;
  extract(attrs: Attributes): CredentialCandidate | undefined;
  /** Resolves the verified user or rejects with an AuthzError (CredentialInvalid, DependencyUnavailable…). */
  verify(candidate: CredentialCandidate, attrs: Attributes): Promise<UserIdentity>;
  /** Readiness for /readyz (e.g. key sources loaded). */
  status(): { readonly ready: boolean; readonly detail?: string };
  /** Verifiers with fetched keys (JWKS): names the key sets now served, changing when a refresh changes one. */
  keySetId?(): string;
  close(): void;
}

/** A check on an already verified user (revocation, certificate binding); rejects with an AuthzError. */
export interface IdentityCheck {
  readonly name: string;
  check(user: UserIdentity, candidate: CredentialCandidate, attrs: Attributes): Promise<void>;
}

/** Creates a key source for one JWT provider (credentials/jwks.ts implements it). */
export type KeySourceFactory = (provider: JwtProviderSpec, deps: { readonly clock: Clock; readonly registry: Registry; readonly logger: Logger }) => KeySource;

export interface CredentialBuildContext {
  readonly policy: CompiledPolicy;
  readonly clock: Clock;
  readonly registry: Registry;
  readonly logger: Logger;
  readonly createKeySource: KeySourceFactory;
  /** Verified-token cache of the JWT verifier: hit/miss callback (metrics) and bound. */
  readonly onTokenCache?: (hit: boolean) => void;
  readonly tokenCacheSize?: number;
}

/** How credential kinds join the pipeline: built once per policy load. */
export interface CredentialPlugin {
  readonly name: string;
  build(ctx: CredentialBuildContext): { readonly verifiers?: readonly CredentialVerifier[]; readonly checks?: readonly IdentityCheck[] };
}

export interface CredentialResult {
  readonly user?: UserIdentity;
  readonly error?: AuthzError;
  /** Where the credential was found (for logging), when there was one. */
  readonly location?: string;
}

const NONE: CredentialResult = Object.freeze({});

/** The ordered verifiers and checks of one policy generation. */
export class Credentials {
  constructor(
    readonly verifiers: readonly CredentialVerifier[],
    readonly checks: readonly IdentityCheck[],
    private readonly maxBytes: number,
  ) {}

  /** Never rejects: a credential problem is returned as `error` so that anonymous rules can still allow. */
  async authenticate(attrs: Attributes): Promise<CredentialResult> {
    for (const verifier of this.verifiers) {
      const candidate = verifier.extract(attrs);
      if (!candidate) continue;
      try {
        if (candidate.value.length > this.maxBytes) throw new CredentialTooLarge(candidate.value.length, this.maxBytes);
        const user = await verifier.verify(candidate, attrs);
        for (const c of this.checks) await c.check(user, candidate, attrs);
        return { user, location: candidate.location };
      } catch (err) {
        return { error: asAuthzError(err), location: candidate.location };
      }
    }
    const auth = attrs.headers.authorization;
    if (auth) {
      const error =
        auth.length > this.maxBytes
          ? new CredentialTooLarge(auth.length, this.maxBytes)
          : new CredentialInvalid("ERR_CREDENTIAL_UNSUPPORTED", "no configured provider accepts this authorization credential");
      return { error, location: "header:authorization" };
    }
    return NONE;
  }

  status(): { ready: boolean; detail?: string } {
    for (const v of this.verifiers) {
      const s = v.status();
      if (!s.ready) return { ready: false, detail: `${v.type}: ${s.detail ?? "not ready"}` };
    }
    return { ready: true };
  }

  /** The key sets of every verifier that has them ("" when none): part of the decision-cache epoch. */
  keySetId(): string {
    let id = "";
    for (const v of this.verifiers) if (v.keySetId) id += `${v.type}:${v.keySetId()};`;
    return id;
  }

  close(): void {
    for (const v of this.verifiers) v.close();
  }
}

function asAuthzError(err: unknown): AuthzError {
  if (err instanceof AuthzError) return err;
  return new CredentialInvalid("ERR_CREDENTIAL_VERIFY_FAILED", "credential verification failed", { cause: err });
}
