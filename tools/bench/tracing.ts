// What tracing costs per Check: the span step alone in-process (record() vs the tracing-off trace-id read),
// and gRPC Check throughput under h2load with tracing off and on (exporting to a loopback OTLP receiver),
// interleaved in the same run. `node --import tsx tools/bench/tracing.ts [--quick]`.
import { cpus, loadavg } from "node:os";
import { pathToFileURL } from "node:url";
import { pino } from "pino";
import { Registry } from "prom-client";
import { createIdGenerator, type Clock } from "../../authz-server/src/clock.js";
import { envoyPackageDefinition } from "../../authz-server/src/grpc/protos.js";
import { createLogger } from "../../authz-server/src/observability/logger.js";
import { createCheckTracer, incomingTraceId, type CheckTracer } from "../../authz-server/src/observability/tracing.js";
import { runPipeline } from "../../authz-server/src/pipeline.js";
import { compilePolicyText } from "../../authz-server/src/policy/load-policy.js";
import { buildRuntime, PolicyHolder } from "../../authz-server/src/policy-holder.js";
import { createAuthzServer } from "../../authz-server/src/server.js";
import { spawn } from "node:child_process";
import { CHECK_PATH } from "./lib/check-status.js";
import { h2loadAvailable, runH2load } from "./lib/h2load.js";
import { median, summarize } from "./lib/percentiles.js";
import type { BenchModule, BenchRow } from "./row.js";

const POLICY = `apiVersion: meshward.io/v1
kind: AuthzPolicy
spec:
  rules:
    - { name: public, match: { paths: ["/public/**"] }, allow: anonymous }
`;
const clock: Clock = { now: () => Date.now() };
const round = (v: number, d = 1) => Math.round(v * 10 ** d) / 10 ** d;

const REQUEST = {
  attributes: {
    source: { address: { socketAddress: { address: "10.1.2.3", portValue: 40000 } } },
    request: { http: { id: "1", method: "GET", path: "/public/a", host: "api.example.com", headers: { ":method": "GET", ":path": "/public/a", ":authority": "api.example.com", traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" } } },
  },
};

/** A collector stand-in in its own process (as a real collector would be): drains OTLP requests, answers 200. */
async function startSink(): Promise<{ url: string; stop(): void }> {
  const code = `const s=require("node:http").createServer((q,r)=>{q.resume();q.on("end",()=>r.writeHead(200,{"content-type":"application/json"}).end("{}"))});s.listen(0,"127.0.0.1",()=>console.log(s.address().port));`;
  const child = spawn(process.execPath, ["-e", code], { stdio: ["ignore", "pipe", "inherit"] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once("data", (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once("exit", () => reject(new Error("OTLP sink exited")));
  });
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill("SIGKILL") };
}

export const bench: BenchModule = async ({ quick, progress }) => {
  const receiver = await startSink();
  const runtime = buildRuntime(compilePolicyText(POLICY, "bench-tracing.yaml"), { clock, registry: new Registry(), logger: createLogger("silent"), createKeySource: () => { throw new Error("no JWT"); } });
  const tracer = createCheckTracer({ endpoint: receiver.url, serviceVersion: "bench" });
  const rows: BenchRow[] = [];
  try {
    // The span step alone, on a real decision.
    const { attrs, decision } = await runPipeline(REQUEST, runtime, { clock, newId: createIdGenerator() });
    const count = quick ? 20_000 : 100_000;
    const time = (f: () => unknown): number[] => {
      const samples: number[] = [];
      for (let i = 0; i < count; i++) {
        const t0 = process.hrtime.bigint();
        f();
        samples.push(Number(process.hrtime.bigint() - t0) / 1000);
      }
      return samples;
    };
    progress("span step in-process");
    const md = { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" };
    const off = time(() => incomingTraceId(md.traceparent, attrs));
    const on = time(() => tracer.record({ startMs: performance.timeOrigin + performance.now(), metadata: md, attrs, decision, policyVersion: "v" }));
    const offS = summarize(off);
    const onS = summarize(on);
    rows.push({
      area: "authz",
      name: "tracing step per Check, in-process (span + attributes + batch queue vs trace-id read)",
      unit: "µs/check (median)",
      ours: round(onS.p50, 2),
      baseline: round(offS.p50, 2),
      baselineName: "tracing off (trace id from traceparent)",
      note: `p99 on ${round(onS.p99, 2)} µs, off ${round(offS.p99, 2)} µs over ${count} checks`,
    });
    rows.push(...(await throughput(quick, tracer, progress)));
  } finally {
    await tracer.shutdown();
    receiver.stop();
    runtime.credentials.close();
  }
  return rows;
};

async function throughput(quick: boolean, tracer: CheckTracer, progress: (m: string) => void): Promise<BenchRow[]> {
  if (!h2loadAvailable()) return [{ area: "authz", name: "gRPC Check throughput, tracing on vs off", unit: "req/s", ours: Number.NaN, note: "skipped: h2load is not installed" }];
  const start = async (withTracer: boolean) => {
    const runtime = buildRuntime(compilePolicyText(POLICY, "bench-tracing.yaml"), { clock, registry: new Registry(), logger: createLogger("silent"), createKeySource: () => { throw new Error("no JWT"); } });
    const registry = new Registry();
    const logger = createLogger("info", pino.destination({ dest: "/dev/null", sync: false, minLength: 4096 }));
    const holder = PolicyHolder.of(runtime, { file: "bench-tracing.yaml", clock, registry, logger, createKeySource: () => { throw new Error("no JWT"); } });
    const server = createAuthzServer({ holder, logger, registry, clock, grpcAddress: "127.0.0.1:0", httpAddress: "127.0.0.1:0", ...(withTracer ? { tracer } : {}) });
    const { grpcPort } = await server.start();
    return { target: `127.0.0.1:${grpcPort}`, stop: async () => { await server.stop(1000); runtime.credentials.close(); } };
  };
  const [off, on] = await Promise.all([start(false), start(true)]);
  const body: Buffer = (envoyPackageDefinition()["envoy.service.auth.v3.Authorization"] as any).Check.requestSerialize(REQUEST);
  const reps = quick ? 1 : 3;
  const durationSec = quick ? 3 : 8;
  const offRates: number[] = [];
  const onRates: number[] = [];
  try {
    for (let r = 0; r < reps; r++) {
      progress(`h2load rep ${r + 1}/${reps}: tracing off`);
      offRates.push((await runH2load({ target: off.target, method: CHECK_PATH, request: body, durationSec, warmupSec: 1 })).reqPerSec);
      progress(`h2load rep ${r + 1}/${reps}: tracing on`);
      onRates.push((await runH2load({ target: on.target, method: CHECK_PATH, request: body, durationSec, warmupSec: 1 })).reqPerSec);
    }
  } finally {
    await Promise.all([off.stop(), on.stop()]);
  }
  const o = median(onRates);
  const b = median(offRates);
  return [
    {
      area: "authz",
      name: "gRPC Check throughput with tracing on (OTLP/HTTP to a loopback sink process), one process",
      unit: "req/s",
      ours: Math.round(o),
      baseline: Math.round(b),
      baselineName: "same server, tracing off",
      ratio: round(o / b, 2),
      note: `h2load, ${durationSec} s × ${reps}, interleaved; anonymous-allow policy, decision logs on (to /dev/null); load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores`,
    },
  ];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await bench({ quick: process.argv.includes("--quick"), progress: (m) => process.stderr.write(`[tracing] ${m}\n`) });
  console.log(JSON.stringify(rows, null, 2));
  process.exit(0);
}
