// Memory in Envoy: 50,000 keep-alive requests through each filter on 4 workers keep every VM's
// linear memory flat (its own gauge) and Envoy's RSS bounded; the stand-in reports the same gauges. The
// 200,000-request figures come from `npm run envoy:memory` (tools/envoy/memory.ts).
import { strict as assert } from "node:assert";
import { requireEnvoy } from "../../tools/envoy/harness.js";
import { MEMORY_CONFIGS, MEMORY_GAUGE, formatMemoryRun, measureEnvoyMemory, memoryUris, type MemoryFilter, type MemoryRun } from "../../tools/envoy/memory.js";
import { StandIn } from "../../tools/standin/index.js";

const REQUESTS = 50_000;
const MiB = 1024 * 1024;

describe("memory: the filters under a real Envoy (h2load, 4 workers)", function () {
  this.timeout(120_000);
  let bin: string;
  const runs = new Map<MemoryFilter, MemoryRun>();

  before(function () {
    bin = requireEnvoy(this);
  });

  for (const filter of ["header-router", "rate-limit"] as const) {
    it(`${filter}: ${REQUESTS} requests keep linear memory flat and Envoy's RSS bounded`, async function () {
      const r = await measureEnvoyMemory({ filter, requests: REQUESTS, concurrency: 4, bin });
      runs.set(filter, r);
      console.log(`      ${formatMemoryRun(r)}`);
      assert.equal(r.done, REQUESTS);
      if (filter === "header-router") assert.equal(r.ok2xx, REQUESTS);
      // rate-limit: the hot path key /api/x is over its 1000/s; every other key passes.
      else assert.ok(r.c4xx > 0 && r.ok2xx > REQUESTS / 2, `${r.ok2xx} 2xx, ${r.c4xx} 4xx`);
      assert.ok(r.linearBefore >= 65536, `gauge ${MEMORY_GAUGE[filter]} read ${r.linearBefore}`);
      assert.ok(r.linearAfter <= r.linearBefore + 65536, `linear memory grew ${r.linearBefore} → ${r.linearAfter}`);
      // One gauge per worker VM (the main thread's VM may configure too and then has one of its own).
      const vms = [...r.vmAfter.keys()];
      assert.ok(vms.length >= 4 && vms.every((vm) => vm.startsWith(`${MEMORY_GAUGE[filter]}_vm_`)), `per-VM gauges: ${vms.join(", ")}`);
      for (const [vm, bytes] of r.vmAfter) assert.ok(bytes >= 65536 && bytes <= (r.vmBefore.get(vm) ?? 0) + 65536, `${vm}: ${r.vmBefore.get(vm)} → ${bytes}`);
      assert.ok(r.maxGrowthPerVm <= 65536, `largest growth of one VM ${r.maxGrowthPerVm}`);
      assert.ok(r.rssAfter - r.rssBefore < 32 * MiB, `Envoy RSS grew ${r.rssBefore} → ${r.rssAfter}`);
    });

    it(`${filter}: the stand-in sets the same memory gauges from the same module, one per VM`, async function () {
      const host = new StandIn({ logLevel: "info" });
      const plugin = await host.loadPlugin({ wasm: `filters/build/${filter}.wasm`, rootId: filter, vmId: filter, configuration: MEMORY_CONFIGS[filter], workers: 2 });
      const uris = memoryUris(2048);
      for (const [i, path] of uris.entries()) {
        await plugin.worker(0).runStream({ path, authority: "memory.test", source: `127.0.0.1:${40000 + (i % 1000)}`, upstream: () => ({ status: 200 }) });
      }
      const gauge = host.metric(MEMORY_GAUGE[filter]);
      assert.equal(gauge, plugin.worker(0).vm.memoryBytes);
      // Each VM claimed its own number from shared data in the order they configured: the canary VM
      // (configured first and dropped, as on Envoy's main thread), then worker 0 and worker 1.
      assert.ok(host.metric(`${MEMORY_GAUGE[filter]}_vm_1`)! >= 65536);
      assert.equal(host.metric(`${MEMORY_GAUGE[filter]}_vm_2`), plugin.worker(0).vm.memoryBytes);
      assert.equal(host.metric(`${MEMORY_GAUGE[filter]}_vm_3`), plugin.worker(1).vm.memoryBytes);
      assert.equal(host.metric(`${MEMORY_GAUGE[filter]}_vm_4`), undefined);
      const envoy = runs.get(filter);
      if (envoy) assert.equal(gauge, envoy.linearAfter, "stand-in and Envoy report the same linear memory");
    });
  }
});
