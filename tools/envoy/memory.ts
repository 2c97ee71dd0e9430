// Memory of the filters under a real Envoy: N keep-alive requests (h2load --h1, cycling through
// distinct URIs so rate-limit keys and header-router decisions vary) through one filter; reads the
// filters' own linear-memory gauges, one per VM (Envoy has no per-VM memory stat), and Envoy's RSS before and after.
// CLI: node --import tsx tools/envoy/memory.ts [requests] [concurrency]   (default 200000, 4)
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { httpListener, wasmFilter } from "./bootstrap.js";
import { startEnvoy, type RunningEnvoy } from "./harness.js";
import { resolveEnvoy } from "./resolve.js";

export type MemoryFilter = "header-router" | "rate-limit";

/** Configurations under load: several rules / limits, keys from the path (one key per distinct URI). */
export const MEMORY_CONFIGS: Readonly<Record<MemoryFilter, object>> = {
  "header-router": {
    routeHeader: "x-route",
    rules: [
      { name: "beta", match: { query: [{ name: "tier", exact: "beta" }] }, route: "v2" },
      { name: "reviews", match: { path: { glob: "/api/*/reviews/**" } }, route: "v2" },
      { name: "canary", match: { path: { prefix: "/api/" } }, split: { targets: [{ route: "v2", weight: 10 }, { route: "v1", weight: 90 }] } },
    ],
    default: "v1",
    requestHeadersToAdd: [{ name: "x-routed-by", value: "meshward" }],
  },
  "rate-limit": {
    domain: "memory",
    responseHeaders: true,
    limits: [
      // "/api/x?tier=beta&id=N" all share the path key /api/x: a hot key that gets 429s under load.
      { name: "per-path", key: [{ source: "path" }], capacity: 1000, refillPerSecond: 1000 },
      { name: "per-ip", key: [{ source: "remote_address" }], capacity: 1000000, refillPerSecond: 1000000 },
    ],
  },
};

/** The gauge each filter sets from memory.size() (filters/lib/host.ts MemoryGauge); each VM also sets `<gauge>_vm_<n>`. */
export const MEMORY_GAUGE: Readonly<Record<MemoryFilter, string>> = {
  "header-router": "meshward_header_router_memory_bytes",
  "rate-limit": "meshward_rate_limit_memory_bytes",
};

const VM_GAUGE = /^wasmcustom\.(meshward_[a-z0-9_]+_memory_bytes)_vm_(\d+)$/;

/** Every meshward filter VM's own linear-memory gauge in this Envoy: `<gauge>_vm_<n>` → bytes. */
export async function vmMemoryGauges(envoy: RunningEnvoy): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const [name, value] of await envoy.stats("_memory_bytes_vm_")) {
    const m = VM_GAUGE.exec(name);
    if (m) out.set(`${m[1]}_vm_${m[2]}`, value);
  }
  return out;
}

/** Growth of each VM's linear memory between two readings (a VM first seen in `after` grew from 0), and the largest. */
export function memoryGrowth(before: ReadonlyMap<string, number>, after: ReadonlyMap<string, number>): { perVm: Map<string, number>; max: number } {
  const perVm = new Map<string, number>();
  let max = 0;
  for (const [vm, bytes] of after) {
    const grew = bytes - (before.get(vm) ?? 0);
    perVm.set(vm, grew);
    max = Math.max(max, grew);
  }
  return { perVm, max };
}

export interface MemoryRun {
  readonly filter: MemoryFilter;
  readonly requests: number;
  readonly concurrency: number;
  readonly distinctUris: number;
  /** Linear memory (bytes) reported by the filter after warm-up and after the run (the shared gauge: the VM that reported last). */
  readonly linearBefore: number;
  readonly linearAfter: number;
  /** Each VM's linear memory (its own gauge) after warm-up and after the run; the largest growth of one VM. */
  readonly vmBefore: ReadonlyMap<string, number>;
  readonly vmAfter: ReadonlyMap<string, number>;
  readonly maxGrowthPerVm: number;
  /** Envoy's resident set size (bytes) after warm-up and after the run. */
  readonly rssBefore: number;
  readonly rssAfter: number;
  /** Requests answered (any status), and the 2xx and 4xx (429) among them. */
  readonly done: number;
  readonly ok2xx: number;
  readonly c4xx: number;
  readonly seconds: number;
  /** The filter's own counters after the run (wasmcustom.meshward_*). */
  readonly counters: Readonly<Record<string, number>>;
}

