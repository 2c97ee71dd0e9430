// CPU time a process has used: utime + stime from /proc/<pid>/stat (Linux, 100 clock ticks per second).
import { readFileSync } from "node:fs";

/** utime + stime of process `pid` in ms, or undefined when it cannot be read (gone, not Linux). */
export function processCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return undefined;
  }
}
