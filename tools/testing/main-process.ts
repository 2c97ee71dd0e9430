// Runs the real entry point (authz-server/src/main.ts through tsx, so it tests the current source, or a
// built entry such as the image bundle) as a child process on free loopback ports, capturing all output.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { freePort } from "./ports.js";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const MAIN = fileURLToPath(new URL("../../authz-server/src/main.ts", import.meta.url));

export interface MainProcess {
  readonly child: ChildProcess;
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly adminPort: number | undefined;
  /** stdout and stderr so far. */
  output(): string;
  http(path: string, init?: RequestInit): Promise<{ status: number; text: string }>;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
  /** SIGTERM, then SIGKILL after `graceMs` if still running. */
  stop(graceMs?: number): Promise<number | string>;
}

export interface StartMainOptions {
  readonly policy: string;
  readonly args?: string[];
  readonly env?: Record<string, string>;
  readonly admin?: boolean;
  readonly startTimeoutMs?: number;
  /** A built entry module to run with plain node instead of src/main.ts through tsx (the image bundle). */
  readonly script?: string;
  /** Working directory (default: the repository root). */
  readonly cwd?: string;
}

export async function startMain(opts: StartMainOptions): Promise<MainProcess> {
  const grpcPort = await freePort();
  const httpPort = await freePort();
  const adminPort = opts.admin ? await freePort() : undefined;
  const args = [...(opts.script ? [opts.script] : ["--import", "tsx", MAIN]), "--policy", opts.policy, "--grpc-addr", `127.0.0.1:${grpcPort}`, "--http-addr", `127.0.0.1:${httpPort}`, ...(adminPort ? ["--admin-addr", `127.0.0.1:${adminPort}`] : []), ...(opts.args ?? [])];
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
  for (const k of ["MESHWARD_POLICY", "MESHWARD_REDIS", "MESHWARD_ADMIN_ADDR", "MESHWARD_ADMIN_TOKEN"]) if (!opts.env?.[k]) delete env[k];
  const child = spawn(process.execPath, args, { cwd: opts.cwd ?? repo, env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (c: Buffer) => (out += c.toString("utf8")));
  child.stderr!.on("data", (c: Buffer) => (out += c.toString("utf8")));
  const exited = new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")));
  const deadline = Date.now() + (opts.startTimeoutMs ?? 20_000);
  let up = false;
  let exitedEarly = false;
  void exited.then(() => (exitedEarly = true));
  while (!up && !exitedEarly && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    // Listening is logged at info; with a higher --log-level only /healthz tells.
    up = out.includes("authz-server listening") || (await fetch(`http://127.0.0.1:${httpPort}/healthz`).then((r) => r.ok, () => false));
  }
  if (!up) {
    child.kill("SIGKILL");
    throw new Error(`authz-server did not start:\n${out}`);
  }
  return {
    child,
    grpcPort,
    httpPort,
    adminPort,
    output: () => out,
    async http(path, init) {
      const res = await fetch(`http://127.0.0.1:${httpPort}${path}`, init);
      return { status: res.status, text: await res.text() };
    },
    exited,
    async stop(graceMs = 15_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
