// Open-loop latency for a gRPC unary method or a plain HTTP/2 request: a generator in its own process sends on a fixed schedule
// and measures each latency from the request's INTENDED send time, so a stalled server is not hidden
// by a generator that waits for it (coordinated omission).
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { LatencySummary } from "./percentiles.js";
import { CHECK_PATH } from "./check-status.js";

export interface OpenLoopOptions {
  /** host:port of the server. */
  readonly target: string;
  /** Full method path; default ext_authz Check. */
  readonly method?: string;
  /** The serialized request message, sent unchanged every time. */
  readonly request: Buffer;
  /** Extra request headers (gRPC metadata, or HTTP headers in `http` mode). */
  readonly metadata?: Readonly<Record<string, string>>;
  /**
   * `grpc` (default): a unary gRPC call to `method` with `request` as the message. `http`: a plain HTTP/2
   * request to `path` (GET when `request` is empty, else POST with it as the body) that must answer `expectStatus`.
   */
  readonly protocol?: "grpc" | "http";
  readonly path?: string;
  readonly expectStatus?: number;
  readonly ratePerSec: number;
  /** Measured window: requests whose intended send time falls in it are measured. */
  readonly durationMs: number;
  /** Sent at the same rate before the window, not measured (JIT, caches, connections). */
  readonly warmupMs?: number;
  /** Upper bound on measured requests (default: rate × duration, never more than MAX_MEASURED). */
  readonly maxRequests?: number;
  /** Client connections (HTTP/2, prior knowledge); requests go round-robin. Default 2. */
  readonly channels?: number;
  /**
   * How long to wait for answers after the last send. Calls unanswered by then are errors (`NO_ANSWER`)
   * whose latency is their time so far. Default 2000 ms. (No per-call deadline: its timers would load the generator.)
   */
  readonly drainMs?: number;
  /**
   * Read the google.rpc status of each CheckResponse and count codes other than 0 as `rejected`.
   * Default: true when `method` is Check.
   */
  readonly checkStatus?: boolean;
  /** Return every measured latency (ms, in schedule order) as well. */
  readonly keepSamples?: boolean;
}

export interface OpenLoopResult {
  readonly intendedRate: number;
  /** Measured completions per second over the window from the first intended send to the last completion. */
  readonly achievedRate: number;
  /** Measured requests scheduled / completed (OK, rejected or error). */
  readonly scheduled: number;
  readonly completed: number;
  readonly ok: number;
  /** Completed with a CheckResponse whose status code is not 0 (a deny). */
  readonly rejected: number;
  /** gRPC errors by status name, plus NO_ANSWER (sent, unanswered at the end) and NOT_SENT (the generator fell too far behind). */
  readonly errors: number;
  readonly errorCodes: Readonly<Record<string, number>>;
  /** Latency from intended send time to completion, ms. */
  readonly latencyMs: LatencySummary;
  /** How late the generator actually sent (actual − intended), ms: its own share of the latency. */
  readonly sendLagMs: LatencySummary;
  /** CPU the generator process used during the run, as a fraction of one core. */
  readonly generatorCpu: number;
  readonly samplesMs?: number[];
}

/** The serializable form sent to the generator process. */
export interface OpenLoopJob extends Omit<OpenLoopOptions, "request"> {
  readonly requestBase64: string;
}

/** The most requests one run measures (bounds the generator's memory: two Float64Arrays of this length). */
export const MAX_MEASURED = 2_000_000;

const childPath = fileURLToPath(new URL("./open-loop-child.ts", import.meta.url));

/** Runs one open-loop measurement in a child process; rejects on a bad option, a child crash or overrun. */
export function runOpenLoop(opts: OpenLoopOptions): Promise<OpenLoopResult> {
  if (!(opts.ratePerSec > 0 && opts.ratePerSec <= 100_000)) return Promise.reject(new RangeError(`ratePerSec must be in (0, 100000], got ${opts.ratePerSec}`));
  if (!(opts.durationMs > 0 && opts.durationMs <= 600_000)) return Promise.reject(new RangeError(`durationMs must be in (0, 600000], got ${opts.durationMs}`));
  if (opts.channels !== undefined && !(Number.isInteger(opts.channels) && opts.channels >= 1 && opts.channels <= 64)) return Promise.reject(new RangeError(`channels must be an integer in [1, 64], got ${opts.channels}`));
  const { request, ...rest } = opts;
  const job: OpenLoopJob = { ...rest, maxRequests: Math.min(opts.maxRequests ?? MAX_MEASURED, MAX_MEASURED), method: opts.method ?? CHECK_PATH, requestBase64: request.toString("base64") };
  // The child stops sending at the schedule's end + drainMs and then drains for up to drainMs.
  const limitMs = (opts.warmupMs ?? 0) + opts.durationMs + 2 * (opts.drainMs ?? 2000) + 30_000;
  // OPEN_LOOP_PROF=dir writes a V8 CPU profile of the generator there (to see what the generator itself costs).
  const child = fork(childPath, [], { execArgv: ["--import", "tsx", ...(process.env["OPEN_LOOP_PROF"] ? ["--cpu-prof", `--cpu-prof-dir=${process.env["OPEN_LOOP_PROF"]}`] : [])], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const timer = setTimeout(() => finish(() => { child.kill("SIGKILL"); reject(new Error(`open-loop generator overran ${limitMs} ms`)); }), limitMs);
    child.on("message", (msg: { result?: OpenLoopResult; error?: string }) => {
      if (msg.error !== undefined) finish(() => reject(new Error(`open-loop generator: ${msg.error}`)));
      else if (msg.result) finish(() => resolve(msg.result!));
    });
    child.once("error", (err) => finish(() => reject(err)));
    child.once("exit", (code, signal) => finish(() => reject(new Error(`open-loop generator exited (${code ?? signal}) without a result`))));
    child.send(job);
  });
}
