// Bucket store on Redis (single node or Cluster): one Lua script per take, sent as EVALSHA with an EVAL
// fallback on NOSCRIPT (ioredis defineCommand), failing fast while Redis is unreachable.
import type { Cluster, Redis } from "ioredis";
import { createRedisClient } from "../stores/redis-client.js";
import { NO_REFILL_IDLE_MS, type BucketStore, type TakeRequest, type TakeResult } from "./bucket-store.js";
import { QuotaStoreUnavailable } from "./errors.js";
import { TAKE_TOKENS_LUA } from "./take-tokens-script.js";

export interface RedisStoreOptions {
  /** `redis://[user:pass@]host:port[/db]`, or `redis+cluster://[user:pass@]host:port[,host:port…]` for Redis Cluster. */
  readonly url?: string;
  /** A ready-made client (takes precedence over `url`; close() leaves it open); it should have `enableOfflineQueue: false`. */
  readonly client?: Redis | Cluster;
  /** Only for tests: pass this clock's time to the script instead of using Redis TIME. */
  readonly clock?: () => number;
  /** Bound on one command, so a hung Redis yields an error instead of a wait (default 300 ms). */
  readonly commandTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
  /** Called on every up/down transition of the connection. */
  readonly onStatus?: (up: boolean, detail: string) => void;
}

type TakeCommand = (key: string, ...args: (string | number)[]) => Promise<[number, string, number]>;

export class RedisBucketStore implements BucketStore {
  readonly kind = "redis" as const;
  readonly client: Redis | Cluster;
  private readonly clock: (() => number) | undefined;
  private up = false;
  private lastError = "not connected yet";
  private readonly onStatus: ((up: boolean, detail: string) => void) | undefined;
  /** A client passed in belongs to the caller (shared with other stores): close() leaves it connected. */
  private readonly ownsClient: boolean;

  constructor(opts: RedisStoreOptions) {
    this.clock = opts.clock;
    this.onStatus = opts.onStatus;
    this.ownsClient = !opts.client;
    if (opts.client) {
      this.client = opts.client;
    } else {
      if (!opts.url) throw new TypeError("RedisBucketStore needs a url or a client");
      this.client = createRedisClient(opts.url, { commandTimeoutMs: opts.commandTimeoutMs ?? 300, connectTimeoutMs: opts.connectTimeoutMs ?? 1000 });
    }
    this.client.defineCommand("meshwardTakeTokens", { numberOfKeys: 1, lua: TAKE_TOKENS_LUA });
    this.client.on("ready", () => this.setUp(true, "ready"));
    this.client.on("error", (err: Error) => {
      this.lastError = err.message;
    });
    this.client.on("close", () => this.setUp(false, this.lastError));
    this.client.on("end", () => this.setUp(false, "connection ended"));
    if (this.client.status === "ready") this.setUp(true, "ready");
  }

  get isUp(): boolean {
    return this.up;
  }

  async take(req: TakeRequest): Promise<TakeResult> {
    const cmd = (this.client as unknown as { meshwardTakeTokens: TakeCommand }).meshwardTakeTokens.bind(this.client);
    const now = this.clock ? String(this.clock()) : "";
    let reply: [number, string, number];
    try {
      reply = await cmd(req.key, req.capacity, req.refillPerSecond, req.want, req.mode, now, NO_REFILL_IDLE_MS);
    } catch (err) {
      throw new QuotaStoreUnavailable(`redis: ${(err as Error).message}`, { cause: err });
    }
    return { granted: Number(reply[0]), tokens: Number(reply[1]), resetInMs: Number(reply[2]) };
  }

  async ping(): Promise<void> {
    try {
      await this.client.ping();
    } catch (err) {
      throw new QuotaStoreUnavailable(`redis: ${(err as Error).message}`, { cause: err });
    }
  }

  async close(): Promise<void> {
    if (this.ownsClient) this.client.disconnect();
    this.setUp(false, "closed");
  }

  private setUp(up: boolean, detail: string): void {
    if (up === this.up) return;
    this.up = up;
    this.onStatus?.(up, detail);
  }
}
