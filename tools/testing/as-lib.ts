// Compiles the pure AssemblyScript lib modules (asconfig target "lib-test") and instantiates them
// through @assemblyscript/loader. The build is cached in os.tmpdir() per hash of the sources.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

export interface LibExports {
  __newString(s: string): number;
  __getString(ptr: number): string;
  __getInt32Array(ptr: number): Int32Array;
  __newArray(id: number, values: ArrayLike<number>): number;
  __retain(ptr: number): number;
  __release(ptr: number): void;
  Uint8Array_ID: { value: number };
  jsonRoundTrip(text: number): number;
  pathMatches(kind: number, pattern: number, target: number): number;
  checkGlob(pattern: number): number;
  stringMatches(kind: number, operand: number, actual: number, present: number): number;
  query(target: number, name: number): number;
  decode(s: number): number;
  cookie(header: number, name: number): number;
  hashString(s: number): bigint;
  hashUtf8(s: number): bigint;
  stickyCounts(weights: number, prefix: number, n: number): number;
  pick(weights: number, point: bigint): number;
  randomCounts(weights: number, seed: number, n: number): number;
  requestMatches(matchJson: number, headerLines: number): number;
  headerOf(headerLines: number, name: number): number;
  headerOccurrences(headerLines: number, name: number): number;
  pairsCount(bytes: number): number;
  readField(json: number, key: number, type: number): number;
}

/** Typed string-level wrapper over the raw exports. */
export class AsLib {
  constructor(readonly raw: LibExports) {}

  private str(s: string): number {
    return this.raw.__retain(this.raw.__newString(s));
  }

  private call<T>(args: string[], fn: (...ptrs: number[]) => T): T {
    const ptrs = args.map((a) => this.str(a));
    try {
      return fn(...ptrs);
    } finally {
      for (const p of ptrs) this.raw.__release(p);
    }
  }

  private string(ptr: number): string | null {
    if (ptr === 0) return null;
    const s = this.raw.__getString(ptr);
    this.raw.__release(ptr);
    return s;
  }

  jsonRoundTrip(text: string): string {
    return this.call([text], (p) => this.string(this.raw.jsonRoundTrip(p))) ?? "";
  }
  pathMatches(kind: "exact" | "prefix" | "glob", pattern: string, target: string): boolean {
    return this.call([kind, pattern, target], (a, b, c) => this.raw.pathMatches(a!, b!, c!) !== 0);
  }
  checkGlob(pattern: string): string {
    return this.call([pattern], (p) => this.string(this.raw.checkGlob(p!))) ?? "";
  }
  stringMatches(kind: string, operand: string, actual: string | null): boolean {
    const r = this.call([kind, operand, actual ?? ""], (a, b, c) => this.raw.stringMatches(a!, b!, c!, actual === null ? 0 : 1));
    if (r === 2) throw new Error(`string and byte matchers disagree on ${kind} '${operand}' vs '${actual}'`);
    return r === 1;
  }
  query(target: string, name: string): string | null {
    return this.call([target, name], (a, b) => this.string(this.raw.query(a!, b!)));
  }
  decode(s: string): string {
    return this.call([s], (a) => this.string(this.raw.decode(a!))) ?? "";
  }
  cookie(header: string, name: string): string | null {
    return this.call([header, name], (a, b) => this.string(this.raw.cookie(a!, b!)));
  }
  hashString(s: string): bigint {
    return BigInt.asUintN(64, this.call([s], (a) => this.raw.hashString(a!)));
  }
  hashUtf8(s: string): bigint {
    return BigInt.asUintN(64, this.call([s], (a) => this.raw.hashUtf8(a!)));
  }
  stickyCounts(weights: number[], prefix: string, n: number): number[] {
    return this.call([weights.join(","), prefix], (a, b) => this.int32s(this.raw.stickyCounts(a!, b!, n)));
  }
  randomCounts(weights: number[], seed: number, n: number): number[] {
    return this.call([weights.join(",")], (a) => this.int32s(this.raw.randomCounts(a!, seed, n)));
  }
  pick(weights: number[], point: bigint): number {
    return this.call([weights.join(",")], (a) => this.raw.pick(a!, BigInt.asIntN(64, point)));
  }
  /** headers: [name, value] pairs including pseudo-headers such as ":path". */
  requestMatches(match: unknown, headers: Array<[string, string]>): string {
    const json = typeof match === "string" ? match : JSON.stringify(match);
    const lines = headers.map(([n, v]) => `${n}: ${v}`).join("\n");
    return this.call([json, lines], (a, b) => this.string(this.raw.requestMatches(a!, b!))) ?? "";
  }
  headerOf(headers: Array<[string, string]>, name: string): string {
    const lines = headers.map(([n, v]) => `${n}: ${v}`).join("\n");
    return this.call([lines, name], (a, b) => this.string(this.raw.headerOf(a!, b!))) ?? "";
  }
  headerOccurrences(headers: Array<[string, string]>, name: string): string {
    const lines = headers.map(([n, v]) => `${n}: ${v}`).join("\n");
    return this.call([lines, name], (a, b) => this.string(this.raw.headerOccurrences(a!, b!))) ?? "";
  }
  pairsCount(bytes: Uint8Array): number {
    const ptr = this.raw.__retain(this.raw.__newArray(this.raw.Uint8Array_ID.value, bytes));
    try {
      return this.raw.pairsCount(ptr);
    } finally {
      this.raw.__release(ptr);
    }
  }
  readField(json: string, key: string, type: "string" | "bool" | "int" | "array"): string {
    return this.call([json, key, type], (a, b, c) => this.string(this.raw.readField(a!, b!, c!))) ?? "";
  }

