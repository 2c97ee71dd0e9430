// The repository stands alone and keeps its rooms apart: no tracked file names the folder that sits
// beside our own checkouts, no relative import or URL leaves the repository, and imports follow
// docs/architecture.md (product never imports tools/ or test/; tools never import test/; a test
// suite imports tools, fixtures and its own folder, never another suite).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { FIXTURES_DIR, fixturePath } from "../fixtures/index.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const SIBLING = ["..", "shared"].join("/"); // spelled in pieces so this file does not match itself
const TEXT = /\.(ts|mts|mjs|js|json|ya?ml|md|sh|txt)$|(^|\/)(\.ci\/run|Dockerfile[^/]*|\.gitignore|\.mocharc\.json)$/;
const CODE = /\.(ts|mts|mjs|js)$/;

/** Tracked files (git ls-files), or a walk of the tree when this is not a git checkout. */
function trackedFiles(): string[] {
  const git = spawnSync("git", ["ls-files", "-z"], { cwd: ROOT, encoding: "utf8" });
  if (git.status === 0 && git.stdout.length > 0) return git.stdout.split("\0").filter((f) => f !== "");
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      if (e.name === "node_modules" || e.name === ".git" || e.name === "dist" || e.name === "build") continue;
      const rel = dir === "" ? e.name : `${dir}/${e.name}`;
      if (e.isDirectory()) walk(rel);
      else out.push(rel);
    }
  };
  walk("");
  return out;
}

/** Relative specifiers a module loads or addresses: imports, dynamic imports, `new URL(…, import.meta.url)`. */
export function relativeReferences(source: string): string[] {
  const found: string[] = [];
  const patterns = [
    /(?:^|[\s;}])(?:import|export)\s[^"';]*?from\s*["'](\.{1,2}\/[^"']*)["']/g,
    /(?:^|[\s;}])import\s*["'](\.{1,2}\/[^"']*)["']/g,
    /import\(\s*["'](\.{1,2}\/[^"']*)["']\s*\)/g,
    /new URL\(\s*["'`](\.{1,2}\/[^"'`$]*)[^"'`]*["'`]\s*,\s*import\.meta\.url\s*\)/g,
  ];
  for (const re of patterns) for (const m of source.matchAll(re)) found.push(m[1]!);
  return found;
}

/** The room a repository path belongs to, for the import rule. */
function room(path: string): string {
  const [top, second] = path.split("/");
  if (top === "authz-server" || top === "filters") return "product";
  if (top === "tools") return "tools";
  if (top === "test") return second === "fixtures" ? "fixtures" : `test/${second}`;
  return top ?? "";
}

const files = trackedFiles();
const code = files.filter((f) => CODE.test(f) && statSync(join(ROOT, f), { throwIfNoEntry: false })?.isFile());

describe("the repository stands alone", function () {
  it("finds its tracked files (git ls-files or a walk)", function () {
    assert.ok(files.includes("package.json") && files.length > 100, `${files.length} files`);
  });

  it(`no tracked file mentions ${SIBLING}`, function () {
    const hits = files
      .filter((f) => TEXT.test(f) && statSync(join(ROOT, f), { throwIfNoEntry: false })?.isFile())
      .flatMap((f) => readFileSync(join(ROOT, f), "utf8").split("\n").map((line, i) => ({ f, i, line })))
      .filter(({ line }) => line.includes(SIBLING))
      .map(({ f, i }) => `${f}:${i + 1}`);
    assert.deepEqual(hits, []);
  });

  it("no tracked text file holds a merge conflict marker", function () {
    const marker = new RegExp(`^(${["<".repeat(7), ">".repeat(7)].join("|")})( |$)|^${"=".repeat(7)}$`);
    const hits = files
      .filter((f) => TEXT.test(f) && !f.endsWith("package-lock.json") && statSync(join(ROOT, f), { throwIfNoEntry: false })?.isFile())
      .flatMap((f) => readFileSync(join(ROOT, f), "utf8").split("\n").map((line, i) => ({ f, i, line })))
      .filter(({ line }) => marker.test(line))
      .map(({ f, i }) => `${f}:${i + 1}`);
    assert.deepEqual(hits, []);
  });

  it("no relative import, dynamic import or module URL resolves outside the repository", function () {
    const outside: string[] = [];
    for (const f of code) {
      for (const spec of relativeReferences(readFileSync(join(ROOT, f), "utf8"))) {
        const inside = relative(ROOT, resolve(ROOT, dirname(f), spec));
        if (inside.startsWith(`..${sep}`) || inside === ".." || isAbsolute(inside)) outside.push(`${f}: ${spec}`);
      }
    }
    assert.deepEqual(outside, []);
  });

  it("imports follow the rooms: product ← tools ← test suites, fixtures shared, no suite imports another", function () {
    const broken: string[] = [];
    for (const f of code) {
      const from = room(f);
      if (from === "fixtures" && f.startsWith("test/fixtures/wasm/")) continue; // AssemblyScript entries over filters/
      for (const spec of relativeReferences(readFileSync(join(ROOT, f), "utf8"))) {
        if (spec.endsWith("/")) continue; // a folder URL (repository root, data folders), not a module
        const target = relative(ROOT, resolve(ROOT, dirname(f), spec)).split(sep).join("/");
        const to = room(target);
        const allowed =
          to === from ||
          to === "product" && from !== "product" ||
          to === "tools" && from !== "product" ||
          to === "fixtures" && from.startsWith("test/") ||
          !["product", "tools", "fixtures"].includes(to) && !to.startsWith("test/");
        if (!allowed) broken.push(`${f} (${from}) imports ${target} (${to})`);
        // A test file is a suite, never a library, even for its own folder: shared tables live in fixtures.
        else if (/\.test\.[jt]s$/.test(target)) broken.push(`${f} imports the suite ${target}`);
      }
    }
    assert.deepEqual(broken, []);
  });

  it("fixture paths resolve inside test/fixtures and nowhere else", function () {
    assert.equal(fixturePath("jose/rfc7515-appendix-a.json"), join(FIXTURES_DIR, "jose", "rfc7515-appendix-a.json"));
    assert.equal(relative(ROOT, FIXTURES_DIR).split(sep).join("/"), "test/fixtures");
    for (const bad of ["..", "../layout/stands-alone.test.ts", "jose/../../x", "/etc/passwd", ""]) {
      assert.throws(() => fixturePath(bad), /leaves test\/fixtures/, bad);
    }
  });

  it("the reference scanner sees imports, dynamic imports and module URLs (so the checks above can fail)", function () {
    const up = "../"; // samples are assembled so that this file's own text holds no reference
    const sample = [
      `import { a } from "${up}${up}x/a.js";`,
      `export * from ".${up.slice(2)}b.js";`,
      `const m = await import("${up}c.js");`,
      `const u = new URL("${up.repeat(3)}${SIBLING.slice(3)}/v.json", import.meta.url);`,
      `import ".${up.slice(2)}side-effect.js";`,
    ].join("\n");
    const expected = [`${up.repeat(3)}${SIBLING.slice(3)}/v.json`, `${up}${up}x/a.js`, `${up}c.js`, "./b.js", "./side-effect.js"];
    assert.deepEqual(relativeReferences(sample).sort(), expected.sort());
  });
});
