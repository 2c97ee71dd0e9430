// Starts a real redis-server on a free loopback port for component tests, and stops it afterwards.
// Without redis-server on PATH the caller's suite is skipped, except under CI=true where it fails.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createConnection } from "node:net";
import { freePort } from "./ports.js";

export interface RedisProcess {
  readonly url: string;
  readonly port: number;
  /** Stops the server (SIGKILL when `hard`), keeping the port so `start()` can bring it back. */
  stop(hard?: boolean): Promise<void>;
  start(): Promise<void>;
}

export function redisServerAvailable(): boolean {
  return spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0;
}

/** For use in `before()`: skips the suite when redis-server is absent (fails under CI=true). */
export function requireRedis(ctx: Mocha.Context): void {
  if (redisServerAvailable()) return;
  if (process.env.CI === "true") throw new Error("redis-server is not installed (CI=true: a missing redis-server is a failure)");
  console.log("      (skipped: redis-server is not installed; apt-get install redis-server)");
  ctx.skip();
}

export async function startRedis(): Promise<RedisProcess> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "meshward-redis-"));
  let child: ChildProcess | undefined;

  const start = async (): Promise<void> => {
    child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], { stdio: "ignore" });
    await waitForPort(port, 5000);
  };
  const stop = async (hard = false): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => { c.once("exit", () => resolve()); c.kill(hard ? "SIGKILL" : "SIGTERM"); });
  };
  await start();
  process.once("exit", () => { child?.kill("SIGKILL"); rmSync(dir, { recursive: true, force: true }); });
  return { url: `redis://127.0.0.1:${port}`, port, stop, start };
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection({ host: "127.0.0.1", port }, () => { s.end(); resolve(true); });
      s.on("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