  private int32s(ptr: number): number[] {
    const out = Array.from(this.raw.__getInt32Array(ptr));
    this.raw.__release(ptr);
    return out;
  }
}

const libDir = join(repoRoot, "filters", "lib");
/** The test-only entry that exports the pure lib modules (asconfig target "lib-test"). */
const LIB_ENTRY = join(repoRoot, "test", "fixtures", "wasm", "lib-exports.ts");
const libSources = (): string[] => readdirSync(libDir).filter((n) => n.endsWith(".ts")).sort();

/** filters/build/lib-test.wasm from `npm run build`, when it is newer than every input. */
function freshBuildArtifact(): string | undefined {
  const artifact = join(repoRoot, "filters", "build", "lib-test.wasm");
  if (!existsSync(artifact)) return undefined;
  const built = statSync(artifact).mtimeMs;
  const inputs = [...libSources().map((f) => join(libDir, f)), LIB_ENTRY, join(repoRoot, "asconfig.json")];
  return inputs.every((f) => statSync(f).mtimeMs < built) ? artifact : undefined;
}

function sourceHash(): string {
  const h = createHash("sha256");
  for (const f of libSources()) {
    h.update(f).update(readFileSync(join(libDir, f)));
  }
  h.update(readFileSync(LIB_ENTRY));
  h.update(readFileSync(join(repoRoot, "asconfig.json")));
  h.update(readFileSync(join(repoRoot, "node_modules", "assemblyscript", "package.json")));
  return h.digest("hex").slice(0, 16);
}

/**
 * Path of the compiled lib-test module: the build's artifact when fresh, else a copy compiled into
 * os.tmpdir() (≈10–40 s) and cached there per hash of the sources.
 */
export async function buildLibTestWasm(): Promise<string> {
  const artifact = freshBuildArtifact();
  if (artifact) return artifact;
  const dir = join(tmpdir(), "meshward-as-cache");
  mkdirSync(dir, { recursive: true });
  const out = join(dir, `lib-test-${sourceHash()}.wasm`);
  if (existsSync(out)) return out;
  const tmp = `${out}.${process.pid}.tmp`;
  const asc = require("assemblyscript/cli/asc") as {
    ready: Promise<void>;
    main(args: string[], opts: object, cb: (err: Error | null) => number): void;
  };
  await asc.ready;
  let stderr = "";
  const sink = { write: (s: string | Uint8Array) => { stderr += String(s); return true; } };
  await new Promise<void>((resolve, reject) => {
    asc.main(["test/fixtures/wasm/lib-exports.ts", "--config", "asconfig.json", "--target", "lib-test", "--baseDir", repoRoot, "--binaryFile", tmp],
      { stdout: sink, stderr: sink }, (err) => {
        if (err) reject(new Error(`lib-test compile failed: ${String(err)}\n${stderr}`));
        else resolve();
        return 0;
      });
  });
  renameSync(tmp, out);
  return out;
}

export async function loadAsLib(): Promise<AsLib> {
  const loader = require("@assemblyscript/loader") as {
    instantiate<T>(bytes: Uint8Array, imports: object): Promise<{ exports: T }>;
  };
  const wasm = readFileSync(await buildLibTestWasm());
  const { exports } = await loader.instantiate<LibExports>(wasm, {});
  return new AsLib(exports);
}
