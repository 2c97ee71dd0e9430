// The one Redis client factory of the process: quota buckets, the shared introspection cache and the
// revocation list all connect through it, single node (redis://, rediss://) or Cluster (redis+cluster://).
import { Cluster, Redis, type RedisOptions } from "ioredis";

export type RedisClient = Redis | Cluster;

export interface RedisClientOptions {
  /** `commands` fail fast while Redis is unreachable; a `subscriber` queues its SUBSCRIBE until connected. */
  readonly role?: "commands" | "subscriber";
  /** Bound on one command (commands role), default 300 ms. */
  readonly commandTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
}

const CLUSTER_SCHEME = "redis+cluster://";
const reconnectDelayMs = (times: number): number => Math.min(50 * times, 1000);

/** Whether the URL is one this factory accepts (the CLI checks the same prefixes). */
export function isRedisUrl(url: string): boolean {
  return /^(rediss?|redis\+cluster):\/\//.test(url);
}

/**
 * One ioredis client for a URL. The commands role fails fast while Redis is unreachable (a 503 now
 * rather than a queue that grows during an outage); both roles reconnect at most 1 s apart.
 */
export function createRedisClient(url: string, o: RedisClientOptions = {}): RedisClient {
  const subscriber = o.role === "subscriber";
  const common: RedisOptions = subscriber
    ? { connectTimeout: o.connectTimeoutMs ?? 1000, maxRetriesPerRequest: null }
    : { commandTimeout: o.commandTimeoutMs ?? 300, connectTimeout: o.connectTimeoutMs ?? 1000, maxRetriesPerRequest: 0 };
  if (!url.startsWith(CLUSTER_SCHEME)) {
    return new Redis(url, { ...common, enableOfflineQueue: subscriber, retryStrategy: reconnectDelayMs, enableAutoPipelining: !subscriber });
  }
  const rest = url.slice(CLUSTER_SCHEME.length);
  const at = rest.lastIndexOf("@");
  const auth = at >= 0 ? rest.slice(0, at) : "";
  const hosts = (at >= 0 ? rest.slice(at + 1) : rest).replace(/\/.*$/, "");
  const nodes = hosts.split(",").filter(Boolean).map((hp) => {
    const m = /^(.*):(\d+)$/.exec(hp);
    if (!m) throw new TypeError(`redis cluster URL: '${hp}' is not host:port`);
    return { host: m[1]!.replace(/^\[|\]$/g, ""), port: Number(m[2]) };
  });
  if (nodes.length === 0) throw new TypeError("redis cluster URL names no host:port");
  const colon = auth.indexOf(":");
  const credentials = auth
    ? colon >= 0
      ? { username: decodeURIComponent(auth.slice(0, colon)), password: decodeURIComponent(auth.slice(colon + 1)) }
      : { username: decodeURIComponent(auth) }
    : {};
  return new Cluster(nodes, {
    enableOfflineQueue: subscriber,
    enableAutoPipelining: !subscriber,
    clusterRetryStrategy: reconnectDelayMs,
    redisOptions: { ...common, ...credentials },
  });
}

/** Resolves once the client is ready or after `timeoutMs` (never rejects: callers report readiness). */
export function waitReady(client: RedisClient, timeoutMs: number): Promise<void> {
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
