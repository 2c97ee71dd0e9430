// `envoy --mode validate` on a bootstrap given as data: Envoy parses it with its own protos, builds every
// listener, cluster and filter (Wasm plugins are loaded and configured) and binds nothing.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, isAbsolute, join } from "node:path";
import { stringify as stringifyYaml } from "yaml";
import { ROOT } from "./resolve.js";

/** Where the images put the filters (envoy/k8s/Dockerfile.gateway); validation uses the built files. */
const IMAGE_WASM_DIR = "/etc/meshward/filters/";
const BUILT_WASM_DIR = join(ROOT, "filters/build");

export interface EnvoyValidation {
  readonly ok: boolean;
  /** Envoy's critical/error lines (the reason when !ok). */
  readonly errors: readonly string[];
  /** Envoy's warning lines, e.g. deprecated fields. */
  readonly warnings: readonly string[];
}

/**
 * Local wasm filenames rewritten for this machine: paths inside the image (/etc/meshward/filters/X.wasm)
 * become filters/build/X.wasm; relative paths resolve against the repository root (Envoy's cwd).
 */
export function localiseWasmPaths(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(localiseWasmPaths);
  if (typeof value !== "object" || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === "filename" && typeof v === "string" && v.endsWith(".wasm") && v.startsWith(IMAGE_WASM_DIR)) out[k] = join(BUILT_WASM_DIR, basename(v));
    else out[k] = localiseWasmPaths(v);
  }
  return out;
}

/** The local wasm files a bootstrap names that do not exist (validation would fail on them). */
export function missingWasmFiles(value: unknown, cwd = ROOT): string[] {
  const missing: string[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (typeof v !== "object" || v === null) return;
    for (const [k, x] of Object.entries(v)) {
      if (k === "filename" && typeof x === "string" && x.endsWith(".wasm")) {
        if (!existsSync(isAbsolute(x) ? x : join(cwd, x))) missing.push(x);
      } else walk(x);
    }
  };
  walk(value);
  return missing;
}

/** Runs `envoy --mode validate` on `bootstrap` (already localised) with cwd `cwd` (default: the repository root). */
export async function validateBootstrap(bin: string, bootstrap: unknown, options: { cwd?: string; timeoutMs?: number } = {}): Promise<EnvoyValidation> {
  const dir = mkdtempSync(join(tmpdir(), "meshward-validate-"));
  const file = join(dir, "envoy.yaml");
  writeFileSync(file, stringifyYaml(bootstrap, { aliasDuplicateObjects: false }));
  try {
    const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
      const child = spawn(bin, ["--mode", "validate", "-c", file, "--disable-hot-restart", "--log-level", "warn"], { cwd: options.cwd ?? ROOT, stdio: ["ignore", "pipe", "pipe"] });
      let output = "";
      const add = (c: Buffer) => {
        if (output.length < 1024 * 1024) output += c.toString("utf8");
      };
      child.stdout.on("data", add);
      child.stderr.on("data", add);
      const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
      child.on("error", reject);
      child.on("exit", (c) => {
        clearTimeout(timer);
        resolve({ code: c, output });
      });
    });
    const lines = output.split("\n").filter((l) => l.trim() !== "");
    const records = logRecords(lines);
    const errors = records.filter((r) => /\]\[(critical|error)\]/.test(r[0] as string)).map(message);
    const warnings = records.filter((r) => /\]\[warning\]/.test(r[0] as string)).map(message);
    const ok = code === 0 && lines.some((l) => /^configuration '.*' OK$/.test(l));
    return { ok, errors: ok ? errors : errors.length > 0 ? errors : [`envoy --mode validate exited ${code}: ${lines.slice(-2).join(" ")}`], warnings };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Log lines grouped into records: a record starts with `[time]`; Envoy continues some over many lines. */
function logRecords(lines: readonly string[]): string[][] {
  const out: string[][] = [];
  for (const l of lines) {
    if (/^\[\d{4}-/.test(l) || out.length === 0) out.push([l]);
    else (out[out.length - 1] as string[]).push(l);
  }
  return out;
}

/**
 * `[time][pid][level][logger] [source:line] message` → `message`, the temporary file name elided. A
 * proto validation failure prints the whole bootstrap between the message and its reason (the record's
 * last line, `: Proto constraint validation failed (…)`): the dump is left out.
 */
function message(record: readonly string[]): string {
  const first = (record[0] as string)
    .replace(/^\[[^\]]*\]\[\d+\]\[\w+\]\[\w+\] \[[^\]]*\] /, "")
    .replace(/'[^']*meshward-validate-[^']*'/g, "'<bootstrap>'")
    // Abseil status strings carry a marker that changes from run to run (goo.gle/debugonly, …/debugstr).
    .replace(/\s*goo\.gle\/debug\w*\s*/g, " ")
    .trim();
  const last = record.length > 1 ? (record[record.length - 1] as string).replace(/^:\s*/, "").trim() : "";
  return last === "" ? first : `${first} ${last}`;
}
