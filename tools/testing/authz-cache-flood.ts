// Drives the real authz-cache.wasm through the Envoy stand-in with many distinct learned keys: an upstream
// plays authz-server and signs a directive per request. Shared by the bounded test and the 1M-key bench row.
import { createHmac } from "node:crypto";
import { ManualClock, StandIn, type RunStreamOptions, type Upstream } from "../standin/index.js";

export const FLOOD_SECRET = "stand-in-cache-secret-0123456789";
export const FLOOD_SKIP_TOKEN = "skip-token-0123456789";
const EPOCH = "boot.1.0";
/** The filter's per-entry limit (its default); an entry's key is `mw-authz-cache/<slot>`. */
const MAX_ENTRY_BYTES = 4096;

export interface FloodResult {
  /** Distinct keys learned (each one a miss, a signed directive and a store). */
  readonly keys: number;
  readonly seconds: number;
  readonly slots: number;
  /** Shared-data entries and their bytes (keys + values) after the flood. */
  readonly sharedEntries: number;
  readonly sharedBytes: number;
  /** What the design allows whatever the number of keys: slots × (maxEntryBytes + key) + epoch and shapes. */
  readonly sharedBoundBytes: number;
  readonly memoryBefore: number;
  readonly memoryAfter: number;
  readonly stores: number;
  readonly evictions: number;
  /** Mean µs per hit stream in the stand-in, before and after the flood (bench only: never asserted in a test). */
  readonly hitUsBefore: number;
  readonly hitUsAfter: number;
  /** The last key learned, served again: whether it was a hit (no nonce, the skip marker, the learned identity). */
  readonly lastKeyHit: boolean;
}

/** Learns `keys` distinct keys (after a 5,000-key warm-up) into `slots` slots of one worker's VM; bounded by `keys` and `maxMs`. */
export async function floodDistinctKeys(o: { keys: number; slots: number; maxMs: number; hitSamples?: number; progress?: (n: number) => void }): Promise<FloodResult> {
  const clock = new ManualClock(Date.now());
  const host = new StandIn({ clock, logLevel: "info" });
  const plugin = await host.loadPlugin({
    wasm: "filters/build/authz-cache.wasm",
    rootId: "authz-cache",
    vmId: "cache",
    configuration: { secret: FLOOD_SECRET, skipToken: FLOOD_SKIP_TOKEN, epochCluster: "authz-http", slots: o.slots, maxEntryBytes: MAX_ENTRY_BYTES, pollMs: 100, maxStalenessMs: 1000 },
    clusters: { "authz-http": { handler: async () => ({ status: 200, body: EPOCH }) } },
  });
  const worker = plugin.worker(0);
  const poll = async () => {
    clock.advance(100);
    await host.settle();
  };
  await poll();

  const directive = (nonce: string) => {
    const json = JSON.stringify({ v: 1, n: nonce, e: EPOCH, x: clock.nowMs() + 60_000, t: 60_000, k: ["h:authorization"], l: [200, 65536], d: "allow", s: 200, h: [["x-user-id", "alice"]], r: [], rh: [] });
    return `${createHmac("sha256", FLOOD_SECRET).update(json).digest("hex")}.${json}`;
  };
  const upstream: Upstream = (req) => {
    const nonce = req.headers.get("x-meshward-cache-nonce");
    const headers: Record<string, string> = nonce ? { "x-meshward-cache": directive(nonce) } : {};
    return { status: 200, headers, body: "" };
  };
  const request = (path: string): RunStreamOptions => ({ method: "GET", path, authority: "api.example.com", headers: { authorization: "Bearer t" }, upstream });

  const hot = request("/api/orders/hot");
  const samples = o.hitSamples ?? 2000;
  const hitUs = async () => {
    await worker.runStream(hot); // learns (or hits) the hot key
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < samples; i++) await worker.runStream(hot);
    return Number(process.hrtime.bigint() - t0) / samples / 1000;
  };
  const WARM = 5000;
  for (let i = 0; i < WARM; i++) await worker.runStream(request(`/api/orders/warm-${i}`));
  const hitUsBefore = await hitUs();
  const memoryBefore = worker.vm.memoryBytes;
  const started = Date.now();
  let n = 0;
  while (n < o.keys && Date.now() - started < o.maxMs) {
    await worker.runStream(request(`/api/orders/${n++}`));
    if (n % 5000 === 0) {
      await poll(); // keeps the epoch confirmed: time moves 100 ms per 5,000 requests
      o.progress?.(n);
    }
  }
  const seconds = (Date.now() - started) / 1000;
  const memoryAfter = worker.vm.memoryBytes;
  const hitUsAfter = await hitUs();
  const last = await worker.runStream(request(`/api/orders/${n - 1}`));
  const h = last.upstreamRequest?.headers;
  const lastKeyHit = h?.get("x-meshward-cache-nonce") === undefined && h?.get("x-meshward-authz-skip") === FLOOD_SKIP_TOKEN && h?.get("x-user-id") === "alice";

  const names = host.sharedData.keys("cache");
  const sharedBytes = names.reduce((sum, k) => sum + Buffer.byteLength(k) + (host.sharedData.get("cache", k)?.value.byteLength ?? 0), 0);
  const slotKeyBytes = "mw-authz-cache/".length + String(o.slots - 1).length;
  return {
    keys: n,
    seconds,
    slots: o.slots,
    sharedEntries: names.length,
    sharedBytes,
    // The epoch and shape lists are two more keys, each well under one entry's limit.
    sharedBoundBytes: (o.slots + 2) * (MAX_ENTRY_BYTES + slotKeyBytes),
    memoryBefore,
    memoryAfter,
    stores: host.metric("meshward_authz_cache_stores") ?? 0,
    evictions: host.metric("meshward_authz_cache_evictions") ?? 0,
    hitUsBefore,
    hitUsAfter,
    lastKeyHit,
  };
}

/** One line for logs and bench notes. */
export function describeFlood(r: FloodResult): string {
  return `${r.keys.toLocaleString("en")} distinct keys in ${r.seconds.toFixed(1)} s: ${r.sharedEntries} shared-data entries, ${(r.sharedBytes / 1024).toFixed(0)} KiB (bound ${(r.sharedBoundBytes / 2 ** 20).toFixed(1)} MiB for ${r.slots} slots), linear memory ${(r.memoryBefore / 2 ** 20).toFixed(2)} → ${(r.memoryAfter / 2 ** 20).toFixed(2)} MiB, ${r.stores} stores, ${r.evictions} evictions; hit ${r.hitUsBefore.toFixed(1)} → ${r.hitUsAfter.toFixed(1)} µs per stream (stand-in)`;
}
