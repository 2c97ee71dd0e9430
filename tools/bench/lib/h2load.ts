// Closed-loop throughput of a gRPC unary method or a plain HTTP/2 GET with h2load (nghttp2-client): bounded by duration, parsed into numbers.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { grpcFrame } from "./check-status.js";

export interface H2loadOptions {
  /** host:port */
  readonly target: string;
  /** Full method path, e.g. /envoy.service.auth.v3.Authorization/Check. */
  readonly method: string;
  /** The serialized request message (framed here). */
  readonly request: Buffer;
  readonly durationSec: number;
  readonly warmupSec?: number;
  /** Connections (-c), concurrent streams per connection (-m), h2load threads (-t). */
  readonly clients?: number;
  readonly streams?: number;
  readonly threads?: number;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface H2loadResult {
  readonly reqPerSec: number;
  readonly total: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly errored: number;
  readonly timeout: number;
  /** Per-request time (closed loop: includes queueing behind the generator's own window), ms. */
  readonly meanMs: number;
  readonly maxMs: number;
  /** Responses by status class, when h2load printed them. */
  readonly status2xx?: number;
  readonly statusOther?: number;
}

/** Thrown when h2load is not installed. */
export class H2loadMissing extends Error {
  readonly code = "ERR_H2LOAD_MISSING";
  constructor() {
    super("h2load is not installed (apt-get install nghttp2-client)");
  }
}

export function h2loadAvailable(): boolean {
  return spawnSync("h2load", ["--version"], { stdio: "ignore" }).status === 0;
}

const UNIT_MS: Readonly<Record<string, number>> = { us: 0.001, ms: 1, s: 1000 };

function durationMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(text);
  if (!m) throw new Error(`h2load: unreadable duration '${text}'`);
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

/** Parses h2load's summary; throws naming the line it could not find. */
export function parseH2loadOutput(out: string): H2loadResult {
  const finished = /finished in [\d.]+(?:us|ms|s), ([\d.]+) req\/s/.exec(out);
  if (!finished) throw new Error("h2load: no 'finished in …, N req/s' line in its output");
  const reqs = /requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
  if (!reqs) throw new Error("h2load: no 'requests:' line in its output");
  const time = /time for request:\s+(\S+)\s+(\S+)\s+(\S+)/.exec(out);
  if (!time) throw new Error("h2load: no 'time for request:' line in its output");
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
  return {
    ...(codes ? { status2xx: Number(codes[1]), statusOther: Number(codes[2]) + Number(codes[3]) + Number(codes[4]) } : {}),
    reqPerSec: Number(finished[1]),
    total: Number(reqs[1]),
    succeeded: Number(reqs[2]),
    failed: Number(reqs[3]),
    errored: Number(reqs[4]),
    timeout: Number(reqs[5]),
    meanMs: durationMs(time[3]!),
    maxMs: durationMs(time[2]!),
  };
}

export interface H2loadHttpOptions {
  /** host:port */
  readonly target: string;
  readonly path: string;
  /** Request headers (`:authority` may be given to override the target's). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Either a duration (-D) or a request count (-n). */
  readonly durationSec?: number;
  readonly requests?: number;
  readonly warmupSec?: number;
  readonly clients?: number;
  readonly streams?: number;
  readonly threads?: number;
  /** Hard limit on h2load's run time (default: duration + 20 s, or 60 s + 20 s for a request count). */
  readonly limitSec?: number;
}

/** Runs h2load with plain HTTP/2 GETs; every response must be 2xx, or it throws with the counts. */
export async function runH2loadHttp(opts: H2loadHttpOptions): Promise<H2loadResult> {
  if (!h2loadAvailable()) throw new H2loadMissing();
  const args = [
    ...(opts.requests !== undefined ? ["-n", String(opts.requests)] : ["-D", `${Math.round((opts.durationSec ?? 5) * 1000)}ms`]),
    "-c", String(opts.clients ?? 4),
    "-m", String(opts.streams ?? 16),
    "-t", String(opts.threads ?? 1),
  ];
  if (opts.warmupSec && opts.requests === undefined) args.push(`--warm-up-time=${Math.round(opts.warmupSec * 1000)}ms`);
  for (const [k, v] of Object.entries(opts.headers ?? {})) args.push("-H", `${k}: ${v}`);
  args.push(`http://${opts.target}${opts.path}`);
  const out = await spawnH2load(args, (opts.limitSec ?? (opts.durationSec ?? 60) + (opts.warmupSec ?? 0) + 20) * 1000);
  const result = parseH2loadOutput(out);
  if (result.succeeded === 0 || (result.statusOther ?? 0) > 0 || result.errored > 0) {
    throw new Error(`h2load against ${opts.target}${opts.path}: ${result.succeeded} succeeded, ${result.status2xx ?? "?"} 2xx, ${result.statusOther ?? "?"} other statuses, ${result.errored} errored`);
  }
  return result;
}

function spawnH2load(args: readonly string[], limitMs: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const child = spawn("h2load", args, { stdio: ["ignore", "pipe", "pipe"] });
    let text = "";
    child.stdout.on("data", (d: Buffer) => (text += d.toString()));
    child.stderr.on("data", (d: Buffer) => (text += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), limitMs);
    child.once("error", (err) => { clearTimeout(timer); reject(err); });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(text);
      else reject(new Error(`h2load exited with ${code ?? signal}: ${text.trim().split("\n").slice(-3).join(" | ")}`));
    });
  });
}

/**
 * Runs h2load against a gRPC unary method. gRPC errors travel in trailers under HTTP 200, which h2load
 * counts as success: check the method answers correctly (e.g. with one grpc-js call) before trusting the rate.
 */
export async function runH2load(opts: H2loadOptions): Promise<H2loadResult> {
  if (!h2loadAvailable()) throw new H2loadMissing();
  if (!(opts.durationSec > 0 && opts.durationSec <= 600)) throw new RangeError(`durationSec must be in (0, 600], got ${opts.durationSec}`);
  const dir = mkdtempSync(join(tmpdir(), "meshward-h2load-"));
  try {
    const body = join(dir, "body.bin");
    writeFileSync(body, grpcFrame(opts.request));
    const args = [
      "-D", `${Math.round(opts.durationSec * 1000)}ms`,
      "-c", String(opts.clients ?? 8),
      "-m", String(opts.streams ?? 16),
      "-t", String(opts.threads ?? 1),
      "-d", body,
      "-H", "content-type: application/grpc",
      "-H", "te: trailers",
    ];
    if (opts.warmupSec) args.push(`--warm-up-time=${Math.round(opts.warmupSec * 1000)}ms`);
    for (const [k, v] of Object.entries(opts.headers ?? {})) args.push("-H", `${k}: ${v}`);
    args.push(`http://${opts.target}${opts.method}`);
    const limitMs = (opts.durationSec + (opts.warmupSec ?? 0) + 20) * 1000;
    const out = await spawnH2load(args, limitMs);
    const result = parseH2loadOutput(out);
    if (result.succeeded === 0) throw new Error(`h2load: no request succeeded against ${opts.target} (${result.errored} errored, ${result.failed} failed)`);
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
