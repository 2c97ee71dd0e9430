// Reads a policy file (YAML or JSON), validates it against the schema with ajv and compiles it.
// Every problem becomes a PolicyInvalid naming the file, the path inside it and the problem.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { Ajv } from "ajv";
import { ajvErrorPath, ajvMessage } from "../ajv-message.js";
import { parse as parseYaml } from "yaml";
import { PolicyInvalid } from "../errors.js";
import type { CompiledPolicy } from "./compiled.js";
import { compilePolicy } from "./compile-policy.js";
import type { PolicyDocument } from "./document.js";
import { POLICY_SCHEMA } from "./schema.js";

const ajv = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true });
const validate = ajv.compile(POLICY_SCHEMA);

/** Loads and compiles the policy at `file`; messages name the file as given on the command line. */
export function loadPolicyFile(file: string): CompiledPolicy {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new PolicyInvalid(file, "", `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return compilePolicyText(text, file);
}

/** Parses, validates and compiles policy text; `file` only names the source in messages. */
export function compilePolicyText(text: string, file: string): CompiledPolicy {
  const doc = parsePolicyText(text, file);
  const version = createHash("sha256").update(text).digest("hex").slice(0, 12);
  return compilePolicy(doc, file, version);
}

/** Parses and schema-validates policy text without compiling it. */
export function parsePolicyText(text: string, file: string): PolicyDocument {
  let data: unknown;
  try {
    data = file.endsWith(".json") ? JSON.parse(text) : parseYaml(text, { uniqueKeys: true, logLevel: "error" });
  } catch (err) {
    const msg = (err as Error).message.split("\n")[0]!.replace(/ at line [0-9]+, column [0-9]+:?$/, "");
    const line = (err as { linePos?: { line: number }[] }).linePos?.[0]?.line;
    throw new PolicyInvalid(file, "", `invalid ${file.endsWith(".json") ? "JSON" : "YAML"}${line ? ` at line ${line}` : ""}: ${msg}`);
  }
  if (!validate(data)) {
    const err = validate.errors?.[0];
    throw err ? new PolicyInvalid(file, ajvErrorPath("", err), ajvMessage(err)) : new PolicyInvalid(file, "", "invalid policy");
  }
  return resolveFilePaths(data as unknown as PolicyDocument, dirname(file));
}

/** Relative `file:` references (JWKS, secrets) are relative to the policy file's directory. */
function resolveFilePaths(doc: PolicyDocument, dir: string): PolicyDocument {
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(dir, p));
  const withFile = <T extends { file?: string }>(ref: T | undefined): T | undefined => (ref?.file !== undefined ? { ...ref, file: abs(ref.file) } : ref);
  const providers = doc.spec.providers;
  if (!providers) return doc;
  const jwt = providers.jwt?.map((p) => {
    const jwks = withFile(p.jwks);
    const secret = withFile(p.secret);
    return { ...p, ...(jwks ? { jwks } : {}), ...(secret ? { secret } : {}) };
  });
  const introspection = providers.introspection?.map((p) => ({ ...p, clientSecret: withFile(p.clientSecret)! }));
  return {
    ...doc,
    spec: { ...doc.spec, providers: { ...providers, ...(jwt ? { jwt } : {}), ...(introspection ? { introspection } : {}) } },
  };
}

