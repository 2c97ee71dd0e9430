// Policy documents for tests and benches: the providers (and any other spec members) as data,
// rendered as the YAML the server loads, followed by rules written as YAML where that reads better.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { hashApiKey } from "../../authz-server/src/credentials/api-keys.js";

export interface JwtProviderSpec {
  readonly issuer: string;
  readonly name?: string;
  readonly algorithms?: readonly string[];
  readonly [member: string]: unknown;
}

/** One `spec.providers.jwt` entry; `name` defaults to "corp" and `algorithms` to [RS256]. */
export function jwtProvider(p: JwtProviderSpec): Record<string, unknown> {
  return { name: "corp", algorithms: ["RS256"], ...p };
}

/**
 * An AuthzPolicy document: the `spec` members rendered as YAML, then `more`, YAML text already
 * indented under `spec:` (typically "  rules:\n    - name: …").
 */
export function policyYaml(spec: Record<string, unknown>, more = ""): string {
  const body = stringify(spec, { flowCollectionPadding: false }).trimEnd().split("\n").map((l) => `  ${l}`).join("\n");
  return `apiVersion: meshward.io/v1\nkind: AuthzPolicy\nspec:\n${body}\n${more.replace(/^\n/, "")}`;
}

/** The common case: a policy with one JWT provider (see `jwtProvider`) and rules as YAML text. */
export function jwtPolicy(provider: JwtProviderSpec, more: string): string {
  return policyYaml({ providers: { jwt: [jwtProvider(provider)] } }, more);
}

/** The `demo` API-key provider of the security suites, read from `x-api-key`: alice (key "alice-key", role reader, claim tier: beta) and bob ("bob-key", reader). */
export function demoApiKeys(claimsToHeaders: ReadonlyArray<{ readonly claim: string; readonly header: string }>): Record<string, unknown> {
  return {
    name: "demo",
    from: [{ header: "x-api-key" }],
    keys: [
      { id: "alice", sha256: hashApiKey("alice-key"), roles: ["reader"], claims: { tier: "beta" } },
      { id: "bob", sha256: hashApiKey("bob-key"), roles: ["reader"] },
    ],
    claimsToHeaders,
  };
}

export interface PolicyFile {
  /** The temp folder holding the policy (relative secret files go beside it). */
  readonly dir: string;
  /** `<dir>/policy.yaml`. */
  readonly file: string;
  /** Deletes the folder. */
  remove(): void;
}

/** `text` written as policy.yaml in a fresh temp folder, for suites that start the server on a file. */
export function writePolicyFile(text: string): PolicyFile {
  const dir = mkdtempSync(join(tmpdir(), "meshward-policy-"));
  const file = join(dir, "policy.yaml");
  writeFileSync(file, text);
  return { dir, file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
