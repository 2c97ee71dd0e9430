// The open-loop generator process: a ticker thread wakes at each intended send time (no busy loop),
// the main thread sends pre-encoded HTTP/2 frames (gRPC-framed or plain HTTP, bench/lib/h2-raw.ts) and records
// completion − intended. Started by runOpenLoop (open-loop.ts).
import { RawH2Client, type RawRequestShape } from "./h2-raw.js";
import { Worker } from "node:worker_threads";
import type { OpenLoopJob, OpenLoopResult } from "./open-loop.js";
import { summarize } from "./percentiles.js";
import { CHECK_PATH, checkResponseCode, grpcFrame } from "./check-status.js";

// Plain JS so it needs no loader. Posts k = how many requests are due; sleeps with Atomics.wait (futex) between.
const TICKER = `
const { parentPort, workerData } = require("node:worker_threads");
const { t0, intervalMs, total, stop } = workerData;
const flag = new Int32Array(stop);
const now = () => performance.timeOrigin + performance.now();
let k = 0;
while (k < total && Atomics.load(flag, 0) === 0) {
  const wait = t0 + k * intervalMs - now();
  if (wait > 0.02) Atomics.wait(flag, 0, 0, wait);
  if (Atomics.load(flag, 0) !== 0) break;
  k = Math.min(total, Math.max(k + 1, Math.floor((now() - t0) / intervalMs) + 1));
  parentPort.postMessage(k);
}
`;

const GRPC_STATUS_NAMES: readonly string[] = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"];

async function run(job: OpenLoopJob): Promise<OpenLoopResult> {
  const request = Buffer.from(job.requestBase64, "base64");
  const http = job.protocol === "http";
  const method = job.method ?? CHECK_PATH;
  const checkStatus = !http && (job.checkStatus ?? method === CHECK_PATH);
  const drainMs = job.drainMs ?? 2000;
  const intervalMs = 1000 / job.ratePerSec;
  const warmup = Math.round(((job.warmupMs ?? 0) * job.ratePerSec) / 1000);
  const measured = Math.max(1, Math.min(job.maxRequests ?? Infinity, Math.round((job.durationMs * job.ratePerSec) / 1000)));
  const total = warmup + measured;

  // One request shape, encoded once (bench/lib/h2-raw.ts): the generator's per-request cost is a frame copy.
  const shape: RawRequestShape = http
    ? { authority: job.target, method: request.length ? "POST" : "GET", path: job.path ?? "/", headers: job.metadata ?? {}, ...(request.length ? { body: request } : {}) }
    : { authority: job.target, method: "POST", path: method, headers: { "content-type": "application/grpc", te: "trailers", ...(job.metadata ?? {}) }, body: grpcFrame(request) };
  const clients = await Promise.all(Array.from({ length: Math.max(1, job.channels ?? 2) }, () => RawH2Client.connect(job.target, shape, { keepBody: checkStatus, grpc: !http })));
  const expectStatus = job.expectStatus ?? 200;

  const latency = new Float64Array(measured);
  const lag = new Float64Array(measured);
  const finished = new Uint8Array(measured);
  const errorCodes: Record<string, number> = {};
  let completed = 0;
  let ok = 0;
  let rejected = 0;
  let errors = 0;
  let lastDone = 0;
  let outstanding = 0;
  let allSent = false;
  let onDrained: (() => void) | undefined;

  const t0 = performance.now() + 50;
  const intended = (i: number): number => t0 + i * intervalMs;
  const cpu0 = process.cpuUsage();

  const record = (i: number, failure: string | undefined, denied: boolean): void => {
    const done = performance.now();
    outstanding--;
    if (i >= warmup) {
      const j = i - warmup;
      latency[j] = done - intended(i);
      if (failure !== undefined) {
        errors++;
        errorCodes[failure] = (errorCodes[failure] ?? 0) + 1;
      } else if (denied) rejected++;
      else ok++;
      finished[j] = 1;
      completed++;
      lastDone = done;
    }
    if (allSent && outstanding === 0) onDrained?.();
  };

  const send = (i: number): void => {
    const sentAt = performance.now();
    outstanding++;
    if (i >= warmup) lag[i - warmup] = sentAt - intended(i);
    clients[i % clients.length]!.send((r) => {
      if (r.error !== undefined) return record(i, r.error, false);
      if (http) return record(i, r.status === expectStatus ? undefined : `HTTP_${r.status}`, false);
      if (r.status !== 200) return record(i, `HTTP_${r.status}`, false);
      if (r.grpcStatus !== 0) return record(i, r.grpcStatus === undefined ? "NO_GRPC_STATUS" : GRPC_STATUS_NAMES[r.grpcStatus] ?? `GRPC_${r.grpcStatus}`, false);
      record(i, undefined, checkStatus && r.body !== undefined && r.body.length >= 5 && checkResponseCode(r.body.subarray(5)) !== 0);
    });
  };

  const stop = new SharedArrayBuffer(4);
  const ticker = new Worker(TICKER, { eval: true, workerData: { t0: performance.timeOrigin + t0, intervalMs, total, stop } });
  // A generator too starved to keep its schedule stops at the schedule's end + drainMs; what it never sent
  // counts as unanswered (charged from its intended time), so the run stays bounded and honest.
  const sendStop = intended(total) + drainMs;
  let next = 0;
  await new Promise<void>((resolve, reject) => {
    const giveUp = setTimeout(resolve, sendStop - performance.now());
    ticker.on("message", (k: number) => {
      for (const c of clients) c.cork();
      while (next < k && performance.now() <= sendStop) send(next++);
      for (const c of clients) c.uncork();
      if (next >= total || performance.now() > sendStop) {
        clearTimeout(giveUp);
        resolve();
      }
    });
    ticker.once("error", (err) => { clearTimeout(giveUp); reject(err); });
  });
  allSent = true;
  Atomics.store(new Int32Array(stop), 0, 1);
  await ticker.terminate();
  if (outstanding > 0) {
    await new Promise<void>((resolve) => {
      const guard = setTimeout(resolve, drainMs);
      onDrained = () => { clearTimeout(guard); resolve(); };
    });
  }
  const cpu = process.cpuUsage(cpu0);
  const end = performance.now();
  const wallMs = end - t0;
  for (let j = 0; j < measured; j++) {
    if (finished[j]) continue;
    const code = warmup + j < next ? "NO_ANSWER" : "NOT_SENT";
    errors++;
    errorCodes[code] = (errorCodes[code] ?? 0) + 1;
    latency[j] = end - intended(warmup + j);
    if (code === "NOT_SENT") lag[j] = end - intended(warmup + j);
  }
  for (const c of clients) c.close();

  const firstIntended = intended(warmup);
  const windowMs = Math.max(lastDone - firstIntended, measured * intervalMs);
  const result: OpenLoopResult = {
    intendedRate: job.ratePerSec,
    achievedRate: completed / (windowMs / 1000),
    scheduled: measured,
    completed,
    ok,
    rejected,
    errors,
    errorCodes,
    latencyMs: summarize(latency),
    sendLagMs: summarize(lag),
    generatorCpu: (cpu.user + cpu.system) / 1000 / wallMs,
  };
  return job.keepSamples ? { ...result, samplesMs: Array.from(latency) } : result;
}

process.once("disconnect", () => process.exit(1));
process.once("message", (job: OpenLoopJob) => {
  run(job).then(
    (result) => process.send!({ result }, () => process.exit(0)),
    (err: unknown) => process.send!({ error: err instanceof Error ? err.message : String(err) }, () => process.exit(1)),
  );
});
