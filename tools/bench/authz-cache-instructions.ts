// Instructions per request of the decision cache's hit path, counted by valgrind (callgrind) on a real
// Envoy 1.40 with one worker: exact and repeatable where CPU time on a shared machine is not. Listeners
// none / noop / cached / cached-md / plain from the cache world, plus `--variant name=path.wasm` builds
// beside them (A/B in one process). Run: node --import tsx tools/bench/authz-cache-instructions.ts
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { resolveEnvoy } from "../envoy/resolve.js";
import { SKIP_HEADER, SKIP_TOKEN, startCacheWorld } from "../testing/authz-cache-world.js";
import { runH2loadHttp } from "./lib/h2load.js";

const { values } = parseArgs({
  options: {
    variant: { type: "string", multiple: true, default: [] },
    requests: { type: "string", default: "2000" },
    windows: { type: "string", default: "2" },
    listeners: { type: "string" },
  },
});

function callgrindTotal(dir: string, before: ReadonlySet<string>): number {
  const fresh = readdirSync(dir).filter((f) => f.startsWith("cg.") && !before.has(f));
  let total = 0;
  for (const f of fresh) {
    const m = /^(?:totals|summary):\s+(\d+)/m.exec(readFileSync(join(dir, f), "utf8"));
    if (m) total += Number(m[1]);
  }
  return total;
}

async function main(): Promise<void> {
  if (spawnSync("valgrind", ["--version"], { stdio: "ignore" }).status !== 0) throw new Error("valgrind is not installed (apt-get install valgrind)");
  const dir = mkdtempSync(join(tmpdir(), "meshward-callgrind-"));
  const wrapper = join(dir, "envoy-callgrind.sh");
  writeFileSync(wrapper, `#!/bin/sh\nexec valgrind --tool=callgrind --smc-check=all-non-file --callgrind-out-file=${dir}/cg.%p.out ${resolveEnvoy().bin} "$@"\n`);
  chmodSync(wrapper, 0o755);
  const variants: Record<string, string> = {};
  for (const v of values.variant ?? []) {
    const [name, path] = v.split("=");
    if (!name || !path) throw new Error(`--variant wants name=path.wasm, got '${v}'`);
    variants[name] = path;
  }
  // Under valgrind V8 runs out of address space after a few wasm VMs: only the listeners measured.
  const names = values.listeners?.split(",") ?? ["none", "noop", "cached", "cached-md", ...Object.keys(variants).map((n) => `cached-${n}`)];
  const w = await startCacheWorld({ concurrency: 1, baselines: true, metadata: false, variants, listeners: names, filter: { pollMs: 200 }, envoyBin: wrapper, readyTimeoutMs: 600_000 });
  const envoy = w.envoys[0]!;
  const requests = Number(values.requests);
  const windows = Number(values.windows);
  const auth = { authorization: `Bearer ${await w.issuer.sign({ sub: "bench", roles: ["reader"] }, 3600)}`, host: "api.example.com" };
  try {
    // skip-only has no filter in front of the wrapper: the client's marker makes it skip ext_authz.
    const headers = (name: string) => (name === "skip-only" || name === "composite-only" ? { ...auth, [SKIP_HEADER]: SKIP_TOKEN } : auth);
    const run = (name: string, n: number) => runH2loadHttp({ target: `127.0.0.1:${envoy.listenerPort(name)}`, path: "/api/orders/1", headers: headers(name), requests: n, clients: 1, streams: 8, limitSec: 600 });
    for (const name of names) await run(name, 500); // warm: epoch polled, entries learned, code compiled
    const hits = async () => (await envoy.stats("authz_cache")).get("wasmcustom.meshward_authz_cache_hits") ?? 0;
    for (const name of names) {
      const per: string[] = [];
      const h0 = await hits();
      for (let i = 0; i < windows; i++) {
        const before = new Set(readdirSync(dir));
        spawnSync("callgrind_control", ["-z", String(envoy.pid)], { stdio: "ignore" });
        await run(name, requests);
        spawnSync("callgrind_control", ["-d", String(envoy.pid)], { stdio: "ignore" });
        per.push((callgrindTotal(dir, before) / requests / 1000).toFixed(1) + "k");
      }
      console.log(`${name.padEnd(16)} ${per.join(" · ")}  (cache hits ${(await hits()) - h0} of ${windows * requests})`);
    }
    const errors = envoy.errorLines();
    if (errors.length > 0) console.log(`Envoy errors:\n${errors.slice(-20).join("\n")}`);
  } finally {
    await w.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
