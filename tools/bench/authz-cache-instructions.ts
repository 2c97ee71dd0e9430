// Instructions per request of the decision cache's hit path, counted by valgrind (callgrind) on a real
// Envoy 1.40 with one worker: exact and repeatable where CPU time on a shared machine is not (area
// `authz-cache`). Listeners from the cache world: none, noop, cached, cached-md, and ext_authz's two
// skipping wrappers alone. Directly, it also takes builds to compare in the same process:
//   node --import tsx tools/bench/authz-cache-instructions.ts [--variant name=file.wasm]… [--listeners a,b]
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { resolveEnvoy } from "../envoy/resolve.js";
import { listenerHeaders, stableHits, startCacheWorld } from "../testing/authz-cache-world.js";
import { cpuWindows } from "./lib/cpu-windows.js";
import { h2loadAvailable, runH2loadHttp } from "./lib/h2load.js";
import { median } from "./lib/percentiles.js";
import type { BenchModule, BenchRow } from "./row.js";

const BUDGET = 1.2;
export const limitMs = { quick: 10 * 60_000, full: 20 * 60_000 };

function valgrindAvailable(): boolean {
  return spawnSync("valgrind", ["--version"], { stdio: "ignore" }).status === 0 && spawnSync("callgrind_control", ["--version"], { stdio: "ignore" }).status === 0;
}

/** The instruction totals of the callgrind dumps written since `before` was listed. */
function callgrindTotal(dir: string, before: ReadonlySet<string>): number {
  let total = 0;
  for (const f of readdirSync(dir).filter((n) => n.startsWith("cg.") && !before.has(n))) {
    const m = /^(?:totals|summary):\s+(\d+)/m.exec(readFileSync(join(dir, f), "utf8"));
    if (m) total += Number(m[1]);
  }
  return total;
}

export interface InstructionCounts {
  /** Instructions per request, one figure per window, by listener. */
  readonly perRequest: Record<string, number[]>;
  /** Cache hits counted while each listener's windows ran. */
  readonly hits: Record<string, number>;
  readonly requests: number;
  readonly errors: string[];
}

/**
 * Runs Envoy under callgrind with the given listeners (and `variants`: listener `cached-<name>` on
 * another build), warms each with 500 requests, then counts `windows` × `requests` per listener.
 */
