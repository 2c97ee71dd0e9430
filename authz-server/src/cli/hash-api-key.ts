// `npm run hash-api-key -- [--id ID] [--roles a,b]`: reads an API key from stdin and prints its
// SHA-256 (the form the policy stores) and a policy snippet. The key itself is never printed.
import { pathToFileURL } from "node:url";
import { parseArgs as tokenize } from "node:util";
import { hashApiKey } from "../credentials/api-keys.js";

export interface HashApiKeyResult {
  readonly sha256: string;
  readonly snippet: string;
}

const MAX_KEY_BYTES = 16 * 1024;

/** Hashes a key as read from stdin (one trailing newline removed); throws on an empty or oversized key. */
export function hashApiKeyInput(input: string, opts: { readonly id?: string; readonly roles?: readonly string[] } = {}): HashApiKeyResult {
  const key = input.replace(/\r?\n$/, "");
  if (key.length === 0) throw new Error("no key on stdin");
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new Error(`key longer than ${MAX_KEY_BYTES} bytes`);
  if (/[\r\n]/.test(key)) throw new Error("key contains a line break");
  const sha256 = hashApiKey(key);
  const roles = opts.roles && opts.roles.length > 0 ? `, roles: [${opts.roles.join(", ")}]` : "";
  const snippet = `keys:\n  - { id: ${opts.id ?? "CHANGE-ME"}, sha256: "${sha256}"${roles} }`;
  return { sha256, snippet };
}

const USAGE = "usage: hash-api-key [--id ID] [--roles a,b] < keyfile";

export function parseArgs(argv: readonly string[]): { id?: string; roles?: string[] } {
  let values: { id?: string | undefined; roles?: string | undefined };
  try {
    ({ values } = tokenize({ args: [...argv], options: { id: { type: "string" }, roles: { type: "string" } }, strict: true, allowPositionals: false }));
  } catch (err) {
    const arg = (/'([^']+)'/.exec((err as Error).message)?.[1] ?? argv.join(" ")).replace(/ <value>$/, "");
    if ((err as { code?: string }).code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") throw new Error(`${arg} needs a value (${USAGE})`);
    throw new Error(`unknown argument ${arg} (${USAGE})`);
  }
  const out: { id?: string; roles?: string[] } = {};
  if (values.id !== undefined) out.id = values.id;
  if (values.roles !== undefined) out.roles = values.roles.split(",").map((r) => r.trim()).filter(Boolean);
  if (out.id !== undefined && !/^[A-Za-z0-9][A-Za-z0-9_.@:-]*$/.test(out.id)) throw new Error(`--id ${JSON.stringify(out.id)}: use letters, digits and _.@:-`);
  return out;
}

async function main(): Promise<void> {
  try {
    const opts = parseArgs(process.argv.slice(2));
    if (process.stdin.isTTY) process.stderr.write("reading the API key from stdin (end with Ctrl-D)…\n");
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of process.stdin) {
      size += (c as Buffer).length;
      if (size > MAX_KEY_BYTES + 2) throw new Error(`key longer than ${MAX_KEY_BYTES} bytes`);
      chunks.push(c as Buffer);
    }
    const r = hashApiKeyInput(Buffer.concat(chunks).toString("utf8"), opts);
    process.stdout.write(`${r.sha256}\n\n# policy snippet (spec.providers.apiKeys[].keys):\n${r.snippet}\n`);
  } catch (err) {
    process.stderr.write(`hash-api-key: ${(err as Error).message}\n`);
    process.exitCode = 2;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
