// Soak: mixed edge traffic through envoy/local/edge.yaml in the Envoy stand-in (real rate-limit and
// header-router .wasm, ext_authz over gRPC) to a real authz-server process, sampling memory over time.
// `npm run soak -- --minutes N` prints samples and a summary; `npm run bench` runs a short one as rows.
import { fileURLToPath } from "node:url";
import { loadEnvoyConfigChain, type EnvoyConfigChain } from "../standin/envoy-config-chain.js";
import { StandIn } from "../standin/index.js";
import { createIssuer, e2ePolicy, tempDir } from "../testing/e2e-authz.js";
import { startEcho, type EchoUpstream } from "../testing/echo-upstream.js";
import { startMain, type MainProcess } from "../testing/main-process.js";
import type { BenchModule, BenchRow } from "./row.js";

export interface SoakSample {
  readonly tMs: number;
  readonly requests: number;
  /** This process (stand-in + filters). */
  readonly rssMb: number;
  readonly heapUsedMb: number;
  /** Linear memory of every wasm VM, summed. */
  readonly wasmBytes: number;
  /** The authz-server process, from its /metrics. */
  readonly authzRssMb: number;
  readonly authzHeapMb: number;
}

export interface SoakReport {
  readonly durationMs: number;
  readonly requests: number;
  readonly statuses: Readonly<Record<string, number>>;
  /** ext_authz calls that exceeded the chain's 0.5 s timeout: Envoy's status_on_error (503), fail-closed. */
  readonly authzTimeouts: number;
  /** Exceptions and unexpected statuses (anything but 200/401/403/429 and authz timeouts), first 20 kept. */
  readonly errors: readonly string[];
  readonly errorCount: number;
  /** meshward_authz_decisions_total by result, from the server. */
  readonly decisions: Readonly<Record<string, number>>;
  readonly samples: readonly SoakSample[];
}

const EXPECTED_STATUSES = new Set([200, 401, 403, 429]);
const AUTHZ_MAIN_EXTRA = ["--log-level", "warn"];

export async function runSoak(opts: { durationMs: number; sampleEveryMs?: number; concurrency?: number; onSample?: (s: SoakSample) => void }): Promise<SoakReport> {
  const tmp = tempDir();
  let authz: MainProcess | undefined;
  let chain: EnvoyConfigChain | undefined;
  const upstreams: EchoUpstream[] = [];
  try {
    const issuer = await createIssuer(tmp.dir);
    const { writeFileSync } = await import("node:fs");
    const policyFile = `${tmp.dir}/policy.yaml`;
    writeFileSync(policyFile, e2ePolicy(issuer.jwksFile));
    authz = await startMain({ policy: policyFile, args: AUTHZ_MAIN_EXTRA });
    upstreams.push(await startEcho("app-v1"), await startEcho("app-v2"));
    const standIn = new StandIn({ logLevel: "warn" });
    chain = await loadEnvoyConfigChain({
      config: "edge.yaml",
      standIn,
      workers: 2,
      endpoints: { "meshward-authz": `127.0.0.1:${authz.grpcPort}`, "meshward-quota": `127.0.0.1:${authz.httpPort}`, "app-v1": upstreams[0]!.address, "app-v2": upstreams[1]!.address },
    });
    const readers = await Promise.all(Array.from({ length: 40 }, (_, i) => issuer.sign({ sub: `soak-${i}`, roles: ["reader"], ...(i % 5 === 0 ? { tier: "beta" } : {}) }, 3600)));
    const noRole = await issuer.sign({ sub: "no-role", roles: [] }, 3600);

    const statuses: Record<string, number> = {};
    const errors: string[] = [];
    let errorCount = 0;
    let authzTimeouts = 0;
    let requests = 0;
    // Warm-up (JIT, connections, JWKS) outside the measured window.
    for (let i = 0; i < 20; i++) await chain.run({ method: "GET", authority: "api.example.com", source: "10.254.0.1:1", path: "/api/orders/1", headers: { authorization: `Bearer ${readers[i % readers.length]}` } }, i % 2);
    const started = Date.now();
    const deadline = started + opts.durationMs;
    const fail = (msg: string) => {
      errorCount++;
      if (errors.length < 20) errors.push(msg);
    };

    const traffic = async (loop: number) => {
      for (let i = 0; Date.now() < deadline; i++) {
        const n = requests++;
        const kind = n % 10;
        const ip = `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}:40000`; // a new client IP per request: rate-limit keys churn
        const req =
          kind <= 4 ? { path: `/api/orders/${n % 97}`, headers: { authorization: `Bearer ${readers[n % readers.length]}` } }
          : kind === 5 ? { path: "/api/orders/1" }
          : kind === 6 ? { path: "/healthz" }
          : kind === 7 ? { path: "/api/orders/2", headers: { authorization: `Bearer ${noRole}` } }
          : kind === 8 ? { path: "/api/orders/3", headers: { authorization: `Bearer ${n % 2 ? "e30.e30." : "x".repeat(200)}` } }
          : { path: "/api/orders/4", headers: { authorization: `Bearer ${readers[0]}` }, burst: true };
        const source = "burst" in req ? "10.255.255.1:40000" : ip; // one hot IP: per-ip limit answers 429
        try {
          const r = await chain!.run({ method: "GET", authority: "api.example.com", source, path: req.path, ...(req.headers ? { headers: req.headers } : {}) }, loop % 2);
          const s = r.responseStatus ?? 0;
          statuses[s] = (statuses[s] ?? 0) + 1;
          if (s === 503 && r.localReply?.details === "ext_authz_error") authzTimeouts++;
          else if (!EXPECTED_STATUSES.has(s)) fail(`${req.path}: status ${s} ${r.localReply?.details ?? ""} ${r.responseBodyText?.slice(0, 120) ?? ""}`);
        } catch (err) {
          fail(`${req.path}: ${(err as Error).message}`);
        }
      }
    };

    const samples: SoakSample[] = [];
    const sample = async () => {
      const m = process.memoryUsage();
      let wasmBytes = 0;
      for (const p of chain!.plugins) for (let w = 0; w < 2; w++) wasmBytes += p.plugin.worker(w).vm.memoryBytes;
      const text = (await authz!.http("/metrics")).text;
      // Default process metrics, under their usual names (process_*, nodejs_*).
      const metric = (name: string) => Number(new RegExp(`^${name} ([0-9.e+]+)$`, "m").exec(text)?.[1] ?? NaN);
      const s: SoakSample = {
        tMs: Date.now() - started,
        requests,
        rssMb: m.rss / 2 ** 20,
        heapUsedMb: m.heapUsed / 2 ** 20,
        wasmBytes,
        authzRssMb: metric("process_resident_memory_bytes") / 2 ** 20,
        authzHeapMb: metric("nodejs_heap_size_used_bytes") / 2 ** 20,
      };
      samples.push(s);
      opts.onSample?.(s);
    };
    await sample();
    const every = opts.sampleEveryMs ?? 1000;
    const sampler = (async () => {
      while (Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, Math.min(every, Math.max(0, deadline - Date.now()))));
        await sample();
      }
    })();
    await Promise.all([...Array.from({ length: opts.concurrency ?? 8 }, (_, i) => traffic(i)), sampler]);

    const text = (await authz.http("/metrics")).text;
    const decisions: Record<string, number> = {};
    for (const m of text.matchAll(/^meshward_authz_decisions_total\{result="([a-z]+)"[^}]*\} ([0-9.e+]+)$/gm)) decisions[m[1]!] = (decisions[m[1]!] ?? 0) + Number(m[2]);
    return { durationMs: Date.now() - started, requests, statuses, authzTimeouts, errors, errorCount, decisions, samples };
  } finally {
    chain?.close();
    await Promise.all(upstreams.map((u) => u.close()));
    await authz?.stop();
    tmp.remove();
  }
}

