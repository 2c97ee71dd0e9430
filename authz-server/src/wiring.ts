// Wires one authz-server process in one place: stores (Redis or memory) → credential plugins (one list,
// one order) → policy holder (policy loaded once) → quota → gRPC/HTTP server and the admin listener.
// The stages stay pure; this module only builds and connects them. cli/serve.ts adds signals and exits.
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { AdminConfigInvalid, resolveAdminConfig } from "./admin/admin-config.js";
import { createAdminServer, type AdminServer } from "./admin/admin-server.js";
import type { Clock } from "./clock.js";
import { apiKeysPlugin } from "./credentials/api-keys.js";
import { certBoundPlugin } from "./credentials/cert-bound.js";
import type { CredentialPlugin } from "./credentials/index.js";
import { RedisIntrospectionCache, type IntrospectionCache } from "./credentials/introspection-cache.js";
import { introspectionPlugin } from "./credentials/introspection.js";
import { jwksKeySourceFactory } from "./credentials/jwks.js";
import { jwtPlugin } from "./credentials/jwt.js";
import { MemoryRevocationStore, RedisRevocationStore, revocationPlugin, type RevocationStore } from "./credentials/revocation.js";
import { authzMetrics } from "./observability/metrics.js";
import type { CheckTracer } from "./observability/tracing.js";
import type { CompiledPolicy } from "./policy/compiled.js";
import { loadPolicyFile } from "./policy/load-policy.js";
import { PolicyHolder } from "./policy-holder.js";
import { createQuotaService, type QuotaService } from "./quota/index.js";
import { CacheEpoch } from "./response/cache-epoch.js";
import { createAuthzServer, type AuthzServer } from "./server.js";
import { createRedisClient, waitReady, type RedisClient } from "./stores/redis-client.js";

/** The process's shared state: the Redis connections when `--redis` is set, else memory. */
export interface Stores {
  /** Commands connection shared by quota buckets, the introspection cache and the revocation list. */
  readonly redis?: RedisClient;
  readonly revocations: RevocationStore;
  readonly introspectionCache?: IntrospectionCache;
  close(): Promise<void>;
}

/** Connects Redis (single node or Cluster) when a URL is given and loads the revocation list. */
export async function openStores(o: { readonly redisUrl?: string; readonly logger: Logger }): Promise<Stores> {
  if (!o.redisUrl) {
    const revocations = new MemoryRevocationStore();
    return { revocations, close: () => revocations.close() };
  }
  const redis = createRedisClient(o.redisUrl, { role: "commands" });
  redis.on("error", (err: Error) => o.logger.debug({ err: err.message }, "redis error"));
  // The subscriber queues its SUBSCRIBE until connected, so replicas pick up events once Redis is reachable.
  const subscriber = createRedisClient(o.redisUrl, { role: "subscriber" });
  subscriber.on("error", (err: Error) => o.logger.debug({ err: err.message }, "redis subscriber error"));
  const introspectionCache = new RedisIntrospectionCache(redis, undefined, undefined, (err) => o.logger.debug({ err: err.message }, "introspection: shared cache unavailable"));
  const revocations = new RedisRevocationStore({ client: redis, subscriber, log: o.logger });
  await waitReady(redis, 3000);
  await revocations.start();
  return {
    redis,
    revocations,
    introspectionCache,
    async close() {
      await revocations.close();
      redis.disconnect();
      subscriber.disconnect();
    },
  };
}

/**
 * Every credential kind, in precedence order: the first verifier that finds its kind of credential in
 * a request decides (credentials/index.ts). Revocation and certificate binding check every verified user.
 */
export function credentialPlugins(stores: Stores, env: NodeJS.ProcessEnv = process.env): CredentialPlugin[] {
  return [
    jwtPlugin(),
    introspectionPlugin(stores.introspectionCache ? { sharedCache: stores.introspectionCache, env } : { env }),
    apiKeysPlugin(),
    revocationPlugin(stores.revocations),
    certBoundPlugin(),
  ];
}

export interface ProcessOptions {
  readonly policyFile: string;
  /** The file compiled already (main.ts validates before forking workers); loaded here otherwise. */
  readonly policy?: CompiledPolicy;
  readonly grpcAddr: string;
  readonly httpAddr: string;
  readonly redisUrl?: string;
  readonly workers?: number;
  readonly adminAddr?: string;
  readonly adminTokenFile?: string;
  /** Bearer token quota callers must send (lease API, RateLimitService); absent = open, with a warning. */
  readonly quotaToken?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly clock: Clock;
  /** One span per Check (observability/tracing.ts); absent = tracing off. */
  readonly tracer?: CheckTracer;
  /** /metrics of a --workers group (observability/cluster-metrics.ts); default: `registry` alone. */
  readonly scrape?: () => Promise<string>;
}

