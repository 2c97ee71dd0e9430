// Test helpers for the rate-limit filter: loading filters/build/rate-limit.wasm into the Envoy
// stand-in, sending requests, and forcing compare-and-swap races between worker VMs.
import { ManualClock, StandIn, type HttpStream, type Plugin, type StreamResult } from "../../../tools/standin/index.js";

export const WASM = "filters/build/rate-limit.wasm";
export const VM_ID = "rl";

export type Json = Record<string, unknown>;

export interface RateLimitSetup {
  host: StandIn;
  clock: ManualClock;
  plugin: Plugin;
}

export async function loadRateLimit(configuration: Json, opts: { workers?: number; clusters?: Parameters<StandIn["loadPlugin"]>[0]["clusters"]; host?: StandIn; clock?: ManualClock } = {}): Promise<RateLimitSetup> {
  const clock = opts.clock ?? new ManualClock();
  const host = opts.host ?? new StandIn({ clock, logLevel: "info" });
  const plugin = await host.loadPlugin({
    wasm: WASM, rootId: "rate-limit", vmId: VM_ID, workers: opts.workers ?? 1, configuration,
    ...(opts.clusters ? { clusters: opts.clusters } : {}),
  });
  return { host, clock, plugin };
}

/** A local-limit configuration with one limit. */
export function localConfig(limit: Json, extra: Json = {}): Json {
  return { domain: "edge", limits: [{ name: "per-ip", key: [{ source: "remote_address" }], ...limit }], ...extra };
}

export function send(plugin: Plugin, worker: number, req: { source?: string; path?: string; headers?: Record<string, string> } = {}): Promise<StreamResult> {
  return plugin.worker(worker).runStream({ method: "GET", path: req.path ?? "/", source: req.source ?? "10.0.0.1:40000", headers: req.headers ?? {} });
}

export function status(r: StreamResult): number {
  return r.localReply?.status ?? r.responseStatus ?? 0;
}

export function replyHeader(r: StreamResult, name: string): string | undefined {
  return r.localReply?.headers.find(([k]) => k === name)?.[1];
}

/**
 * Forces CAS races: whenever a VM reads a shared-data key under `prefix`, with probability
 * `chance` (seeded) another worker runs a whole request before the read returns, so the reader's
 * later write carries a stale CAS. Returns the streams started that way.
 */
export function injectRaces(setup: RateLimitSetup, prefix: string, chance: number, seed: number, req: () => { worker: number; source: string }): HttpStream[] {
  const store = setup.host.sharedData;
  const original = store.get.bind(store);
  const started: HttpStream[] = [];
  let depth = 0;
  let state = seed >>> 0;
  const rnd = (): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  store.get = (vmId: string, key: string) => {
    const value = original(vmId, key);
    if (depth < 2 && key.startsWith(prefix) && rnd() < chance) {
      depth++;
      try {
        const { worker, source } = req();
        const s = setup.plugin.worker(worker).startStream({ method: "GET", path: "/", source });
        started.push(s);
        s.sendRequestHeaders();
      } finally {
        depth--;
      }
    }
    return value;
  };
  return started;
}

/** Waits for pending http_call completions and callbacks to be delivered. */
export async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
}
