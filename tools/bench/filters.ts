// Filter benchmarks through the Envoy stand-in: ns/request of header-router (5, 20, 50 rules)
// against the no-op filter, linear memory over 1,000,000 requests, and .wasm size.
// `measureFilter` is reusable for other filters (e.g. bench/rate-limit.ts).
import { statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { StandIn, WasmVm, type PluginOptions, type RunStreamOptions, type Worker } from "../standin/index.js";
import type { BenchModule, BenchRow } from "./row.js";

const repoRoot = join(fileURLToPath(new URL(".", import.meta.url)), "..", "..");
export const NOOP_WASM = "filters/build/noop.wasm";
export const HEADER_ROUTER_WASM = "filters/build/header-router.wasm";
/** Budgets from the issue: 20 rules ≤ 2.0 × no-op, memory growth ≤ 64 KiB, artifact ≤ 64 KiB. */
const RATIO_BUDGET = 2.0;
const MEMORY_BUDGET = 64 * 1024;
const SIZE_BUDGET = 64 * 1024;

export interface MeasureFilterOptions {
  /** Artifact path relative to the repo root. */
  readonly wasm: string;
  readonly rootId: string;
  readonly configuration: string | object;
  /** The i-th request (called for warm-up and measured requests alike). */
  readonly request: (i: number) => RunStreamOptions;
  /** Measured requests (sequential, one worker). */
  readonly requests: number;
  /** Requests run first and not measured (default 5,000: V8 tiers the module up). */
  readonly warmup?: number;
  /** Extra plugin options (clusters, vmId, …). */
  readonly plugin?: Partial<PluginOptions>;
  readonly progress?: (msg: string) => void;
}

export interface FilterMeasurement {
  readonly requests: number;
  /** Time inside the VM's callbacks per request, including the host calls they make (ns). */
  readonly vmNsPerRequest: number;
  /** `vmNsPerRequest` minus the time spent in the stand-in's (JavaScript) host functions (ns). */
  readonly wasmNsPerRequest: number;
  /** Whole stream through the stand-in per request, stand-in overhead included (ns). */
  readonly e2eNsPerRequest: number;
  /** Linear memory after warm-up and after the measured requests (bytes; 64 KiB pages). */
  readonly memoryBefore: number;
  readonly memoryAfter: number;
  /** The VM trapped during the run. */
  readonly failed: boolean;
}

/** A loaded plugin on one worker VM whose request windows can be measured repeatedly. */
export class FilterRunner {
  private inside = 0n;
  private next = 0;

  private constructor(readonly worker: Worker, private readonly request: (i: number) => RunStreamOptions) {
    timeCallbacks(worker, (ns) => (this.inside += ns));
  }

  static async load(o: Omit<MeasureFilterOptions, "requests">): Promise<FilterRunner> {
    const host = new StandIn({ logLevel: "info" });
    const plugin = await host.loadPlugin({ wasm: o.wasm, rootId: o.rootId, configuration: o.configuration, ...o.plugin });
    const runner = new FilterRunner(plugin.worker(0), o.request);
    await runner.run(o.warmup ?? 5000);
    return runner;
  }

  /** Runs `requests` streams sequentially and measures them. */
  async run(requests: number, progress?: (msg: string) => void): Promise<FilterMeasurement> {
    const memoryBefore = this.worker.vm.memoryBytes;
    this.inside = 0n;
    hostNs = 0n;
    const step = Math.max(1, Math.floor(requests / 10));
    const started = process.hrtime.bigint();
    for (let i = 0; i < requests; i++) {
      await this.worker.runStream(this.request(this.next++));
      if (progress && (i + 1) % step === 0) progress(`${i + 1}/${requests} requests`);
    }
    const e2e = Number(process.hrtime.bigint() - started);
    return {
      requests,
      vmNsPerRequest: Number(this.inside) / Math.max(1, requests),
      wasmNsPerRequest: Number(this.inside - hostNs) / Math.max(1, requests),
      e2eNsPerRequest: e2e / Math.max(1, requests),
      memoryBefore,
      memoryAfter: this.worker.vm.memoryBytes,
      failed: this.worker.failed,
    };
  }
}

/**
 * Loads the plugin, runs the warm-up, then `requests` streams through one worker VM, measuring
 * the time spent in the VM (every callback the stand-in invokes is timed) and linear memory.
 */
export async function measureFilter(o: MeasureFilterOptions): Promise<FilterMeasurement> {
  const runner = await FilterRunner.load(o);
  return runner.run(o.requests, o.progress);
}

/**
 * Time spent in host functions since the last window started. The stand-in's host functions are
 * JavaScript (header-map serialization alone costs microseconds), unlike Envoy's native ones, so
 * the bench also reports the filter's own wasm time without them. Installed by wrapping the
 * stand-in's `env` import table before any plugin loads.
 */
let hostNs = 0n;
{
  const proto = WasmVm.prototype as unknown as { envImports?: () => Record<string, (...a: unknown[]) => unknown> };
  const envImports = proto.envImports;
  if (typeof envImports === "function") {
    proto.envImports = function (this: unknown) {
      const env = envImports.call(this);
      for (const [name, fn] of Object.entries(env)) {
        env[name] = (...args: unknown[]) => {
          const t = process.hrtime.bigint();
          try {
            return fn(...args);
          } finally {
            hostNs += process.hrtime.bigint() - t;
          }
        };
      }
      return env;
    };
  }
}

/** Wraps this worker VM's callback entry point to add each callback's duration to `add`. */
function timeCallbacks(worker: Worker, add: (ns: bigint) => void): void {
  const vm = worker.vm as unknown as { invoke: (...args: unknown[]) => number };
  const invoke = vm.invoke.bind(vm);
  vm.invoke = (...args: unknown[]): number => {
    const t = process.hrtime.bigint();
    try {
      return invoke(...args);
    } finally {
      add(process.hrtime.bigint() - t);
    }
  };
}

/** A header-router configuration with `n` rules (path prefix + header each), the last a sticky split. */
export function routerConfig(n: number): object {
  const rules: unknown[] = [];
  for (let i = 0; i < n - 1; i++) {
    rules.push({ name: `svc-${i}`, match: { path: { prefix: `/svc-${i}/` }, methods: ["GET", "POST"], headers: [{ name: "x-tier", exact: `tier-${i}` }] }, route: `svc-${i}-v2` });
  }
  rules.push({ name: "canary", match: { path: { glob: "/api/*/items/**" }, cookies: [{ name: "beta", present: true }] },
    split: { stickyOn: { header: "x-user-id" }, targets: [{ route: "api-v2", weight: 10 }, { route: "api-v1", weight: 90 }] } });
  return { routeHeader: "x-route", rules, default: "default-v1", requestHeadersToRemove: ["x-internal"] };
}

/** Requests that cycle over every rule of `routerConfig(n)` plus unmatched ones (which scan all rules). */
export function routerRequest(n: number): (i: number) => RunStreamOptions {
  const upstream = () => ({ status: 200 });
  return (i) => {
    const k = i % (n + 1);
    const headers: Record<string, string> = { "user-agent": "bench/1.0", accept: "*/*", "x-user-id": `user-${i % 5000}`, "x-route": "spoofed" };
    if (k < n - 1) {
      headers["x-tier"] = `tier-${k}`;
      return { method: "GET", path: `/svc-${k}/orders/${i}?page=2`, headers, upstream, requestId: "bench" };
    }
    if (k === n - 1) {
      headers.cookie = "session=abc; beta=1";
      return { method: "GET", path: `/api/v1/items/${i}`, headers, upstream, requestId: "bench" };
    }
    return { method: "GET", path: `/other/${i}`, headers, upstream, requestId: "bench" };
  };
}

function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export const bench: BenchModule = async ({ quick, progress }) => {
  const rows: BenchRow[] = [];
  const window = quick ? 5000 : 20_000;
  const rounds = quick ? 1 : 3;
  const memoryRequests = quick ? 100_000 : 1_000_000;
  const sizes = [5, 20, 50] as const;

  progress("loading the no-op filter and header-router (5, 20, 50 rules), warming up");
  const noop = await FilterRunner.load({ wasm: NOOP_WASM, rootId: "noop", configuration: "{}", request: routerRequest(20), warmup: 10_000 });
  const routers = new Map<number, FilterRunner>();
  for (const n of sizes) {
    routers.set(n, await FilterRunner.load({ wasm: HEADER_ROUTER_WASM, rootId: "header-router", configuration: routerConfig(n), request: routerRequest(n), warmup: 10_000 }));
  }
  // Alternate the filters window by window so machine noise hits them alike; report medians.
  const vm = new Map<string, number[]>();
  const wasmOnly = new Map<string, number[]>();
  const e2e = new Map<string, number[]>();
  let failed = false;
  for (let r = 0; r < rounds; r++) {
    for (const [key, runner] of [["noop", noop], ...sizes.map((n) => [String(n), routers.get(n)!] as const)] as const) {
      progress(`round ${r + 1}/${rounds}: ${key === "noop" ? "no-op" : `header-router ${key} rules`}, ${window} requests`);
      const m = await runner.run(window);
      failed ||= m.failed;
      vm.set(key, [...(vm.get(key) ?? []), m.vmNsPerRequest]);
      wasmOnly.set(key, [...(wasmOnly.get(key) ?? []), m.wasmNsPerRequest]);
      e2e.set(key, [...(e2e.get(key) ?? []), m.e2eNsPerRequest]);
    }
  }
  const noopNs = median(vm.get("noop")!);
  const noopE2e = median(e2e.get("noop")!);
  const how = `median of ${rounds} × ${window} requests`;
  rows.push({
    area: "filters", name: "no-op filter (baseline), in-VM time", unit: "ns/req", ours: round(noopNs, 0),
    note: `${how}; own wasm time without host functions ${round(median(wasmOnly.get("noop")!), 0)} ns; stand-in end to end ` +
      `${round(noopE2e / 1000, 1)} µs/req; the no-op uses the SDK's stock callbacks (debug-log strings built per callback)`,
  });
  const noopWasm = median(wasmOnly.get("noop")!);
  for (const n of sizes) {
    const ns = median(vm.get(String(n))!);
    const ratio = ns / noopNs;
    const own = median(wasmOnly.get(String(n))!);
    const ownRatio = own / noopWasm;
    const e2eRatio = median(e2e.get(String(n))!) / noopE2e;
    const budgeted = n === 20;
    rows.push({
      area: "filters", name: `header-router, ${n} rules, in-VM time incl. stand-in host functions`, unit: "ns/req", ours: round(ns, 0),
      baseline: round(noopNs, 0), baselineName: "no-op filter, same run", ratio: round(ratio),
      ...(budgeted ? { budget: `≤ ${RATIO_BUDGET}×`, met: ratio <= RATIO_BUDGET && !failed } : {}),
      note: `${how}, cycling over all ${n} rules and unmatched paths; includes the stand-in's JavaScript host functions ` +
        `(header-map serialization, clear_route_cache recording), which cost far more than Envoy's native ones; ` +
        `stand-in end to end ${round(median(e2e.get(String(n))!) / 1000, 1)} µs/req vs no-op ${round(noopE2e / 1000, 1)} (ratio ${round(e2eRatio)})` +
        `${failed ? "; a VM FAILED" : ""}`,
    });
    rows.push({
      area: "filters", name: `header-router, ${n} rules, own wasm time (host functions excluded)`, unit: "ns/req", ours: round(own, 0),
      baseline: round(noopWasm, 0), baselineName: "no-op filter, same run", ratio: round(ownRatio),
      ...(budgeted ? { budget: `≤ ${RATIO_BUDGET}×`, met: ownRatio <= RATIO_BUDGET && !failed } : {}),
      note: `same windows; in-VM time minus the time spent inside host functions`,
    });
  }

  progress(`header-router memory over ${memoryRequests} requests (20 rules)`);
  const mem = await routers.get(20)!.run(memoryRequests, (m) => progress(`memory: ${m}`));
  const growth = mem.memoryAfter - mem.memoryBefore;
  rows.push({
    area: "filters", name: `header-router linear memory growth over ${memoryRequests.toLocaleString("en-US")} requests`, unit: "bytes",
    ours: growth, budget: "≤ 65536", met: growth <= MEMORY_BUDGET && !mem.failed,
    note: `${mem.memoryBefore} → ${mem.memoryAfter} bytes, measured after warm-up and the timing windows` +
      (quick ? " (--quick: 100,000 requests, not the budget's 1,000,000)" : "") + (mem.failed ? "; VM FAILED" : ""),
  });

  for (const [name, wasm] of [["header-router", HEADER_ROUTER_WASM], ["no-op", NOOP_WASM]] as const) {
    const size = statSync(join(repoRoot, wasm)).size;
    rows.push({
      area: "filters", name: `${name}.wasm size`, unit: "bytes", ours: size,
      ...(name === "header-router" ? { budget: "≤ 65536", met: size <= SIZE_BUDGET } : {}),
    });
  }
  return rows;
};

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await bench({ quick: process.argv.includes("--quick"), progress: (m) => process.stderr.write(`[filters] ${m}\n`) });
  console.log(JSON.stringify(rows, null, 2));
  process.exit(0);
}
