// API keys from a header or query parameter, checked against lower-case hex SHA-256 digests in the
// policy (or a keys file such as a Kubernetes Secret mount); each key carries its own roles.
import { hash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { Counter, type Registry } from "prom-client";
import { parse as parseYaml } from "yaml";
import { CredentialInvalid, PolicyInvalid } from "../errors.js";
import type { Attributes, UserIdentity } from "../model.js";
import type { CredentialSourceSpec } from "../policy/document.js";
import { extractFrom } from "./extract.js";
import type { CredentialCandidate, CredentialPlugin, CredentialVerifier } from "./index.js";

export interface ApiKeyEntry {
  readonly id: string;
  /** Lower-case hex SHA-256 of the key. */
  readonly sha256: string;
  readonly roles?: readonly string[];
  /** The key holder's attributes, seen as claims (beside `sub` and `keyId`). */
  readonly claims?: Readonly<Record<string, string>>;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Lower-case hex SHA-256 of a presented key, the form keys are stored in. */
export function hashApiKey(key: string): string {
  return hash("sha256", key, "hex");
}

interface StoredKey {
  readonly digest: Buffer;
  readonly identity: UserIdentity;
}

export class ApiKeyStore {
  private readonly byDigest = new Map<string, StoredKey>();

  constructor(readonly provider: string, entries: readonly ApiKeyEntry[]) {
    for (const e of entries) {
      if (!SHA256_HEX.test(e.sha256)) throw new Error(`api key ${e.id}: sha256 must be 64 lower-case hex digits`);
      if (this.byDigest.has(e.sha256)) throw new Error(`api key ${e.id}: the same key digest appears twice`);
      this.byDigest.set(e.sha256, {
        digest: Buffer.from(e.sha256, "hex"),
        identity: Object.freeze({
          kind: "user",
          provider,
          providerType: "apiKey",
          subject: e.id,
          claims: Object.freeze({ ...e.claims, sub: e.id, keyId: e.id }),
          roles: Object.freeze([...(e.roles ?? [])]),
          scopes: Object.freeze([]),
        }),
      });
    }
  }

  get size(): number {
    return this.byDigest.size;
  }

  /**
   * The identity of a presented key, or undefined.
   *
   * Timing: we hash first and look the digest up in a Map, rather than timingSafeEqual against every
   * candidate. Both are timing-safe with respect to the secret: every comparison runs on
   * SHA-256(presented), never on key material. A side channel in the lookup (string hashing, bucket
   * probing, early-exit string compare) can at most reveal bytes of a stored *digest*, and a digest does
   * not help forge a key (that needs a SHA-256 preimage). The Map is O(1) where the scan is O(keys); the
   * timingSafeEqual after a hit is a cheap defence in depth in case the index ever stops matching exactly.
   */
  lookup(presented: string): UserIdentity | undefined {
    const hex = hashApiKey(presented);
    const stored = this.byDigest.get(hex);
    if (!stored) return undefined;
    return timingSafeEqual(stored.digest, Buffer.from(hex, "hex")) ? stored.identity : undefined;
  }
}

/**
 * Reads API key entries from a file: YAML or JSON, either a list of `{ id, sha256, roles }` or an
 * object `{ keys: [...] }` (so a Kubernetes Secret key mounted as a file works). Errors name the file.
 */
export function loadApiKeysFile(path: string): ApiKeyEntry[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new PolicyInvalid(path, "", `cannot read api keys file: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new PolicyInvalid(path, "", `not YAML/JSON: ${(err as Error).message}`);
  }
  const list = Array.isArray(doc) ? doc : typeof doc === "object" && doc !== null && Array.isArray((doc as { keys?: unknown }).keys) ? (doc as { keys: unknown[] }).keys : undefined;
  if (!list) throw new PolicyInvalid(path, "", "expected a list of keys or an object with 'keys'");
  const at = Array.isArray(doc) ? "" : "keys";
  return list.map((raw, i) => {
    const p = `${at}[${i}]`;
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new PolicyInvalid(path, p, "must be an object");
    const o = raw as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!["id", "sha256", "roles", "claims"].includes(k)) throw new PolicyInvalid(path, `${p}.${k}`, "unknown key");
    if (typeof o.id !== "string" || o.id === "") throw new PolicyInvalid(path, `${p}.id`, "must be a non-empty string");
    if (typeof o.sha256 !== "string" || !SHA256_HEX.test(o.sha256)) throw new PolicyInvalid(path, `${p}.sha256`, "must be 64 lower-case hex digits (npm run hash-api-key)");
    if (o.roles !== undefined && !(Array.isArray(o.roles) && o.roles.every((r) => typeof r === "string"))) throw new PolicyInvalid(path, `${p}.roles`, "must be a list of strings");
    const claims = o.claims;
    if (claims !== undefined && !(typeof claims === "object" && claims !== null && !Array.isArray(claims) && Object.values(claims).every((v) => typeof v === "string" && !/[\r\n\0]/.test(v)))) {
      throw new PolicyInvalid(path, `${p}.claims`, "must be an object of single-line strings");
    }
    return { id: o.id, sha256: o.sha256, ...(o.roles ? { roles: o.roles as string[] } : {}), ...(claims ? { claims: claims as Record<string, string> } : {}) };
  });
}

export function createApiKeyVerifier(store: ApiKeyStore, from: readonly CredentialSourceSpec[], registry?: Registry): CredentialVerifier {
  const checks = registry ? apiKeyMetrics(registry) : undefined;
  return {
    type: "apiKey",
    extract: (attrs: Attributes): CredentialCandidate | undefined => extractFrom(attrs, from),
    verify(candidate: CredentialCandidate): Promise<UserIdentity> {
      const user = store.lookup(candidate.value);
      checks?.inc({ provider: store.provider, result: user ? "valid" : "invalid" });
      if (!user) return Promise.reject(new CredentialInvalid("ERR_API_KEY_INVALID", `api key not accepted by provider ${store.provider}`));
      return Promise.resolve(user);
    },
    status: () => ({ ready: true }),
    close: () => undefined,
  };
}

/**
 * The credentials-stage plugin: one verifier per `spec.providers.apiKeys` entry, in policy order. Keys
 * come from `keys` and, when present, `keysFile` (read at every policy load, so a reload picks up a
 * rotated Secret).
 */
export function apiKeysPlugin(): CredentialPlugin {
  return {
    name: "apiKeys",
    build(ctx) {
      const verifiers = (ctx.policy.providers.apiKeys ?? []).map((spec, i) => {
        let store: ApiKeyStore;
        const keysFile = spec.keysFile === undefined ? undefined : isAbsolute(spec.keysFile) ? spec.keysFile : resolve(dirname(ctx.policy.file), spec.keysFile);
        const fromFile = keysFile === undefined ? [] : loadApiKeysFile(keysFile);
        // Roles from a keys file meet the same check as inline ones: own role names only (never `constructor`).
        const roles = ctx.policy.document.spec.roles ?? {};
        fromFile.forEach((k, j) => k.roles?.forEach((r, m) => {
          if (!Object.hasOwn(roles, r)) throw new PolicyInvalid(keysFile!, `[${j}].roles[${m}]`, `unknown role '${r}'`);
        }));
        try {
          store = new ApiKeyStore(spec.name, [...(spec.keys ?? []), ...fromFile]);
        } catch (err) {
          throw new PolicyInvalid(ctx.policy.file, `spec.providers.apiKeys[${i}].keys`, (err as Error).message);
        }
        return createApiKeyVerifier(store, spec.from, ctx.registry);
      });
      return { verifiers };
    },
  };
}

const metricBundles = new WeakMap<Registry, Counter<"provider" | "result">>();

function apiKeyMetrics(registry: Registry): Counter<"provider" | "result"> {
  let c = metricBundles.get(registry);
  if (!c) {
    c = new Counter({ name: "meshward_api_key_checks_total", help: "API key checks by provider and result (valid, invalid).", labelNames: ["provider", "result"] as const, registers: [registry] });
    metricBundles.set(registry, c);
  }
  return c;
}
