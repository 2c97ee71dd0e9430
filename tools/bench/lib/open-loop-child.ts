// The open-loop generator process: a ticker thread wakes at each intended send time (no busy loop),
// the main thread sends and records completion − intended. Started by runOpenLoop (open-loop.ts).
import * as grpc from "@grpc/grpc-js";
import { Worker } from "node:worker_threads";
import type { OpenLoopJob, OpenLoopResult } from "./open-loop.js";
import { summarize } from "./percentiles.js";
import { CHECK_PATH, checkResponseCode } from "./check-status.js";

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

const identity = (b: Buffer): Buffer => b;

function waitReady(client: grpc.Client, ms: number): Promise<void> {
  return new Promise((resolve, reject) => client.waitForReady(Date.now() + ms, (err) => (err ? reject(err) : resolve())));
}

async function run(job: OpenLoopJob): Promise<OpenLoopResult> {
  const request = Buffer.from(job.requestBase64, "base64");
  const method = job.method ?? CHECK_PATH;
  const checkStatus = job.checkStatus ?? method === CHECK_PATH;
  const drainMs = job.drainMs ?? 2000;
  const intervalMs = 1000 / job.ratePerSec;
  const warmup = Math.round(((job.warmupMs ?? 0) * job.ratePerSec) / 1000);
  const measured = Math.max(1, Math.min(job.maxRequests ?? Infinity, Math.round((job.durationMs * job.ratePerSec) / 1000)));
  const total = warmup + measured;

  const clients = Array.from({ length: Math.max(1, job.channels ?? 2) }, () =>
    new grpc.Client(job.target, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 }));
  await Promise.all(clients.map((c) => waitReady(c, 10_000)));
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(job.metadata ?? {})) metadata.set(k, v);

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

  const send = (i: number): void => {
    const sentAt = performance.now();
    outstanding++;
    if (i >= warmup) lag[i - warmup] = sentAt - intended(i);
    clients[i % clients.length]!.makeUnaryRequest(method, identity, identity, request, metadata.clone(), (err, resp) => {
      const done = performance.now();
      outstanding--;
      if (i >= warmup) {
        const j = i - warmup;
        if (err) {
          errors++;
          const name = grpc.status[err.code] ?? String(err.code);
          errorCodes[name] = (errorCodes[name] ?? 0) + 1;
          latency[j] = done - intended(i);
        } else {
          latency[j] = done - intended(i);
          if (checkStatus && resp && checkResponseCode(resp) !== 0) rejected++;
          else ok++;
        }
        finished[j] = 1;
        completed++;
        lastDone = done;
      }
      if (allSent && outstanding === 0) onDrained?.();
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
      while (next < k && performance.now() <= sendStop) send(next++);
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
