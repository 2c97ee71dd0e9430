// The real authz-server for e2e chains, wired by the production wiring module (all credential plugins,
// in-memory stores and quota) on loopback port 0, plus a JWT issuer with a JWKS file.
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT, exportJWK } from "jose";
import { Registry } from "prom-client";
import { systemClock } from "../../authz-server/src/clock.js";
import { createLogger } from "../../authz-server/src/observability/logger.js";
import type { RevocationStore } from "../../authz-server/src/credentials/revocation.js";
import type { PolicyHolder } from "../../authz-server/src/policy-holder.js";
import { wireProcess } from "../../authz-server/src/wiring.js";
import { jwtProvider, policyYaml } from "./policy.js";

export const ISSUER = "https://idp.e2e.meshward.test/";
export const AUDIENCE = "orders-api";
/** The quota bearer token of the e2e world: authz-server requires it, the rate-limit VMs are given it. */
export const E2E_QUOTA_TOKEN = "e2e-quota-token-0123456789abcdef";
/** Envoy's environment in the e2e world (read through `host_env_keys`). */
export const E2E_HOST_ENV: Readonly<Record<string, string>> = Object.freeze({ MESHWARD_QUOTA_TOKEN: E2E_QUOTA_TOKEN });


export interface Issuer {
  readonly jwksFile: string;
  sign(claims: Record<string, unknown>, expiresInSec?: number): Promise<string>;
}

export interface RunningAuthz {
  readonly grpcAddress: string;
  readonly httpAddress: string;
  readonly logs: Record<string, unknown>[];
  readonly holder: PolicyHolder;
  readonly revocations: RevocationStore;
  stop(): Promise<void>;
}

/** An ES256 issuer whose public key is written to `dir`/jwks.json (the policy's jwks.file). */
export async function createIssuer(dir: string): Promise<Issuer> {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwksFile = join(dir, "jwks.json");
  const jwk = { ...(await exportJWK(publicKey)), kid: "e2e", alg: "ES256", use: "sig" };
  writeFileSync(jwksFile, JSON.stringify({ keys: [jwk] }));
  const key: KeyObject = privateKey;
  return {
    jwksFile,
    async sign(claims, expiresInSec = 300) {
      return new SignJWT(claims)
        .setProtectedHeader({ alg: "ES256", kid: "e2e" })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setIssuedAt()
        .setExpirationTime(`${expiresInSec}s`)
        .sign(key);
    },
  };
}

export function tempDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), "meshward-e2e-"));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * The e2e issuer as a `spec.providers.jwt` entry (tools/testing/policy.ts renders it): ES256, roles from
 * the `roles` claim, `sub` and `tier` as identity headers; `extra` adds or replaces members. `jwks` is a
 * JWKS file path or a whole `jwks` member.
 */
export function e2eJwtProvider(jwks: string | Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return jwtProvider({
    name: "e2e",
    issuer: ISSUER,
    audiences: [AUDIENCE],
    jwks: typeof jwks === "string" ? { file: jwks } : jwks,
    algorithms: ["ES256"],
    roles: { claim: "roles" },
    claimsToHeaders: [{ claim: "sub", header: "x-user-id" }, { claim: "tier", header: "x-user-tier" }],
    ...extra,
  });
}

/** The e2e policy: JWT users with identity headers, a mesh peer binding, and a listener-only rule. */
export function e2ePolicy(jwksFile: string): string {
  return policyYaml({ providers: { jwt: [e2eJwtProvider(jwksFile)], mesh: { trustDomains: ["cluster.local"] } } }, `  roles:
    reader: ["orders:read"]
  bindings:
    - subjects: ["spiffe://cluster.local/ns/billing/sa/billing-api"]
      roles: [reader]
  rules:
    - name: health
      match: { paths: ["/healthz"] }
      allow: anonymous
    - name: orders-read
      match: { paths: ["/api/orders/**"], methods: [GET] }
      require: { permissions: ["orders:read"] }
    - name: billing-for-users
      match: { paths: ["/api/invoices/**"] }
      require:
        user: true
        roles: [reader]
        peer: { principals: ["spiffe://cluster.local/ns/billing/sa/billing-api"] }
    - name: sidecar-internal
      match: { paths: ["/internal/**"] }
      require: { peer: { namespaces: [billing] } }
      when: 'context["listener"] == "sidecar-inbound"'
  rateLimits:
    - { domain: edge, name: per-user, capacity: 1000, refillPerSecond: 100 }
`);
}

/**
 * Starts authz-server with `policyText` (written to `dir`); the issuer's JWKS must exist first. Quota in
 * memory, or on `redisUrl`; callers need E2E_QUOTA_TOKEN unless `quotaToken` says otherwise (null: open).
 */
export async function startAuthz(dir: string, policyText: string, opts: { redisUrl?: string; quotaToken?: string | null } = {}): Promise<RunningAuthz> {
  const file = join(dir, "policy.yaml");
  writeFileSync(file, policyText);
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger("info", { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const registry = new Registry();
  const token = opts.quotaToken === undefined ? E2E_QUOTA_TOKEN : opts.quotaToken;
  const wired = await wireProcess({ policyFile: file, grpcAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", logger, registry, clock: systemClock, ...(opts.redisUrl ? { redisUrl: opts.redisUrl } : {}), ...(token ? { quotaToken: token } : {}) });
  const { grpcPort, httpPort } = await wired.start();
  return {
    grpcAddress: `127.0.0.1:${grpcPort}`,
    httpAddress: `127.0.0.1:${httpPort}`,
    logs,
    holder: wired.holder,
    revocations: wired.stores.revocations,
    async stop() {
      await wired.stop(100);
    },
  };
}
