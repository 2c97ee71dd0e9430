// Keeps the documentation honest: relative links resolve (files and #anchors), docs/errors.md and the
// code catalogues of ERR_* codes agree both ways (section, reason; nothing stale), every policy schema
// key is documented in docs/policy.md, and every docs/ page a code comment points at exists.
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { FLAGS } from "../../authz-server/src/cli/args.js";
import { ERROR_CODES } from "../../authz-server/src/error-codes.js";
import { POLICY_SCHEMA } from "../../authz-server/src/policy/schema.js";
import { PROBLEM_CODES } from "../../tools/check-config/problem-codes.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const read = (rel: string): string => readFileSync(join(ROOT, rel), "utf8");

/** Files under `dir` (relative to ROOT) whose names match `re`, skipping build output and dependencies. */
function walk(dir: string, re: RegExp): string[] {
  const out: string[] = [];
  const visit = (rel: string): void => {
    for (const e of readdirSync(join(ROOT, rel), { withFileTypes: true })) {
      if (e.name === "node_modules" || e.name === "dist" || e.name === "build" || e.name.startsWith(".")) continue;
      const child = `${rel}/${e.name}`;
      if (e.isDirectory()) visit(child);
      else if (re.test(e.name)) out.push(child);
    }
  };
  visit(dir);
  return out.sort();
}

/** Markdown without fenced code blocks (links inside them are examples, not links). */
function withoutFences(md: string): string {
  return md.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, "");
}

/** Relative link targets of a Markdown text: `[text](target)`, external schemes excluded. */
export function relativeLinks(md: string): string[] {
  const out: string[] = [];
  const text = withoutFences(md).replace(/`[^`\n]*`/g, "");
  for (const m of text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
    const target = m[1]!;
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, https:, mailto:
    out.push(target);
  }
  return out;
}

/** GitHub's heading anchors of a Markdown text. */
export function anchors(md: string): Set<string> {
  const out = new Set<string>();
  const seen = new Map<string, number>();
  for (const m of withoutFences(md).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = m[1]!
      .replace(/`/g, "")
      .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Problems with the relative links of one Markdown file (path relative to ROOT). */
function brokenLinks(file: string, md: string): string[] {
  const problems: string[] = [];
  for (const link of relativeLinks(md)) {
    const [pathPart, anchor] = link.split("#", 2) as [string, string | undefined];
    const target = pathPart === "" ? join(ROOT, file) : resolve(dirname(join(ROOT, file)), decodeURIComponent(pathPart));
    if (!existsSync(target)) {
      problems.push(`${file}: link ${link}: ${relative(ROOT, target)} does not exist`);
      continue;
    }
    if (anchor !== undefined && anchor !== "" && target.endsWith(".md") && statSync(target).isFile()) {
      if (!anchors(readFileSync(target, "utf8")).has(anchor.toLowerCase())) problems.push(`${file}: link ${link}: no heading #${anchor} in ${relative(ROOT, target)}`);
    }
  }
  return problems;
}

const ERR_CODE = /\b(?:ERR|WARN)_[A-Z0-9]+(?:_[A-Z0-9]+)*\b/g;
/** Node's own error codes that our code recognises (e.g. node:util.parseArgs'): not ours to catalogue. */
const NODE_CODE = /^ERR_(PARSE_ARGS|INVALID_ARG|MODULE_NOT_FOUND|UNKNOWN_FILE_EXTENSION|STREAM)_?/;

function codesIn(files: readonly string[]): Map<string, string> {
  const where = new Map<string, string>();
  for (const f of files) for (const m of read(f).matchAll(ERR_CODE)) if (!where.has(m[0]) && !NODE_CODE.test(m[0])) where.set(m[0], f);
  return where;
}

/** The code tables of docs/errors.md: for each `## ` section, each row's code with its cells after the code. */
function errorTables(md: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  for (const part of md.split(/^## /m).slice(1)) {
    const rows = new Map<string, string[]>();
    for (const m of part.matchAll(/^\| `((?:ERR|WARN)_[A-Z0-9_]+)`[^|]*((?:\|[^\n]*)?)$/gm)) rows.set(m[1]!, m[2]!.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim()));
    sections.set(part.split("\n", 1)[0]!.trim(), rows);
  }
  return sections;
}

/** The section of docs/errors.md where each catalogue area is written out. */
const SECTION = { check: "authz-server: Check answers", startup: "authz-server: start-up, configuration, admin", quota: "Quota service", "check-config": "check-config", tools: "Test tools (not shipped)" } as const;

