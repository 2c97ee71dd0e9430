// `npm run bench`: runs every bench module present (tools/bench/*.ts exporting `bench`), shows progress on stderr,
// and writes tools/bench/results/latest.{json,md,svg}. Flags: --quick (sub-minute windows), --only area[,area].
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { BenchModule, BenchRow } from "./row.js";
import { machineInfo, renderJson, renderMarkdown, renderSvg, type BenchReport, type ReportRow } from "./lib/report.js";

const BENCH_DIR = fileURLToPath(new URL(".", import.meta.url));
const RESULTS_DIR = join(BENCH_DIR, "results");
/** The modules the product expects, in run order; others found in tools/bench/ run after them. */
const EXPECTED = ["authz", "latency", "filters", "rate-limit", "quota", "credentials"];
const NOT_MODULES = new Set(["run", "row"]);

export interface RunArgs {
  readonly quick: boolean;
  readonly only?: readonly string[];
}

export function parseArgs(argv: readonly string[]): RunArgs {
  let quick = false;
  let only: string[] | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--quick") quick = true;
    else if (a === "--only" || a.startsWith("--only=")) {
      const v = a === "--only" ? argv[++i] : a.slice("--only=".length);
      if (!v) throw new Error("--only needs a comma-separated list of areas, e.g. --only latency,filters");
      only = v.split(",").map((s) => s.trim()).filter(Boolean);
    } else if (a === "--help" || a === "-h") {
      throw new Error("usage: npm run bench -- [--quick] [--only area[,area]]");
    } else throw new Error(`unknown argument '${a}' (usage: npm run bench -- [--quick] [--only area[,area]])`);
  }
  return only ? { quick, only } : { quick };
}

/** Bench module names present in tools/bench/ (file stem), expected ones first. */
export function discoverModules(dir = BENCH_DIR): string[] {
  const found = readdirSync(dir).filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts")).map((f) => basename(f, ".ts")).filter((n) => !NOT_MODULES.has(n));
  return [...EXPECTED.filter((n) => found.includes(n)), ...found.filter((n) => !EXPECTED.includes(n)).sort()];
}

function problemWithRow(r: unknown): string | undefined {
  if (typeof r !== "object" || r === null) return "a row is not an object";
  const row = r as Partial<BenchRow>;
  for (const k of ["area", "name", "unit"] as const) if (typeof row[k] !== "string") return `row field '${k}' is not a string`;
  if (typeof row.ours !== "number") return `row '${row.name}': 'ours' is not a number`;
  return undefined;
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err)).split("\n")[0]!.slice(0, 300);

export interface RunModulesOptions {
  readonly quick: boolean;
  readonly log: (msg: string) => void;
  readonly moduleLimitMs: number;
  readonly heartbeatMs?: number;
}

/** Imports and runs each named module from `dir` in turn; a module that throws, times out or returns bad rows gives a failed row. */
export async function runModules(dir: string, names: readonly string[], opts: RunModulesOptions): Promise<ReportRow[]> {
  const { log, moduleLimitMs } = opts;
  const rows: ReportRow[] = [];
  for (const [i, name] of names.entries()) {
    const next = names[i + 1] ?? "report";
    const tag = `${name} (${i + 1}/${names.length}, next: ${next})`;
    let last = "starting";
    let lastAt = performance.now();
    const progress = (msg: string): void => {
      last = msg;
      lastAt = performance.now();
      log(`${tag}: ${msg}`);
    };
    const heartbeat = setInterval(() => log(`${tag}: still at '${last}' (${((performance.now() - lastAt) / 1000).toFixed(0)} s)`), opts.heartbeatMs ?? 15_000);
    const t0 = performance.now();
    try {
      progress("loading");
      const mod = (await import(pathToFileURL(join(dir, `${name}.ts`)).href)) as { bench?: BenchModule; limitMs?: { quick: number; full: number } };
      if (typeof mod.bench !== "function") throw new Error(`tools/bench/${name}.ts does not export 'bench' (a BenchModule)`);
      // A module may declare a longer limit of its own (e.g. one Envoy per scenario).
      const limitMs = Math.max(moduleLimitMs, (opts.quick ? mod.limitMs?.quick : mod.limitMs?.full) ?? 0);
      let timer: NodeJS.Timeout | undefined;
      const produced = await Promise.race([
        mod.bench({ quick: opts.quick, progress }),
        new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${limitMs / 1000} s`)), limitMs); }),
      ]).finally(() => clearTimeout(timer));
      if (!Array.isArray(produced)) throw new Error("bench() did not return an array of rows");
      for (const r of produced as unknown[]) {
        const problem = problemWithRow(r);
        rows.push(problem ? { area: name, name: "invalid row", unit: "", ours: Number.NaN, failed: true, note: problem } : (r as ReportRow));
      }
      log(`${name}: ${produced.length} row(s) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } catch (err) {
      log(`${name}: FAILED: ${errorText(err)}`);
      rows.push({ area: name, name: `tools/bench/${name}.ts`, unit: "", ours: Number.NaN, failed: true, note: `failed: ${errorText(err)}` });
    } finally {
      clearInterval(heartbeat);
    }
  }
  return rows;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const started = performance.now();
  const elapsed = (): string => `${((performance.now() - started) / 1000).toFixed(1)}s`;
  const log = (msg: string): void => void process.stderr.write(`[bench ${elapsed()}] ${msg}\n`);
  const machine = machineInfo();
  const notes: string[] = [];

  const present = discoverModules();
  for (const name of EXPECTED) if (!present.includes(name)) notes.push(`tools/bench/${name}.ts is not in the tree: skipped`);
  if (args.only) {
    for (const name of args.only) if (!present.includes(name)) notes.push(`--only ${name}: no tools/bench/${name}.ts`);
  }
  const selected = args.only ? present.filter((n) => args.only!.includes(n)) : present;
  log(`${machine.cores} cores (${machine.cpuModel}), Node ${machine.node}, load ${machine.loadAvgStart}; ${args.quick ? "quick" : "full"} run of: ${selected.join(", ") || "(nothing)"}`);
  for (const n of notes) log(n);

  const rows = await runModules(BENCH_DIR, selected, { quick: args.quick, log, moduleLimitMs: args.quick ? 180_000 : 1_200_000 });

  machine.loadAvgEnd = Math.round(loadavg()[0]! * 100) / 100;
  const busiest = Math.max(machine.loadAvgStart, machine.loadAvgEnd);
  if (busiest > machine.cores) {
    notes.push(`load average reached ${busiest} on ${machine.cores} cores: other processes competed for the CPU during this run, so absolute figures (and, less so, ratios) are not representative; rerun on a quiet machine`);
  }
  const report: BenchReport = {
    machine,
    date: new Date().toISOString(),
    quick: args.quick,
    durationSec: (performance.now() - started) / 1000,
    notes,
    rows,
  };
  if (!existsSync(RESULTS_DIR)) mkdirSync(RESULTS_DIR, { recursive: true });
  const md = renderMarkdown(report);
  writeFileSync(join(RESULTS_DIR, "latest.json"), renderJson(report));
  writeFileSync(join(RESULTS_DIR, "latest.md"), md);
  writeFileSync(join(RESULTS_DIR, "latest.svg"), renderSvg(report));
  process.stdout.write(md);
  log(`wrote tools/bench/results/latest.{json,md,svg}`);
  return rows.some((r) => r.failed) ? 1 : 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  // Exit handlers stop the servers the modules started.
  process.once("SIGINT", () => process.exit(130));
  process.once("SIGTERM", () => process.exit(143));
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`bench: ${errorText(err)}\n`);
      process.exit(2);
    },
  );
}
