// Envoy's own CPU per request under closed-loop load, listener by listener in alternating windows: the
// figure for filter-cost comparisons on a machine whose generator shares the cores (1/rps would charge
// the generator's time too).
import type { RunningEnvoy } from "../../envoy/harness.js";
import { runH2loadHttp } from "./h2load.js";
import { processCpuMs } from "./process-cpu.js";

export interface CpuWindows {
  /** req/s of each window, by listener. */
  readonly rps: Record<string, number[]>;
  /** Envoy CPU µs per request of each window (both workers, user + system), by listener. */
  readonly cpuUs: Record<string, number[]>;
}

/**
 * `windows` rounds of one h2load window (`seconds`, -c4 -m8) per listener, the order reversed every
 * other round; `headers(listener)` gives each listener's request headers.
 */
export async function cpuWindows(opts: {
  envoy: RunningEnvoy;
  listeners: readonly string[];
  path: string;
  headers: (listener: string) => Record<string, string>;
  seconds: number;
  windows: number;
  progress?: (msg: string) => void;
}): Promise<CpuWindows> {
  const rps: Record<string, number[]> = Object.fromEntries(opts.listeners.map((n) => [n, []]));
  const cpuUs: Record<string, number[]> = Object.fromEntries(opts.listeners.map((n) => [n, []]));
  for (let i = 0; i < opts.windows; i++) {
    for (const name of i % 2 === 0 ? opts.listeners : [...opts.listeners].reverse()) {
      opts.progress?.(`${name}: window ${i + 1}/${opts.windows}`);
      const cpu0 = processCpuMs(opts.envoy.pid);
      const r = await runH2loadHttp({ target: `127.0.0.1:${opts.envoy.listenerPort(name)}`, path: opts.path, headers: opts.headers(name), durationSec: opts.seconds, clients: 4, streams: 8, threads: 1 });
      const cpu1 = processCpuMs(opts.envoy.pid);
      rps[name]!.push(r.reqPerSec);
      if (cpu0 !== undefined && cpu1 !== undefined) cpuUs[name]!.push(((cpu1 - cpu0) * 1000) / r.total);
    }
  }
  return { rps, cpuUs };
}