/** Growth between the median of the first and of the last third of the samples (robust to GC spikes). */
export function growth(samples: readonly SoakSample[], pick: (s: SoakSample) => number): number {
  const third = Math.max(1, Math.floor(samples.length / 3));
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return med(samples.slice(-third).map(pick)) - med(samples.slice(0, third).map(pick));
}

export const bench: BenchModule = async ({ quick, progress }) => {
  const minutes = quick ? 0.25 : 1;
  progress(`soak for ${minutes} min`);
  const r = await runSoak({ durationMs: minutes * 60_000 });
  const max = (f: (s: SoakSample) => number) => Math.max(...r.samples.map(f));
  const rows: BenchRow[] = [
    { area: "soak", name: `mixed edge traffic, ${minutes} min: errors`, unit: "count", ours: r.errorCount, budget: "= 0", met: r.errorCount === 0, note: `${r.requests} requests; statuses ${JSON.stringify(r.statuses)}; ext_authz timeouts (503, fail-closed) ${r.authzTimeouts}` },
    { area: "soak", name: "authz-server max RSS", unit: "MiB", ours: round(max((s) => s.authzRssMb)), note: `growth ${round(growth(r.samples, (s) => s.authzRssMb))} MiB first→last third` },
    { area: "soak", name: "stand-in process max RSS", unit: "MiB", ours: round(max((s) => s.rssMb)), note: `heap growth ${round(growth(r.samples, (s) => s.heapUsedMb))} MiB` },
    { area: "soak", name: "wasm linear memory growth (all VMs)", unit: "bytes", ours: growth(r.samples, (s) => s.wasmBytes), budget: "= 0", met: growth(r.samples, (s) => s.wasmBytes) === 0 },
  ];
  return rows;
};

const round = (x: number) => Math.round(x * 10) / 10;

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const i = process.argv.indexOf("--minutes");
  const minutes = i > 0 ? Number(process.argv[i + 1]) : 5;
  if (!(minutes > 0)) {
    process.stderr.write("usage: npm run soak -- --minutes N\n");
    process.exit(2);
  }
  console.log("t_s\trequests\trss_mb\theap_mb\twasm_bytes\tauthz_rss_mb\tauthz_heap_mb");
  const r = await runSoak({
    durationMs: minutes * 60_000,
    sampleEveryMs: Math.max(1000, (minutes * 60_000) / 120),
    onSample: (s) => console.log([(s.tMs / 1000).toFixed(0), s.requests, s.rssMb.toFixed(1), s.heapUsedMb.toFixed(1), s.wasmBytes, s.authzRssMb.toFixed(1), s.authzHeapMb.toFixed(1)].join("\t")),
  });
  console.log(JSON.stringify({ requests: r.requests, durationMs: r.durationMs, statuses: r.statuses, authzTimeouts: r.authzTimeouts, decisions: r.decisions, errorCount: r.errorCount, errors: r.errors, wasmGrowthBytes: growth(r.samples, (s) => s.wasmBytes), authzRssGrowthMb: growth(r.samples, (s) => s.authzRssMb), heapGrowthMb: growth(r.samples, (s) => s.heapUsedMb) }, null, 2));
  process.exit(r.errorCount === 0 ? 0 : 1);
}
