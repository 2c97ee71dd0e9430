// Quota service throughput: leases/s through POST /v1/quota/lease on Redis (h2load --h1, closed loop,
// keep-alive) against redis-benchmark running EVALSHA of the same Lua script on the same redis-server,
// plus ShouldRateLimit/s against a trivial grpc-js handler. Alone: `node --import tsx bench/quota.ts`.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { Redis } from "ioredis";
import { pino } from "pino";
import { Registry } from "prom-client";
import { rateLimitService } from "../../authz-server/src/grpc/protos.js";
import { bucketKey } from "../../authz-server/src/quota/bucket-key.js";
import { NO_REFILL_IDLE_MS } from "../../authz-server/src/quota/bucket-store.js";
import type { QuotaService } from "../../authz-server/src/quota/contract.js";
import { createQuotaService } from "../../authz-server/src/quota/index.js";
import { TAKE_TOKENS_LUA } from "../../authz-server/src/quota/take-tokens-script.js";
import { startRedis } from "../testing/redis.js";
import { h2loadAvailable, parseH2loadOutput, runH2load, type H2loadResult } from "./lib/h2load.js";
import { median } from "./lib/percentiles.js";
import type { BenchModule, BenchRow } from "./row.js";

const LIMITS = [{ domain: "edge", name: "per-user", capacity: 1_000_000_000, refillPerSecond: 1000 }];
const LEASE = { domain: "edge", limit: "per-user", key: "alice", want: 1 };
const CLIENTS = 16;
const RLS_METHOD = "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit";

function run(cmd: string, args: string[], limitMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let text = "";
    child.stdout.on("data", (d: Buffer) => (text += d.toString()));
    child.stderr.on("data", (d: Buffer) => (text += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), limitMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(text);
      else reject(new Error(`${cmd} exited with ${code ?? signal}: ${text.trim().split("\n").slice(-3).join(" | ")}`));
    });
  });
}

/** Closed-loop HTTP/1.1 POSTs with keep-alive from h2load (its own process), bounded by duration. */
async function h1Load(url: string, body: string, durationSec: number): Promise<H2loadResult & { status2xx: number }> {
  const dir = mkdtempSync(join(tmpdir(), "meshward-quota-bench-"));
  try {
    const file = join(dir, "body.json");
    writeFileSync(file, body);
    const args = ["--h1", "-D", `${durationSec}s`, "--warm-up-time=1s", "-c", String(CLIENTS), "-t", "1", "-d", file, "-H", "content-type: application/json", url];
    const out = await run("h2load", args, (durationSec + 30) * 1000);
    const status = /status codes: (\d+) 2xx/.exec(out);
    return { ...parseH2loadOutput(out), status2xx: status ? Number(status[1]) : 0 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** redis-benchmark EVALSHA of the take script with the arguments a lease sends (Redis TIME, partial). */
async function evalshaBaseline(port: number, sha: string, requests: number): Promise<number> {
  const key = bucketKey(LEASE.domain, LEASE.limit, LEASE.key);
  const args = ["-p", String(port), "-n", String(requests), "-c", String(CLIENTS), "--csv", "EVALSHA", sha, "1", key];
  args.push(String(LIMITS[0]!.capacity), String(LIMITS[0]!.refillPerSecond), "1", "partial", "", String(NO_REFILL_IDLE_MS));
  const out = await run("redis-benchmark", args, 120_000);
  const m = /^"EVALSHA[^"]*","([\d.]+)"/m.exec(out);
  if (!m) throw new Error(`redis-benchmark: no EVALSHA rate in its output: ${out.slice(0, 300)}`);
  return Number(m[1]);
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));
}

function mountHttp(quota: QuotaService): Server {
  return createServer((req, res) => {
    void quota.handleHttp(req, res).then((handled) => {
      if (!handled) res.writeHead(404).end();
    });
  });
}

async function serveGrpc(impl: grpc.UntypedServiceImplementation): Promise<{ target: string; stop(): Promise<void> }> {
  const server = new grpc.Server();
  server.addService(rateLimitService(), impl);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { target: `127.0.0.1:${port}`, stop: () => new Promise((resolve) => server.tryShutdown(() => resolve())) };
}

const round = (v: number): number => Math.round(v * 100) / 100;

