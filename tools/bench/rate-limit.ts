// rate-limit filter benchmarks through the Envoy stand-in: per-request cost of a local limit and of
// a global limit with a healthy leased pool, against the no-op filter in the same run; paused
// requests during the global window (expected none) and linear memory growth.
import { pathToFileURL } from "node:url";
import type { RunStreamOptions } from "../standin/index.js";
import { FilterRunner, NOOP_WASM } from "./filters.js";
import type { BenchModule, BenchRow } from "./row.js";

const RATE_LIMIT_WASM = "filters/build/rate-limit.wasm";
const RATIO_BUDGET = 2.0;
const MEMORY_BUDGET = 64 * 1024;
const CLUSTER = "meshward-quota";

const localConfig = {
  domain: "edge",
  limits: [{ name: "per-ip", key: [{ source: "remote_address" }], capacity: 1_000_000, refillPerSecond: 1000 }],
};

const localByHeaderConfig = {
  domain: "edge",
  limits: [{ name: "per-user", key: [{ header: "x-user-id" }], capacity: 1_000_000, refillPerSecond: 1000 }],
};

const globalConfig = {
  domain: "edge",
  quota: { cluster: CLUSTER, authority: "meshward-authz", timeoutMs: 200 },
  limits: [{ name: "per-user", key: [{ header: "x-user-id" }], capacity: 1_000_000, refillPerSecond: 1000, global: { lease: 50 } }],
};

/** Requests from 5,000 client IPs and 50 users, with the headers a gateway typically sees. */
function request(i: number): RunStreamOptions {
  return {
    method: "GET", path: `/api/orders/${i}?page=2`, source: `10.1.${(i >> 8) % 20}.${i & 255}:${40000 + (i % 1000)}`,
    headers: { "user-agent": "bench/1.0", accept: "*/*", "x-user-id": `user-${i % 50}` },
    upstream: () => ({ status: 200 }), requestId: "bench",
  };
}

/** A lease server that grants what is asked for at once (a healthy quota service). */
const healthyQuota = {
  handler: (req: { body: Uint8Array }) => {
    const want = (JSON.parse(Buffer.from(req.body).toString()) as { want: number }).want;
    return { status: 200, body: JSON.stringify({ granted: want, expiresInMs: 600_000, resetInMs: 0 }) };
  },
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const round = (x: number, digits = 2): number => Math.round(x * 10 ** digits) / 10 ** digits;

function metric(runner: FilterRunner, name: string): number {
  return runner.worker.plugin.standIn.metric(name) ?? 0;
}

export const bench: BenchModule = async ({ quick, progress }) => {
  const window = quick ? 5000 : 20_000;
  const rounds = quick ? 1 : 3;
  const memoryRequests = quick ? 100_000 : 1_000_000;

  progress("loading the no-op filter and rate-limit (local, global), warming up");
  const noop = await FilterRunner.load({ wasm: NOOP_WASM, rootId: "noop", configuration: "{}", request, warmup: 10_000 });
  const local = await FilterRunner.load({ wasm: RATE_LIMIT_WASM, rootId: "rate-limit", configuration: localConfig, request, warmup: 10_000 });
  const localByHeader = await FilterRunner.load({ wasm: RATE_LIMIT_WASM, rootId: "rate-limit", configuration: localByHeaderConfig, request, warmup: 10_000 });
  const global = await FilterRunner.load({
    wasm: RATE_LIMIT_WASM, rootId: "rate-limit", configuration: globalConfig, request, warmup: 10_000,
    plugin: { clusters: { [CLUSTER]: healthyQuota } },
  });

  const runners = [["noop", noop], ["local", local], ["localByHeader", localByHeader], ["global", global]] as const;
  const vm = new Map<string, number[]>();
  const wasmOnly = new Map<string, number[]>();
  let failed = false;
  const waitsBefore = metric(global, "meshward_rate_limit_pool_exhaustion_waits_total");
  const leasesBefore = metric(global, "meshward_rate_limit_lease_requests_total");
  for (let r = 0; r < rounds; r++) {
    for (const [key, runner] of runners) {
      progress(`round ${r + 1}/${rounds}: ${key}, ${window} requests`);
      const m = await runner.run(window);
      failed ||= m.failed;
      vm.set(key, [...(vm.get(key) ?? []), m.vmNsPerRequest]);
      wasmOnly.set(key, [...(wasmOnly.get(key) ?? []), m.wasmNsPerRequest]);
    }
  }
  const waits = metric(global, "meshward_rate_limit_pool_exhaustion_waits_total") - waitsBefore;
  const leases = metric(global, "meshward_rate_limit_lease_requests_total") - leasesBefore;
  const measured = rounds * window;
  const noopNs = median(vm.get("noop")!);
  const how = `median of ${rounds} × ${window} requests, in-VM time incl. the stand-in's JavaScript host functions`;
  const rows: BenchRow[] = [];
  const labels = [
    ["local", "local limit keyed on the client IP (per-ip bucket in shared data, CAS)"],
    ["localByHeader", "local limit keyed on a header"],
    ["global", "global limit, healthy leased pool"],
  ] as const;
  for (const [key, label] of labels) {
    const ns = median(vm.get(key)!);
    const ratio = ns / noopNs;
    const ownRatio = median(wasmOnly.get(key)!) / median(wasmOnly.get("noop")!);
    rows.push({
      area: "filters", name: `rate-limit, ${label}`, unit: "ns/req", ours: round(ns, 0),
      baseline: round(noopNs, 0), baselineName: "no-op filter, same run", ratio: round(ratio),
      ...(key === "local" ? { budget: `≤ ${RATIO_BUDGET}×`, met: ratio <= RATIO_BUDGET && !failed } : {}),
      note: `${how}; own wasm time without host functions ${round(median(wasmOnly.get(key)!), 0)} ns (ratio ${round(ownRatio)})` +
        (key === "local" ? "; the client IP comes from proxy_get_property(source.address), which the stand-in serves in " +
          "JavaScript by building the request's property environment per call (Envoy reads it natively)" : "") +
        (key === "global" ? `; ${leases} lease calls, ${waits} paused requests in ${measured} measured requests` : "") +
        (failed ? "; a VM FAILED" : ""),
    });
  }
  rows.push({
    area: "filters", name: "rate-limit, global limit: requests paused on an empty pool (healthy pool)", unit: "requests",
    ours: waits, budget: "= 0", met: waits === 0 && !failed,
    note: `${measured} measured requests after warm-up; a healthy pool is refilled below half a lease, so no request should wait`,
  });

  progress(`rate-limit memory over ${memoryRequests} requests (local limit)`);
  const mem = await local.run(memoryRequests, (m) => progress(`memory: ${m}`));
  const growth = mem.memoryAfter - mem.memoryBefore;
  rows.push({
    area: "filters", name: `rate-limit linear memory growth over ${memoryRequests.toLocaleString("en-US")} requests`, unit: "bytes",
    ours: growth, budget: "≤ 65536", met: growth <= MEMORY_BUDGET && !mem.failed,
    note: `${mem.memoryBefore} → ${mem.memoryAfter} bytes after warm-up and the timing windows` +
      (quick ? " (--quick: 100,000 requests, not the budget's 1,000,000)" : "") + (mem.failed ? "; VM FAILED" : ""),
  });
  return rows;
};

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await bench({ quick: process.argv.includes("--quick"), progress: (m) => process.stderr.write(`[rate-limit] ${m}\n`) });
  console.log(JSON.stringify(rows, null, 2));
  process.exit(0);
}
