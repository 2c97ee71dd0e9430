// Starts the real authz-server (authz-server/dist/main.js) as a child process on loopback ports and
// waits for /readyz, so benchmarks measure the shipped build in its own process.
import * as grpc from "@grpc/grpc-js";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { CHECK_PATH, checkResponseCode } from "./check-status.js";
import type { RunningServer } from "./trivial-authz.js";
import { freePort } from "../../testing/ports.js";

export const AUTHZ_MAIN = fileURLToPath(new URL("../../../authz-server/dist/main.js", import.meta.url));

export function authzBuilt(): boolean {
  return existsSync(AUTHZ_MAIN);
}

export { freePort };

export interface AuthzProcess extends RunningServer {
  readonly httpPort: number;
  /** The server's process id (the primary's, with --workers). */
  readonly pid: number;
}

export interface AuthzProcessOptions {
  readonly policyPath: string;
  readonly workers?: number;
  readonly logLevel?: string;
  readonly readyTimeoutMs?: number;
  /** Extra environment for the server (e.g. MESHWARD_QUOTA_TOKEN), over this process's own. */
  readonly env?: Readonly<Record<string, string>>;
}

/** Starts authz-server; rejects with its stderr tail when it exits or is not ready in time. */
export async function startAuthzProcess(opts: AuthzProcessOptions): Promise<AuthzProcess> {
  if (!authzBuilt()) throw new Error(`${AUTHZ_MAIN} does not exist: run npm run build`);
  const [grpcPort, httpPort] = [await freePort(), await freePort()];
  const args = [AUTHZ_MAIN, "--policy", opts.policyPath, "--grpc-addr", `127.0.0.1:${grpcPort}`, "--http-addr", `127.0.0.1:${httpPort}`];
  if (opts.workers && opts.workers > 1) args.push("--workers", String(opts.workers));
  if (opts.logLevel) args.push("--log-level", opts.logLevel);
  const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...opts.env } });
  // Never leave a server behind when the bench process exits early (Ctrl-C, a crash).
  const killOnExit = (): void => void child.kill("SIGKILL");
  process.once("exit", killOnExit);
  child.once("exit", () => process.removeListener("exit", killOnExit));
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
  const exited = new Promise<never>((_, reject) =>
    child.once("exit", (code, signal) => reject(new Error(`authz-server exited (${code ?? signal}) before ready: ${stderr.trim().split("\n").slice(-5).join(" | ")}`))));
  const stop = (): Promise<void> => new Promise<void>((done) => {
    if (child.exitCode !== null || child.signalCode !== null) return done();
    const kill = setTimeout(() => child.kill("SIGKILL"), 5000);
    child.once("exit", () => { clearTimeout(kill); done(); });
    child.kill("SIGTERM");
  });
  try {
    await Promise.race([exited, waitReady(httpPort, opts.readyTimeoutMs ?? 20_000)]);
  } catch (err) {
    await stop();
    throw err;
  }
  exited.catch(() => undefined);
  return { port: grpcPort, httpPort, pid: child.pid ?? 0, target: `127.0.0.1:${grpcPort}`, stop };
}

async function waitReady(httpPort: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last = "no answer";
  while (Date.now() < until) {
    try {
      const res = await fetch(`http://127.0.0.1:${httpPort}/readyz`);
      last = `${res.status} ${(await res.text()).slice(0, 200)}`;
      if (res.ok) return;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`authz-server not ready within ${timeoutMs} ms (/readyz: ${last})`);
}

/** One Check with grpc-js; resolves to the CheckResponse's google.rpc status code (0 = allowed). */
export function checkOnce(target: string, request: Buffer, timeoutMs = 5000): Promise<number> {
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  const id = (b: Buffer): Buffer => b;
  return new Promise<number>((resolve, reject) =>
    client.makeUnaryRequest(CHECK_PATH, id, id, request, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, resp) => {
      client.close();
      if (err) reject(err);
      else resolve(checkResponseCode(resp!));
    }),
  ).finally(() => client.close());
}
