// How many CPUs this process may use: the cores it can run on, capped by a cgroup CPU quota (a
// container's CPU limit), rounded up. `--workers auto` forks that many serving processes.
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";

/** The quota in CPUs from cgroup v2 `cpu.max` ("max 100000" or "150000 100000") or v1 quota/period; undefined when unlimited. */
export function quotaCpus(cpuMax: string | undefined, v1Quota?: string, v1Period?: string): number | undefined {
  const v2 = cpuMax?.trim().split(/\s+/);
  if (v2 && v2.length === 2 && v2[0] !== "max") {
    const q = Number(v2[0]);
    const p = Number(v2[1]);
    if (q > 0 && p > 0) return q / p;
  }
  const q = Number(v1Quota?.trim());
  const p = Number(v1Period?.trim());
  return q > 0 && p > 0 ? q / p : undefined;
}

/** Workers for `--workers auto`: min(cores available, ceil(CPU quota)), at least 1. */
export function autoWorkers(cores: number, quota: number | undefined): number {
  const limit = quota === undefined ? cores : Math.min(cores, Math.ceil(quota - 1e-9));
  return Math.max(1, Math.floor(limit));
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** This machine's answer for `--workers auto`. */
export function cpuBudget(): number {
  const quota = quotaCpus(read("/sys/fs/cgroup/cpu.max"), read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), read("/sys/fs/cgroup/cpu/cpu.cfs_period_us"));
  return autoWorkers(availableParallelism(), quota);
}
