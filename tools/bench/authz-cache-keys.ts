// Decision cache under 1,000,000 distinct keys (issue 14, hostile scale): the real authz-cache.wasm in the
// Envoy stand-in learns one entry per key into the default 4,096 slots. Rows: shared-data bytes against the
// fixed slot bound, linear-memory growth, and the hit path after the flood against before it (same run).
import { describeFlood, floodDistinctKeys } from "../testing/authz-cache-flood.js";
import type { BenchModule, BenchRow } from "./row.js";

const SLOTS = 4096;
const HIT_BUDGET = 1.5;
const MEMORY_GROWTH_BUDGET = 1024 * 1024;

export const limitMs = { quick: 180_000, full: 1_800_000 };

export const bench: BenchModule = async ({ quick, progress }) => {
  const keys = quick ? 100_000 : 1_000_000;
  const r = await floodDistinctKeys({ keys, slots: SLOTS, maxMs: quick ? 120_000 : 1_500_000, progress: (n) => { if (n % 100_000 === 0) progress(`${n} distinct keys`); } });
  const note = describeFlood(r);
  const done = r.keys >= keys;
  const scale = `${r.keys.toLocaleString("en")} distinct keys${done ? "" : ` (time bound hit before ${keys.toLocaleString("en")})`}`;
  const rows: BenchRow[] = [
    {
      area: "authz-cache",
      name: `shared data after ${scale}, ${SLOTS} slots (real authz-cache.wasm in the stand-in)`,
      unit: "bytes",
      ours: r.sharedBytes,
      baseline: r.sharedBoundBytes,
      baselineName: "fixed bound: slots × (maxEntryBytes + key)",
      ratio: r.sharedBytes / r.sharedBoundBytes,
      budget: "≤ 1.0× the bound, every slot reused",
      met: done && r.sharedBytes <= r.sharedBoundBytes && r.sharedEntries <= SLOTS + 2 && r.lastKeyHit,
      note,
    },
    {
      area: "authz-cache",
      name: `linear-memory growth over ${scale} (stand-in)`,
      unit: "bytes",
      ours: r.memoryAfter - r.memoryBefore,
      budget: `≤ ${MEMORY_GROWTH_BUDGET / 2 ** 20} MiB`,
      met: done && r.memoryAfter - r.memoryBefore <= MEMORY_GROWTH_BUDGET,
      note: `linear memory ${r.memoryBefore} → ${r.memoryAfter} bytes`,
    },
    {
      area: "authz-cache",
      name: `hit path after ${scale} vs before (stand-in, mean per stream)`,
      unit: "µs",
      ours: r.hitUsAfter,
      baseline: r.hitUsBefore,
      baselineName: "the same hit before the flood",
      ratio: r.hitUsAfter / r.hitUsBefore,
      budget: `≤ ${HIT_BUDGET}×`,
      met: r.hitUsAfter <= HIT_BUDGET * r.hitUsBefore,
      note: "2,000 hits of one key each time; stand-in (Node V8) time, not Envoy's: the real-Envoy hit cost is the authz-cache throughput rows",
    },
  ];
  return rows;
};
