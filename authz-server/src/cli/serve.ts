// Runs authz-server for parsed arguments: one serving process (runWorker), or a primary that forks
// N workers sharing the ports (runPrimary). main.ts parses flags first so bad flags fail fast.
import cluster from "node:cluster";
import { Registry, collectDefaultMetrics } from "prom-client";
import { version, type ServerArgs } from "./args.js";
import { systemClock } from "../clock.js";
import { AdminConfigInvalid } from "../admin/admin-config.js";
import { PolicyInvalid } from "../errors.js";
import { groupScrape, serveGroupMetrics } from "../observability/cluster-metrics.js";
import { createLogger } from "../observability/logger.js";
import { authzMetrics } from "../observability/metrics.js";
import { createCheckTracer } from "../observability/tracing.js";
import { wireProcess, type WiredProcess } from "../wiring.js";

const SHUTDOWN_GRACE_MS = 10_000;

export function fail(message: string, code: number): never {
  process.stderr.write(`authz-server: ${message}\n`);
  process.exit(code);
}

export async function runWorker(args: ServerArgs): Promise<void> {
  const logger = createLogger(args.logLevel);
  const registry = new Registry();
  // Process and runtime metrics under their usual names (process_*, nodejs_*), as every Node exporter has them.
  collectDefaultMetrics({ register: registry });
  authzMetrics(registry).buildInfo.set({ version: version() }, 1);
  const scrape = cluster.isWorker ? groupScrape(registry) : undefined;
  const tracer = args.otlpEndpoint ? createCheckTracer({ endpoint: args.otlpEndpoint, serviceVersion: version(), ...(process.env.OTEL_SERVICE_NAME ? { serviceName: process.env.OTEL_SERVICE_NAME } : {}) }) : undefined;
  let wired: WiredProcess;
  try {
    wired = await wireProcess({
      policyFile: args.policy,
      grpcAddr: args.grpcAddr,
      httpAddr: args.httpAddr,
      workers: args.workers,
      ...(args.redis ? { redisUrl: args.redis } : {}),
      ...(args.adminAddr ? { adminAddr: args.adminAddr } : {}),
      ...(args.adminTokenFile ? { adminTokenFile: args.adminTokenFile } : {}),
      logger,
      registry,
      clock: systemClock,
      ...(tracer ? { tracer } : {}),
      ...(scrape ? { scrape } : {}),
    });
  } catch (err) {
    if (err instanceof AdminConfigInvalid) fail(err.message, 2);
    if (err instanceof PolicyInvalid) fail(err.message, 1);
    throw err;
  }
  const { holder } = wired;
  const { grpcPort, httpPort } = await wired.start();
  holder.watch();
  const grpcAt = `${args.grpcAddr.replace(/:[0-9]+$/, "")}:${grpcPort}`;
  const httpAt = `${args.httpAddr.replace(/:[0-9]+$/, "")}:${httpPort}`;
  logger.info({ grpc: grpcAt, http: httpAt, policy: args.policy, version: holder.current?.policy.version, pid: process.pid }, `authz-server listening: gRPC ${grpcAt} (ext_authz, health, rate limit), HTTP ${httpAt} (/healthz /readyz /metrics /v1/quota/lease)`);
  logger.flush();
  setInterval(() => logger.flush(), 1000).unref();
  if (cluster.isWorker) process.send?.({ type: "listening", grpc: grpcAt, http: httpAt });

  process.on("SIGHUP", () => {
    holder.reload();
    logger.flush();
  });
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down: readiness off, draining in-flight checks");
    void wired
      .stop(SHUTDOWN_GRACE_MS)
      .catch((err: unknown) => logger.error({ err: String(err) }, "shutdown failed"))
      .finally(() => logger.flush(() => process.exit(0)));
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

export function runPrimary(args: ServerArgs): void {
  const logger = createLogger(args.logLevel);
  let stopping = false;
  serveGroupMetrics();
  const fork = () => cluster.fork();
  for (let i = 0; i < args.workers; i++) fork();
  let announced = false;
  let listening = 0;
  setInterval(() => logger.flush(), 1000).unref();
  cluster.on("message", (_worker, msg: { type?: string; grpc?: string; http?: string }) => {
    // Announced once the whole group listens (a restarted worker is not announced again).
    if (msg?.type === "listening" && !announced && ++listening === args.workers) {
      announced = true;
      logger.info({ workers: args.workers, grpc: msg.grpc, http: msg.http }, `authz-server: ${args.workers} workers on gRPC ${msg.grpc}, HTTP ${msg.http}`);
      logger.flush();
    }
  });
  cluster.on("exit", (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    if (!announced) fail(`worker ${worker.process.pid} exited (code ${code}) before listening`, 1);
    logger.error({ pid: worker.process.pid, code, signal }, "worker exited; starting a new one");
    setTimeout(fork, 500);
  });
  const forward = (signal: NodeJS.Signals) => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(signal);
  };
  process.on("SIGHUP", () => forward("SIGHUP"));
  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    process.on(sig, () => {
      stopping = true;
      forward("SIGTERM");
      setTimeout(() => process.exit(1), SHUTDOWN_GRACE_MS + 2_000).unref();
    });
  }
}

