// Process-level wiring of the credential kinds beyond JWT for main.ts: the plugins (introspection with a
// Redis-shared cache, API keys, revocation, certificate binding), the revocation store and the admin listener.
import { Redis } from "ioredis";
import type { Logger } from "pino";
import { AdminConfigInvalid, resolveAdminConfig } from "../admin/admin-config.js";
import { createAdminServer, type AdminServer } from "../admin/admin-server.js";
import { apiKeysPlugin } from "./api-keys.js";
import { certBoundPlugin } from "./cert-bound.js";
import type { CredentialPlugin } from "./index.js";
import { RedisIntrospectionCache } from "./introspection-cache.js";
import { introspectionPlugin } from "./introspection.js";
import { MemoryRevocationStore, RedisRevocationStore, revocationPlugin, type RevocationStore } from "./revocation.js";

export interface CredentialServicesOptions {
  /** `--redis`: shares the introspection cache and the revocation list across replicas. */
  readonly redisUrl?: string;
  readonly adminAddr?: string;
  readonly adminTokenFile?: string;
  readonly workers?: number;
  readonly env?: NodeJS.ProcessEnv;
  readonly logger: Logger;
}

export interface CredentialServices {
  /** For PolicyHolder's `credentialPlugins`, in precedence order (verifiers) and check order. */
  readonly plugins: readonly CredentialPlugin[];
  readonly revocations: RevocationStore;
  /** The admin listener's address once started, when enabled. */
  readonly admin?: { readonly host: string; readonly port: number };
  close(): Promise<void>;
}

/**
 * Validates the admin flags first (throws AdminConfigInvalid, a usage error), then connects Redis when
 * configured, loads the revocation list and starts the admin listener.
 */
export async function startCredentialServices(o: CredentialServicesOptions): Promise<CredentialServices> {
  const env = o.env ?? process.env;
  const adminConfig = resolveAdminConfig({ ...(o.adminAddr !== undefined ? { adminAddr: o.adminAddr } : {}), ...(o.adminTokenFile !== undefined ? { adminTokenFile: o.adminTokenFile } : {}) }, env);
  if (adminConfig && (o.workers ?? 1) > 1 && !o.redisUrl) {
    throw new AdminConfigInvalid("--admin-addr with --workers > 1 needs --redis: otherwise a revocation would reach only one worker");
  }
  const clients: Redis[] = [];
  const connect = (): Redis => {
    const c = new Redis(o.redisUrl!, { enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 300, connectTimeout: 1000, retryStrategy: (n: number) => Math.min(50 * n, 1000) });
    c.on("error", (err: Error) => o.logger.debug({ err: err.message }, "credentials: redis error"));
    clients.push(c);
    return c;
  };
  let revocations: RevocationStore;
  let sharedCache: RedisIntrospectionCache | undefined;
  if (o.redisUrl) {
    const main = connect();
    // The subscriber queues its SUBSCRIBE until connected, so replicas pick up events once Redis is reachable.
    const subscriber = new Redis(o.redisUrl, { maxRetriesPerRequest: null, retryStrategy: (n: number) => Math.min(50 * n, 1000) });
    subscriber.on("error", (err: Error) => o.logger.debug({ err: err.message }, "credentials: redis subscriber error"));
    clients.push(subscriber);
    sharedCache = new RedisIntrospectionCache(main, undefined, undefined, (err) => o.logger.debug({ err: err.message }, "introspection: shared cache unavailable"));
    const store = new RedisRevocationStore({ client: main, subscriber, log: o.logger });
    await waitReady(main, 3000);
    await store.start();
    revocations = store;
  } else {
    revocations = new MemoryRevocationStore();
  }
  // Provider names of the policy last built, for the admin API to refuse revocations that match nothing.
  let providerNames: ReadonlySet<string> | undefined;
  const plugins: CredentialPlugin[] = [
    {
      name: "provider-names",
      build(ctx) {
        const p = ctx.policy.providers;
        providerNames = new Set([...(p.jwt ?? []), ...(p.introspection ?? []), ...(p.apiKeys ?? [])].map((x) => x.name));
        return {};
      },
    },
    introspectionPlugin(sharedCache ? { sharedCache, env } : { env }),
    apiKeysPlugin(),
    revocationPlugin(revocations),
    certBoundPlugin(),
  ];
  let admin: AdminServer | undefined;
  let closing: Promise<void> | undefined;
  let adminAt: { host: string; port: number } | undefined;
  if (adminConfig) {
    admin = createAdminServer({ store: revocations, token: adminConfig.token, log: o.logger, knownProviders: () => providerNames });
    const { port } = await admin.listen(adminConfig.host, adminConfig.port);
    adminAt = { host: adminConfig.host, port };
    o.logger.info({ admin: `${adminConfig.host}:${port}` }, "admin listener: /v1/revocations");
  }
  return {
    plugins,
    revocations,
    ...(adminAt ? { admin: adminAt } : {}),
    close() {
      closing ??= (async () => {
        await admin?.close();
        await revocations.close();
        for (const c of clients) c.disconnect();
      })();
      return closing;
    },
  };
}

function waitReady(client: Redis, timeoutMs: number): Promise<void> {
  if (client.status === "ready") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, timeoutMs);
    timer.unref();
    client.once("ready", done);
    function done(): void {
      clearTimeout(timer);
      client.off("ready", done);
      resolve();
    }
  });
}