/** Every property name of a JSON Schema with its dotted path (`[]` for array items, `{}` for map values). */
function schemaKeys(schema: unknown, defs: Record<string, unknown>, path = "", seenRefs = new Set<string>()): Array<{ key: string; path: string }> {
  const out: Array<{ key: string; path: string }> = [];
  const node = schema as { properties?: Record<string, unknown>; items?: unknown; additionalProperties?: unknown; $ref?: string };
  if (typeof node !== "object" || node === null) return out;
  if (node.$ref) {
    const name = node.$ref.replace("#/$defs/", "");
    if (seenRefs.has(name)) return out;
    return schemaKeys(defs[name], defs, path, new Set([...seenRefs, name]));
  }
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const p = path === "" ? key : `${path}.${key}`;
    out.push({ key, path: p });
    out.push(...schemaKeys(child, defs, p, seenRefs));
  }
  if (node.items) out.push(...schemaKeys(node.items, defs, `${path}[]`, seenRefs));
  if (typeof node.additionalProperties === "object") out.push(...schemaKeys(node.additionalProperties, defs, `${path}{}`, seenRefs));
  return out;
}

/** Inline code spans and fenced blocks of a Markdown text, joined: where keys are written as keys. */
function codeText(md: string): string {
  const fences = [...md.matchAll(/^(```|~~~)[^\n]*\n([\s\S]*?)^\1/gm)].map((m) => m[2]);
  const spans = [...withoutFences(md).matchAll(/`([^`\n]+)`/g)].map((m) => m[1]);
  return [...fences, ...spans].join("\n");
}

describe("docs: the documentation matches the repository", () => {
  describe("the checkers themselves", () => {
    it("finds relative links and skips external ones, code spans and fenced examples", () => {
      const md = "See [a](docs/a.md) and [b](https://x.example/) and `[c](c.md)`.\n```\n[d](d.md)\n```\n[e](../e.md#part \"title\")";
      assert.deepEqual(relativeLinks(md), ["docs/a.md", "../e.md#part"]);
    });

    it("computes GitHub heading anchors, duplicates numbered", () => {
      assert.deepEqual([...anchors("# Error codes\n## authz-server: Check answers\n## Keys\n### `spec.limits`\n## Keys\n")], ["error-codes", "authz-server-check-answers", "keys", "speclimits", "keys-1"]);
    });

    it("reports a link to a missing file and to a missing heading", () => {
      const problems = brokenLinks("README.md", "[x](docs/no-such-page.md) [y](docs/policy.md#no-such-heading) [z](docs/policy.md#decision)");
      assert.equal(problems.length, 2, problems.join("\n"));
      assert.match(problems[0]!, /no-such-page\.md does not exist/);
      assert.match(problems[1]!, /no heading #no-such-heading/);
    });
  });

  it("every relative link in README.md and docs/*.md resolves to an existing file and heading", () => {
    const files = ["README.md", ...walk("docs", /\.md$/)];
    assert.ok(files.length >= 9, `expected README.md and the docs pages, found ${files.join(", ")}`);
    const problems = files.flatMap((f) => brokenLinks(f, read(f)));
    assert.deepEqual(problems, []);
  });

  it("every docs/ page that code, tools or tests point at exists", () => {
    const sources = [...walk("authz-server/src", /\.ts$/), ...walk("filters", /\.ts$/), ...walk("tools", /\.(ts|mjs)$/), ...walk("test", /\.ts$/).filter((f) => !f.startsWith("test/docs/"))];
    const missing: string[] = [];
    let refs = 0;
    for (const f of sources) {
      for (const m of read(f).matchAll(/\bdocs\/([a-z0-9-]+\.md)\b/g)) {
        refs++;
        if (!existsSync(join(ROOT, "docs", m[1]!))) missing.push(`${f}: docs/${m[1]}`);
      }
    }
    assert.ok(refs > 0, "expected code comments pointing into docs/");
    assert.deepEqual(missing, []);
  });

  describe("docs/errors.md and the code catalogues (authz-server/src/error-codes.ts, tools/check-config/problem-codes.ts)", () => {
    const tables = errorTables(read("docs/errors.md"));
    const catalogued = new Map<string, keyof typeof SECTION>([...PROBLEM_CODES.map((c) => [c, "check-config"] as const), ...Object.entries(ERROR_CODES).map(([c, e]) => [c, e.area] as const)]);
    const sources = [...walk("authz-server/src", /\.ts$/), ...walk("tools", /\.(ts|mjs)$/)];
    const catalogues = ["authz-server/src/error-codes.ts", "tools/check-config/problem-codes.ts"];

    it("reads the tables: every section has its codes", () => {
      for (const title of Object.values(SECTION)) assert.ok((tables.get(title)?.size ?? 0) > 0, `no codes under ## ${title}`);
      assert.ok(catalogued.size > 100, `expected the catalogues, found ${catalogued.size} codes`);
    });

    it("every catalogued code is documented in its section, and a Check code with its catalogue reason", () => {
      const problems: string[] = [];
      for (const [code, area] of catalogued) if (!tables.get(SECTION[area])!.has(code)) problems.push(`${code}: not under ## ${SECTION[area]}`);
      for (const [code, entry] of Object.entries(ERROR_CODES)) {
        const reason = entry.area === "check" ? tables.get(SECTION.check)!.get(code)?.[0] : undefined;
        if (entry.area === "check" && reason !== `\`${entry.reason}\``) problems.push(`${code}: reason ${reason} in docs, ${entry.reason} in the catalogue`);
      }
      assert.deepEqual(problems, []);
    });

    it("every documented code is catalogued (the test tools': raised in tools/), and in the right section", () => {
      const toolCodes = codesIn(sources.filter((f) => !catalogues.includes(f)));
      const problems: string[] = [];
      for (const [title, rows] of tables) {
        for (const code of rows.keys()) {
          const area = catalogued.get(code);
          if (title === SECTION.tools ? !toolCodes.has(code) || area !== undefined : area === undefined) problems.push(`${code} under ## ${title}: ${area ?? "not in a catalogue or tools/"}`);
          else if (title !== SECTION.tools && SECTION[area!] !== title && !(code === "ERR_POLICY_INVALID" && title === SECTION["check-config"])) problems.push(`${code} under ## ${title}, catalogued as ${area}`);
        }
      }
      assert.deepEqual(problems, []);
    });

    it("every ERR_/WARN_ code written in authz-server/src and tools/ is documented, and every catalogued one is used", () => {
      const inCode = codesIn(sources.filter((f) => !catalogues.includes(f)));
      const documented = new Set([...tables.values()].flatMap((rows) => [...rows.keys()]));
      const undocumented = [...inCode].filter(([c]) => !documented.has(c)).map(([c, f]) => `${c} (${f})`);
      const unused = [...catalogued.keys()].filter((c) => !inCode.has(c));
      assert.deepEqual(undocumented, [], "codes missing from docs/errors.md");
      assert.deepEqual(unused, [], "catalogued codes that no code raises");
    });
  });

  it("docs/cli.md names every flag of authz-server with its environment variable and default", () => {
    const doc = read("docs/cli.md");
    assert.ok(FLAGS.length >= 9);
    const missing = FLAGS.flatMap((f) => {
      const row = doc.split("\n").find((l) => l.startsWith(`| \`--${f.name}`));
      if (!row) return [`--${f.name}: no table row`];
      return [...(f.env && !row.includes(`\`${f.env}\``) ? [`--${f.name}: env ${f.env}`] : []), ...(f.default && !row.includes(`\`${f.default}\``) ? [`--${f.name}: default ${f.default}`] : [])];
    });
    assert.deepEqual(missing, []);
  });

  it("every key of the policy schema is documented in docs/policy.md", () => {
    const keys = schemaKeys(POLICY_SCHEMA, POLICY_SCHEMA.$defs as Record<string, unknown>);
    const paths = keys.map((k) => k.path);
    for (const expected of ["apiVersion", "spec.rules", "spec.limits.maxHeaderBytes", "spec.providers.apiKeys[].keysFile", "spec.rules[].require.peer.serviceAccounts"]) {
      assert.ok(paths.includes(expected), `schema walk missed ${expected}`);
    }
    const doc = read("docs/policy.md");
    const code = codeText(doc);
    const undocumented = keys.filter(({ key }) => !new RegExp(`(^|[^A-Za-z0-9_])${key}([^A-Za-z0-9_]|$)`).test(code)).map((k) => k.path);
    assert.deepEqual(undocumented, [], "policy keys not written as code in docs/policy.md");
    // Top-level and spec.* keys each need their own mention as a key path or heading.
    const specKeys = keys.filter((k) => !k.path.includes(".") || /^spec\.[A-Za-z]+$/.test(k.path)).map((k) => k.path);
    const mentioned = (name: string): boolean => new RegExp(`\`${name.replace(/[.[\]]/g, "\\$&")}[\`.[]`).test(doc);
    const unheaded = specKeys.filter((p) => !mentioned(p) && !mentioned(p.replace(/^spec\./, "")));
    assert.deepEqual(unheaded, [], "top-level/spec keys without their own `key` mention");
  });
});