export interface WiredProcess {
  readonly holder: PolicyHolder;
  readonly quota: QuotaService;
  readonly server: AuthzServer;
  readonly stores: Stores;
  /** Binds the listeners (and the admin listener when configured). */
  start(): Promise<{ readonly grpcPort: number; readonly httpPort: number; readonly checkTransport: "direct" | "grpc-js"; readonly adminPort?: number }>;
  /** Drains the server, then closes quota, admin, policy holder and stores. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Builds the whole process unstarted. Throws AdminConfigInvalid (a usage error: exit 2) before it
 * connects anything, and PolicyInvalid (exit 1) for a bad policy file.
 */
export async function wireProcess(o: ProcessOptions): Promise<WiredProcess> {
  const env = o.env ?? process.env;
  const adminConfig = resolveAdminConfig({ ...(o.adminAddr !== undefined ? { adminAddr: o.adminAddr } : {}), ...(o.adminTokenFile !== undefined ? { adminTokenFile: o.adminTokenFile } : {}) }, env);
  if (adminConfig && (o.workers ?? 1) > 1 && !o.redisUrl) {
    throw new AdminConfigInvalid("--admin-addr with --workers > 1 needs --redis: otherwise a revocation would reach only one worker");
  }
  const policy = o.policy ?? loadPolicyFile(o.policyFile);
  const stores = await openStores({ ...(o.redisUrl ? { redisUrl: o.redisUrl } : {}), logger: o.logger });
  const metrics = authzMetrics(o.registry);
  let holder: PolicyHolder | undefined;
  let quota: QuotaService | undefined;
  try {
    holder = new PolicyHolder({
      file: o.policyFile,
      clock: o.clock,
      registry: o.registry,
      logger: o.logger,
      createKeySource: jwksKeySourceFactory,
      credentialPlugins: credentialPlugins(stores, env),
      onTokenCache: (hit) => metrics.tokenCache.inc({ result: hit ? "hit" : "miss" }),
    });
    const runtime = holder.load(policy);
    quota = createQuotaService({ limits: runtime.policy.rateLimits, logger: o.logger, registry: o.registry, ...(stores.redis ? { redis: stores.redis } : {}), ...(o.quotaToken ? { token: o.quotaToken } : {}) });
  } catch (err) {
    holder?.close();
    await stores.close();
    throw err;
  }
  // The decision-cache epoch follows the policy version and key sets (server.ts) and the revocation list (here).
  const cacheEpoch = new CacheEpoch();
  stores.revocations.onChange?.((entries) => cacheEpoch.revocationsChanged(entries));
  const server = createAuthzServer({ holder, logger: o.logger, registry: o.registry, clock: o.clock, quota, cacheEpoch, grpcAddress: o.grpcAddr, httpAddress: o.httpAddr, ...(o.tracer ? { tracer: o.tracer } : {}), ...(o.scrape ? { scrape: o.scrape } : {}) });
  let admin: AdminServer | undefined;
  const wired: WiredProcess = {
    holder,
    quota,
    server,
    stores,
    async start() {
      const ports = await server.start();
      if (!adminConfig) return ports;
      // A revocation naming a provider the serving policy does not have would revoke nothing: refused.
      const knownProviders = (): ReadonlySet<string> | undefined => {
        const p = holder?.current?.policy.providers;
        return p ? new Set([...(p.jwt ?? []), ...(p.introspection ?? []), ...(p.apiKeys ?? [])].map((x) => x.name)) : undefined;
      };
      admin = createAdminServer({ store: stores.revocations, token: adminConfig.token, log: o.logger, knownProviders });
      const { port } = await admin.listen(adminConfig.host, adminConfig.port);
      o.logger.info({ admin: `${adminConfig.host}:${port}` }, "admin listener: /v1/revocations");
      return { ...ports, adminPort: port };
    },
    async stop(graceMs) {
      await server.stop(graceMs);
      await Promise.all([quota!.close(), admin?.close()]);
      holder!.close();
      await Promise.all([stores.close(), o.tracer?.shutdown().catch(() => undefined)]);
    },
  };
  return wired;
}
