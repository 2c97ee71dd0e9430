// Runs authz-server for parsed arguments: one serving process (runWorker), or a primary that forks
// N workers sharing the ports (runPrimary). main.ts parses flags first so bad flags fail fast.
import { CacheEpoch } from "../response/cache-epoch.js";
import cluster from "node:cluster";
import { Registry, collectDefaultMetrics } from "prom-client";
import type { ServerArgs } from "./args.js";
import { systemClock } from "../clock.js";
import { AdminConfigInvalid } from "../admin/admin-config.js";
import { startCredentialServices } from "../credentials/credential-services.js";
import { jwksKeySourceFactory } from "../credentials/jwks.js";
import { PolicyInvalid } from "../errors.js";
import { createLogger } from "../observability/logger.js";
import { authzMetrics } from "../observability/metrics.js";
import { PolicyHolder } from "../policy-holder.js";
import { createQuotaService } from "../quota/index.js";
import { createAuthzServer } from "../server.js";

const SHUTDOWN_GRACE_MS = 10_000;

export function fail(message: string, code: number): never {
  process.stderr.write(`authz-server: ${message}\n`);
  process.exit(code);
}

export async function runWorker(args: ServerArgs): Promise<void> {
  const logger = createLogger(args.logLevel);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "meshward_authz_" });
  const metrics = authzMetrics(registry);
  const services = await startCredentialServices({ logger, workers: args.workers, ...(args.redis ? { redisUrl: args.redis } : {}), ...(args.adminAddr ? { adminAddr: args.adminAddr } : {}), ...(args.adminTokenFile ? { adminTokenFile: args.adminTokenFile } : {}) }).catch((err: unknown) => {
    if (err instanceof AdminConfigInvalid) fail(err.message, 2);
    throw err;
  });
  const holder = new PolicyHolder({
    file: args.policy,
    clock: systemClock,
    registry,
    logger,
    createKeySource: jwksKeySourceFactory,
    credentialPlugins: services.plugins,
    onTokenCache: (hit) => metrics.tokenCache.inc({ result: hit ? "hit" : "miss" }),
  });
  let runtime;
  try {
    runtime = holder.load();
  } catch (err) {
    if (err instanceof PolicyInvalid) fail(err.message, 1);
    throw err;
  }
  const quota = createQuotaService({ limits: runtime.policy.rateLimits, logger, registry, ...(args.redis ? { redisUrl: args.redis } : {}) });
  const cacheEpoch = new CacheEpoch();
  services.revocations.onChange?.((entries) => cacheEpoch.revocationsChanged(entries));
  const server = createAuthzServer({ holder, logger, registry, clock: systemClock, quota, cacheEpoch, grpcAddress: args.grpcAddr, httpAddress: args.httpAddr });
  const { grpcPort, httpPort } = await server.start();
  holder.watch();
  const grpcAt = `${args.grpcAddr.replace(/:[0-9]+$/, "")}:${grpcPort}`;
  const httpAt = `${args.httpAddr.replace(/:[0-9]+$/, "")}:${httpPort}`;
  logger.info({ grpc: grpcAt, http: httpAt, policy: args.policy, version: runtime.policy.version, pid: process.pid }, `authz-server listening: gRPC ${grpcAt} (ext_authz, health, rate limit), HTTP ${httpAt} (/healthz /readyz /metrics /v1/quota/lease)`);
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
    server
      .stop(SHUTDOWN_GRACE_MS)
      .then(() => Promise.all([quota.close(), services.close()]))
      .finally(() => {
        holder.close();
        logger.flush(() => process.exit(0));
      });
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

export function runPrimary(args: ServerArgs): void {
  const logger = createLogger(args.logLevel);
  let stopping = false;
  const fork = () => cluster.fork();
  for (let i = 0; i < args.workers; i++) fork();
  let announced = false;
  setInterval(() => logger.flush(), 1000).unref();
  cluster.on("message", (_worker, msg: { type?: string; grpc?: string; http?: string }) => {
    if (msg?.type === "listening" && !announced) {
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

