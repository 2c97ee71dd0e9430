// Runs a real Envoy for a test or a benchmark: writes the bootstrap, starts Envoy on loopback with
// port-0 listeners and admin, waits for /ready, reads listener ports and stats, and stops it.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify as stringifyYaml } from "yaml";
import { EnvoyUnavailable, ROOT, resolveEnvoy } from "./resolve.js";

export interface StartEnvoyOptions {
  /** A bootstrap as data; `admin` is replaced by a loopback port-0 admin listener. */
  readonly config: Record<string, unknown>;
  /** Worker threads (Envoy --concurrency), default 2. Each worker runs its own Wasm VM. */
  readonly concurrency?: number;
  /** Envoy --log-level, default warn. */
  readonly logLevel?: string;
  /** Working directory; relative wasm filenames resolve against it. Default: the project root. */
  readonly cwd?: string;
  /** Extra command-line arguments. */
  readonly args?: readonly string[];
  /** Milliseconds to wait for /ready, default 30 s. */
  readonly readyTimeoutMs?: number;
  /** Envoy binary; default: the resolved one. */
  readonly bin?: string;
  /** Also hands Envoy's output (log, stdout access log) to this callback as it arrives. */
  readonly onOutput?: (chunk: string) => void;
}

export interface RunningEnvoy {
  readonly bin: string;
  readonly adminPort: number;
  readonly pid: number;
  /** The port a listener (by name) is bound to; listeners are usually given port 0. */
  listenerPort(name: string): number;
  /** Envoy's stats as name → value (counters and gauges; histograms are left out). */
  stats(filter?: string): Promise<Map<string, number>>;
  /** GET on the admin listener. */
  admin(path: string, method?: "GET" | "POST"): Promise<{ status: number; body: string }>;
  /** Everything Envoy wrote to stderr so far. */
  log(): string;
  /** Lines of the log at error or critical level, or from the wasm logger at warning level or above. */
  errorLines(): string[];
  /** Resident set size of the Envoy process in bytes (from /proc), or undefined. */
  rssBytes(): number | undefined;
  stop(): Promise<void>;
}

function httpGet(port: number, path: string, method = "GET", timeoutMs = 5000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const r = request({ host: "127.0.0.1", port, path, method, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
    });
    r.on("timeout", () => r.destroy(new Error(`admin ${path}: timeout`)));
    r.on("error", reject);
    r.end();
  });
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts Envoy and resolves once it is ready and its listeners are bound. */
export async function startEnvoy(options: StartEnvoyOptions): Promise<RunningEnvoy> {
  const bin = options.bin ?? resolveEnvoy().bin;
  const dir = mkdtempSync(join(tmpdir(), "meshward-envoy-"));
  const config = { ...options.config, admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } } };
  const configFile = join(dir, "envoy.yaml");
  const adminFile = join(dir, "admin-address");
  writeFileSync(configFile, stringifyYaml(config, { aliasDuplicateObjects: false }));
  const args = [
    "-c", configFile,
    "--admin-address-path", adminFile,
    // No hot restart: no shared-memory base id, so any number of Envoys can run side by side.
    "--disable-hot-restart",
    "--concurrency", String(options.concurrency ?? 2),
    "--log-level", options.logLevel ?? "warn",
    ...(options.args ?? []),
  ];
  const child: ChildProcess = spawn(bin, args, { cwd: options.cwd ?? ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  const append = (c: Buffer) => {
    if (log.length < 8 * 1024 * 1024) log += c.toString("utf8");
    options.onOutput?.(c.toString("utf8"));
  };
  child.stderr?.on("data", append);
  child.stdout?.on("data", append);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(killer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
  let adminPort = 0;
  try {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`envoy exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${log.slice(-4000)}`);
      if (adminPort === 0) {
        try {
          adminPort = Number(/:(\d+)\s*$/.exec(readFileSync(adminFile, "utf8"))?.[1] ?? 0);
        } catch {
          // not written yet
        }
      }
      if (adminPort !== 0) {
        const ready = await httpGet(adminPort, "/ready", "GET", 1000).then((r) => r.status === 200, () => false);
        if (ready) break;
      }
      if (Date.now() > deadline) throw new Error(`envoy was not ready within ${options.readyTimeoutMs ?? 30_000} ms:\n${log.slice(-4000)}`);
      await delay(50);
    }
  } catch (err) {
    await stop();
    throw err;
  }

  const listeners = new Map<string, number>();
  const body = (await httpGet(adminPort, "/listeners?format=json")).body;
  for (const l of (JSON.parse(body) as { listener_statuses?: { name: string; local_address?: { socket_address?: { port_value?: number } } }[] }).listener_statuses ?? []) {
    listeners.set(l.name, l.local_address?.socket_address?.port_value ?? 0);
  }

  return {
    bin,
    adminPort,
    pid: child.pid ?? 0,
    listenerPort(name) {
      const port = listeners.get(name);
      if (!port) throw new Error(`envoy has no listener named ${name} (has: ${[...listeners.keys()].join(", ")})`);
      return port;
    },
    async stats(filter) {
      const out = new Map<string, number>();
      const r = await httpGet(adminPort, `/stats?format=json${filter ? `&filter=${encodeURIComponent(filter)}` : ""}`);
      for (const s of (JSON.parse(r.body) as { stats: { name: string; value?: number }[] }).stats) {
        if (typeof s.value === "number") out.set(s.name, s.value);
      }
      return out;
    },
    admin: (path, method = "GET") => httpGet(adminPort, path, method),
    log: () => log,
    errorLines: () => log.split("\n").filter((l) => /\]\[(error|critical)\]/.test(l) || /\]\[(warning|error|critical)\]\[wasm\]/.test(l)),
    rssBytes() {
      try {
        const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"));
        return m?.[1] ? Number(m[1]) * 1024 : undefined;
      } catch {
        return undefined;
      }
    },
    stop,
  };
}

/**
 * For mocha `before` hooks: the Envoy binary, or a skip that says why. Under CI=true a missing Envoy
 * is a failure, never a skip. The global setup (tools/envoy/mocha-setup.ts) has already resolved
 * (and if needed installed) Envoy and recorded the outcome in the environment.
 */
export function requireEnvoy(ctx: Mocha.Context): string {
  const missing = process.env["MESHWARD_ENVOY_UNAVAILABLE"];
  if (process.env["ENVOY_BIN"] && !missing) return process.env["ENVOY_BIN"];
  let reason = missing;
  if (!reason) {
    try {
      return resolveEnvoy().bin;
    } catch (err) {
      reason = err instanceof EnvoyUnavailable ? err.message : String(err);
    }
  }
  if (process.env["CI"] === "true") throw new Error(`real Envoy required under CI=true: ${reason}`);
  console.log(`      (skipped: no Envoy: ${reason})`);
  ctx.skip();
}