export const bench: BenchModule = async ({ quick, progress }) => {
  if (!h2loadAvailable()) throw new Error("h2load is not installed (apt-get install nghttp2-client)");
  const seconds = quick ? 3 : 5;
  // Ours and the baseline alternate and each row reports medians, so a busy shared machine weighs on both alike.
  const rounds = quick ? 1 : 3;
  const rows: BenchRow[] = [];
  const redis = await startRedis();
  const admin = new Redis(redis.url);
  const quota = createQuotaService({ limits: LIMITS, redisUrl: redis.url, logger: pino({ level: "silent" }), registry: new Registry() });
  const http = mountHttp(quota);
  const grpcOurs = await serveGrpc(quota.rateLimitService);
  const grpcTrivial = await serveGrpc({ ShouldRateLimit: (_c: unknown, cb: grpc.sendUnaryData<object>) => cb(null, { overallCode: "OK", statuses: [{ code: "OK" }] }) });
  try {
    const port = await listen(http);
    for (let i = 0; i < 100 && !(await quota.ready()).ok; i++) await new Promise((r) => setTimeout(r, 20));
    const url = `http://127.0.0.1:${port}/v1/quota/lease`;
    const probe = await fetch(url, { method: "POST", body: JSON.stringify(LEASE) });
    const probeBody = (await probe.json()) as { granted?: number };
    if (probe.status !== 200 || probeBody.granted !== 1) throw new Error(`lease probe answered ${probe.status} ${JSON.stringify(probeBody)}`);
    const sha = (await admin.script("LOAD", TAKE_TOKENS_LUA)) as string;

    const leaseRates: number[] = [];
    const leaseMeans: number[] = [];
    const evalshaRates: number[] = [];
    for (let r = 1; r <= rounds; r++) {
      progress(`round ${r}/${rounds}: lease over HTTP/1.1 with Redis, h2load --h1 -c ${CLIENTS} for ${seconds}s`);
      const lease = await h1Load(url, JSON.stringify(LEASE), seconds);
      if (lease.status2xx !== lease.succeeded || lease.succeeded === 0) throw new Error(`lease load: ${lease.succeeded} succeeded, ${lease.status2xx} 2xx`);
      leaseRates.push(lease.reqPerSec);
      leaseMeans.push(lease.meanMs);
      progress(`round ${r}/${rounds}: baseline redis-benchmark EVALSHA -c ${CLIENTS}`);
      evalshaRates.push(await evalshaBaseline(redis.port, sha, 8000 * seconds));
    }
    const [lease, evalsha] = [median(leaseRates), median(evalshaRates)];
    rows.push({
      area: "quota",
      name: "lease POST /v1/quota/lease, Redis store (h2load --h1, 16 keep-alive connections)",
      unit: "req/s",
      ours: round(lease),
      baseline: round(evalsha),
      baselineName: "redis-benchmark EVALSHA of the same script, same redis-server, 16 connections",
      ratio: round(lease / evalsha),
      note: `ratio = ours / baseline; medians of ${rounds} alternating rounds (ours ${leaseRates.map(Math.round).join("/")}, baseline ${evalshaRates.map(Math.round).join("/")}); one hot key, every lease granted; mean ${round(median(leaseMeans))} ms per lease in the closed loop`,
    });

    const request = rateLimitService().ShouldRateLimit!.requestSerialize({ domain: "edge", descriptors: [{ entries: [{ key: "generic_key", value: "per-user" }, { key: "user", value: "alice" }] }] });
    const oursRates: number[] = [];
    const trivialRates: number[] = [];
    for (let r = 1; r <= rounds; r++) {
      progress(`round ${r}/${rounds}: ShouldRateLimit with Redis, then the trivial handler, h2load for ${seconds}s each`);
      oursRates.push((await runH2load({ target: grpcOurs.target, method: RLS_METHOD, request, durationSec: seconds, warmupSec: 1, clients: 4, streams: 16 })).reqPerSec);
      trivialRates.push((await runH2load({ target: grpcTrivial.target, method: RLS_METHOD, request, durationSec: seconds, warmupSec: 1, clients: 4, streams: 16 })).reqPerSec);
    }
    const [ours, trivial] = [median(oursRates), median(trivialRates)];
    rows.push({
      area: "quota",
      name: "ShouldRateLimit, 1 descriptor, Redis store (h2load, 4 connections × 16 streams)",
      unit: "req/s",
      ours: round(ours),
      baseline: round(trivial),
      baselineName: "trivial grpc-js ShouldRateLimit handler (constant OK), same process",
      ratio: round(ours / trivial),
      note: `ratio = ours / baseline; medians of ${rounds} alternating rounds (ours ${oursRates.map(Math.round).join("/")}, baseline ${trivialRates.map(Math.round).join("/")})`,
    });
  } finally {
    await new Promise<void>((resolve) => {
      http.closeAllConnections();
      http.close(() => resolve());
    });
    await grpcOurs.stop();
    await grpcTrivial.stop();
    await quota.close();
    admin.disconnect();
    await redis.stop();
  }
  return rows;
};

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await bench({ quick: process.argv.includes("--quick"), progress: (m) => process.stderr.write(`[quota] ${m}\n`) });
  console.log(JSON.stringify(rows, null, 2));
  process.exit(0);
}