function h2load(port: number, uriFile: string, requests: number, connections: number): Promise<{ done: number; ok2xx: number; c4xx: number }> {
  return new Promise((resolve, reject) => {
    execFile("h2load", ["--h1", "-n", String(requests), "-c", String(connections), "-t", "1", "-i", uriFile, "-H", "host: memory.test"], { maxBuffer: 4 * 1024 * 1024, timeout: 600_000 }, (err, stdout) => {
      if (err) return reject(new Error(`h2load failed: ${err.message}\n${stdout}`));
      if (process.env["MEMORY_DEBUG"]) console.log(stdout);
      const done = /requests: \d+ total, \d+ started, (\d+) done/.exec(stdout);
      const codes = /status codes: (\d+) 2xx, \d+ 3xx, (\d+) 4xx/.exec(stdout);
      if (!done || !codes) return reject(new Error(`h2load output not understood:\n${stdout}`));
      resolve({ done: Number(done[1]), ok2xx: Number(codes[1]), c4xx: Number(codes[2]) });
    });
  });
}

function bootstrap(filter: MemoryFilter): Record<string, unknown> {
  // The route answers itself: the load measures the filter and Envoy, not an upstream.
  const route = { match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: "ok" } } };
  const wasm = wasmFilter({ plugin: filter, config: MEMORY_CONFIGS[filter], name: filter, vmId: filter });
  return { static_resources: { listeners: [httpListener("memory", [wasm], [route])], clusters: [] } };
}

/** Distinct request URIs the load cycles through (path keys and routing decisions vary). */
export function memoryUris(n: number): string[] {
  const kinds = ["/api/books/reviews/", "/api/orders/", "/static/", "/api/x?tier=beta&id="];
  return Array.from({ length: n }, (_, i) => `${kinds[i % kinds.length]}${i}`);
}

export interface MemoryOptions {
  readonly filter: MemoryFilter;
  readonly requests: number;
  readonly concurrency?: number;
  readonly warmup?: number;
  readonly connections?: number;
  readonly distinctUris?: number;
  readonly bin?: string;
}

export async function measureEnvoyMemory(o: MemoryOptions): Promise<MemoryRun> {
  const concurrency = o.concurrency ?? 4;
  const distinctUris = o.distinctUris ?? 20_000;
  const dir = mkdtempSync(join(tmpdir(), "meshward-memory-"));
  const uriFile = join(dir, "uris.txt");
  const envoy = await startEnvoy({ config: bootstrap(o.filter), concurrency, ...(o.bin ? { bin: o.bin } : {}) });
  try {
    const port = envoy.listenerPort("memory");
    writeFileSync(uriFile, memoryUris(distinctUris).map((u) => `http://127.0.0.1:${port}${u}`).join("\n") + "\n");
    const gauge = async () => (await envoy.stats(MEMORY_GAUGE[o.filter])).get(`wasmcustom.${MEMORY_GAUGE[o.filter]}`) ?? 0;
    await h2load(port, uriFile, o.warmup ?? 20_000, o.connections ?? 8);
    const linearBefore = await gauge();
    const vmBefore = await vmMemoryGauges(envoy);
    const rssBefore = envoy.rssBytes() ?? 0;
    const t0 = Date.now();
    const run = await h2load(port, uriFile, o.requests, o.connections ?? 8);
    const seconds = (Date.now() - t0) / 1000;
    const linearAfter = await gauge();
    const vmAfter = await vmMemoryGauges(envoy);
    const rssAfter = envoy.rssBytes() ?? 0;
    const counters: Record<string, number> = {};
    for (const [k, v] of await envoy.stats("wasmcustom.meshward_")) if (k.endsWith("_total")) counters[k.replace("wasmcustom.", "")] = v;
    const errors = envoy.errorLines();
    if (errors.length > 0) throw new Error(`Envoy logged errors under load:\n${errors.slice(0, 5).join("\n")}`);
    return { filter: o.filter, requests: o.requests, concurrency, distinctUris, linearBefore, linearAfter, vmBefore, vmAfter, maxGrowthPerVm: memoryGrowth(vmBefore, vmAfter).max, rssBefore, rssAfter, done: run.done, ok2xx: run.ok2xx, c4xx: run.c4xx, seconds, counters };
  } finally {
    await envoy.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function formatMemoryRun(r: MemoryRun): string {
  const kib = (b: number) => `${(b / 1024).toFixed(0)} KiB`;
  const mib = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MiB`;
  return `${r.filter}: ${r.requests} requests (${r.done} answered: ${r.ok2xx} 2xx, ${r.c4xx} 4xx) over ${r.distinctUris} URIs, --concurrency ${r.concurrency}, ${r.seconds.toFixed(1)} s: ` +
    `linear memory per VM ${[...r.vmAfter].map(([vm, b]) => `${vm.replace(/^.*_vm_/, "vm ")} ${kib(r.vmBefore.get(vm) ?? 0)} → ${kib(b)}`).join(", ")} (largest growth ${kib(r.maxGrowthPerVm)}), Envoy RSS ${mib(r.rssBefore)} → ${mib(r.rssAfter)}`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const requests = Number(process.argv[2] ?? 200_000);
  const concurrency = Number(process.argv[3] ?? 4);
  const bin = resolveEnvoy({ install: true }).bin;
  for (const filter of ["header-router", "rate-limit"] as const) {
    console.log(formatMemoryRun(await measureEnvoyMemory({ filter, requests, concurrency, bin })));
  }
}