export async function countInstructions(opts: { listeners: string[]; variants?: Record<string, string>; requests: number; windows: number; progress?: (msg: string) => void }): Promise<InstructionCounts> {
  const dir = mkdtempSync(join(tmpdir(), "meshward-callgrind-"));
  const wrapper = join(dir, "envoy-callgrind.sh");
  writeFileSync(wrapper, `#!/bin/sh\nexec valgrind --tool=callgrind --smc-check=all-non-file --callgrind-out-file=${dir}/cg.%p.out ${resolveEnvoy().bin} "$@"\n`);
  chmodSync(wrapper, 0o755);
  try {
    // Under valgrind V8 runs out of address space after a few wasm VMs: only the listeners measured.
    const w = await startCacheWorld({ concurrency: 1, baselines: true, metadata: false, variants: opts.variants ?? {}, listeners: opts.listeners, filter: { pollMs: 200 }, envoyBin: wrapper, readyTimeoutMs: 600_000 });
    try {
      const envoy = w.envoys[0]!;
      const auth = { authorization: `Bearer ${await w.issuer.sign({ sub: "bench", roles: ["reader"] }, 3600)}`, host: "api.example.com" };
      const run = (name: string, n: number) =>
        runH2loadHttp({ target: `127.0.0.1:${envoy.listenerPort(name)}`, path: "/api/orders/1", headers: listenerHeaders(name, auth), requests: n, clients: 1, streams: 8, limitSec: 600 });
      for (const name of opts.listeners) {
        opts.progress?.(`warming ${name}`);
        await run(name, 500); // epoch polled, entries learned, code compiled
      }
      const perRequest: Record<string, number[]> = {};
      const hits: Record<string, number> = {};
      for (const name of opts.listeners) {
        // Hits reach the counter in batches, on the filter's tick (slow under valgrind).
        const h0 = await stableHits(envoy, 2000);
        perRequest[name] = [];
        for (let i = 0; i < opts.windows; i++) {
          opts.progress?.(`${name}: window ${i + 1}/${opts.windows}`);
          const before = new Set(readdirSync(dir));
          spawnSync("callgrind_control", ["-z", String(envoy.pid)], { stdio: "ignore" });
          await run(name, opts.requests);
          spawnSync("callgrind_control", ["-d", String(envoy.pid)], { stdio: "ignore" });
          perRequest[name]!.push(callgrindTotal(dir, before) / opts.requests);
        }
        hits[name] = (await stableHits(envoy, 2000)) - h0;
      }
      return { perRequest, hits, requests: opts.requests * opts.windows, errors: envoy.errorLines() };
    } finally {
      await w.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const bench: BenchModule = async ({ quick, progress }) => {
  if (!valgrindAvailable() || !h2loadAvailable()) {
    return [{ area: "authz-cache", name: "instructions per request: cache hit vs the no-op wasm filter (callgrind)", unit: "instructions", ours: 0, met: false, note: "valgrind or h2load not installed (apt-get install valgrind nghttp2-client)" }];
  }
  const listeners = ["none", "noop", "cached", "cached-md", "skip-only", "composite-only"];
  const c = await countInstructions({ listeners, requests: quick ? 1000 : 2000, windows: quick ? 1 : 3, progress });
  const m = (name: string) => median(c.perRequest[name]!);
  const added = (name: string) => m(name) - m("none");
  const k = (v: number) => `${(v / 1000).toFixed(1)}k`;
  // An entry expires after the policy's maxTtl (30 s here) and is learned again: a few misses per expiry.
  if (c.hits["cached"]! < 0.99 * c.requests) throw new Error(`listener cached: ${c.hits["cached"]} hits in ${c.requests} requests: not the hit path`);
  const windows = (name: string) => c.perRequest[name]!.map(k).join(" · ");
  const rows: BenchRow[] = [
    {
      area: "authz-cache",
      name: "instructions per request added over Envoy alone: cache hit vs the no-op wasm filter (callgrind, 1 worker)",
      unit: "instructions",
      ours: added("cached"),
      baseline: added("noop"),
      baselineName: "no-op wasm filter",
      ratio: added("cached") / added("noop"),
      budget: `≤ ${BUDGET}×`,
      met: added("cached") <= BUDGET * added("noop"),
      note: `per request: router only ${windows("none")}, no-op ${windows("noop")}, hit ${windows("cached")} (medians of ${c.perRequest["none"]!.length} windows × ${c.requests / c.perRequest["none"]!.length} requests; ${c.hits["cached"]} of ${c.requests} were hits, the rest re-learned an expired entry)`,
    },
    {
      area: "authz-cache",
      name: "instructions per request added: cache hit with dynamic-metadata replay (opt-in) vs the no-op wasm filter",
      unit: "instructions",
      ours: added("cached-md"),
      baseline: added("noop"),
      baselineName: "no-op wasm filter",
      ratio: added("cached-md") / added("noop"),
      note: `hit with replay ${windows("cached-md")}: 8 more request headers and header_to_metadata in its wrapper; no budget (opt-in)`,
    },
    {
      area: "authz-cache",
      name: "instructions per request added by ext_authz's skipping wrapper on a hit: composite filter vs ExtensionWithMatcher + SkipFilter",
      unit: "instructions",
      ours: added("composite-only"),
      baseline: added("skip-only"),
      baselineName: "ExtensionWithMatcher + SkipFilter",
      ratio: added("composite-only") / added("skip-only"),
      note: `composite ${windows("composite-only")}, ExtensionWithMatcher ${windows("skip-only")}: the matcher wrapper constructs ext_authz (and its gRPC client) on every stream even when it skips it; the composite filter builds it only when it delegates`,
    },
  ];
  return rows;
};

/**
 * The same listeners on a native Envoy (2 workers): Envoy's own CPU µs per request under h2load
 * (-c4 -m8), `windows` alternating windows of `seconds` each per listener. Noisier than instructions
 * on a shared machine, but it is what the time budget is measured in.
 */
export async function cpuPerRequest(opts: { listeners: string[]; variants?: Record<string, string>; seconds: number; windows: number; progress?: (msg: string) => void }): Promise<Record<string, number[]>> {
  const w = await startCacheWorld({ concurrency: 2, baselines: true, metadata: false, variants: opts.variants ?? {}, listeners: opts.listeners, filter: { pollMs: 200 } });
  try {
    const envoy = w.envoys[0]!;
    const auth = { authorization: `Bearer ${await w.issuer.sign({ sub: "bench", roles: ["reader"] }, 3600)}`, host: "api.example.com" };
    for (const name of opts.listeners) await runH2loadHttp({ target: `127.0.0.1:${envoy.listenerPort(name)}`, path: "/api/orders/1", headers: listenerHeaders(name, auth), requests: 2000, clients: 1, streams: 8 });
    return (await cpuWindows({ envoy, listeners: opts.listeners, path: "/api/orders/1", headers: (name) => listenerHeaders(name, auth), seconds: opts.seconds, windows: opts.windows, ...(opts.progress ? { progress: opts.progress } : {}) })).cpuUs;
  } finally {
    await w.stop();
  }
}

async function cli(): Promise<void> {
  const { values } = parseArgs({
    options: {
      variant: { type: "string", multiple: true, default: [] },
      requests: { type: "string", default: "2000" },
      windows: { type: "string", default: "2" },
      listeners: { type: "string" },
      /** Envoy CPU µs per request on a native Envoy instead of instructions under callgrind. */
      cpu: { type: "boolean", default: false },
      seconds: { type: "string", default: "4" },
    },
  });
  const variants: Record<string, string> = {};
  for (const v of values.variant ?? []) {
    const [name, path] = v.split("=");
    if (!name || !path) throw new Error(`--variant wants name=file.wasm, got '${v}'`);
    variants[name] = path;
  }
  if (values.cpu) {
    const listeners = values.listeners?.split(",") ?? ["none", "noop", "cached", ...Object.keys(variants).map((n) => `cached-${n}`)];
    const cpu = await cpuPerRequest({ listeners, variants, seconds: Number(values.seconds), windows: Number(values.windows), progress: (msg) => console.error(msg) });
    const none = median(cpu["none"] ?? [0]);
    for (const name of listeners) console.log(`${name.padEnd(16)} median ${median(cpu[name]!).toFixed(2)} µs (added ${(median(cpu[name]!) - none).toFixed(2)}): ${cpu[name]!.map((v) => v.toFixed(2)).join(" · ")}`);
    return;
  }
  if (!valgrindAvailable()) throw new Error("valgrind is not installed (apt-get install valgrind)");
  const listeners = values.listeners?.split(",") ?? ["none", "noop", "cached", ...Object.keys(variants).map((n) => `cached-${n}`)];
  const c = await countInstructions({ listeners, variants, requests: Number(values.requests), windows: Number(values.windows), progress: (msg) => console.error(msg) });
  for (const name of listeners) {
    console.log(`${name.padEnd(16)} ${c.perRequest[name]!.map((v) => `${(v / 1000).toFixed(1)}k`).join(" · ")}  (cache hits ${c.hits[name]} of ${c.requests})`);
  }
  if (c.errors.length > 0) console.log(`Envoy errors:\n${c.errors.slice(-20).join("\n")}`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  cli().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
