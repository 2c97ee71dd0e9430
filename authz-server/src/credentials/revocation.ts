// Revocation: a denylist of token ids (`jti`) and subjects (`sub`) with a TTL, checked after every
// successful credential verification — cache hits included. Kept in memory; with Redis, shared by all
// replicas (keys with PX expiry, changes broadcast by pub/sub, periodic full resync as a backstop).
import type { Cluster, Redis } from "ioredis";
import { CodedError } from "../error-codes.js";
import { CredentialInvalid, DependencyUnavailable } from "../errors.js";
import type { UserIdentity } from "../model.js";
import type { CredentialPlugin, IdentityCheck } from "./index.js";

export type RevocationKind = "jti" | "sub";

export interface Revocation {
  readonly kind: RevocationKind;
  readonly value: string;
  /** Limits the entry to credentials of one provider; absent = every provider. */
  readonly provider?: string;
  /** Epoch milliseconds. */
  readonly expiresAt: number;
}

export interface RevocationStore {
  revoke(kind: RevocationKind, value: string, ttlMs: number, provider?: string): Promise<Revocation>;
  /** Resolves false when there was no such entry. */
  unrevoke(kind: RevocationKind, value: string, provider?: string): Promise<boolean>;
  /** Live entries, at most `limit`. */
  list(limit: number): Promise<{ readonly entries: readonly Revocation[]; readonly truncated: boolean }>;
  /** Hot path: answered from memory, no I/O. */
  isRevoked(user: UserIdentity): Revocation | undefined;
  /** Called after every change of the list (local or from another replica) with the live entries: the decision-cache epoch. */
  onChange?(listener: (entries: () => Iterable<Revocation>) => void): void;
  close(): Promise<void>;
}

export const MAX_REVOCATION_VALUE_LENGTH = 1024;

/** The store refuses a write (full, or Redis unreachable). */
export class RevocationStoreUnavailable extends CodedError<"ERR_REVOCATION_STORE_UNAVAILABLE"> {
  constructor(message: string, options?: { cause?: unknown }) {
    super("ERR_REVOCATION_STORE_UNAVAILABLE", message, options);
  }
}

function entryKey(kind: RevocationKind, value: string, provider: string | undefined): string {
  return `${kind}:${provider ?? "*"}:${value}`;
}

/** In-process denylist with expiry and a bound on entries. */
export class MemoryRevocationStore implements RevocationStore {
  protected readonly entries = new Map<string, Revocation>();
  private readonly listeners: ((entries: () => Iterable<Revocation>) => void)[] = [];
  constructor(protected readonly now: () => number = Date.now, protected readonly maxEntries = 100_000) {}

  async revoke(kind: RevocationKind, value: string, ttlMs: number, provider?: string): Promise<Revocation> {
    return this.put({ kind, value, expiresAt: this.now() + ttlMs, ...(provider ? { provider } : {}) });
  }

  async unrevoke(kind: RevocationKind, value: string, provider?: string): Promise<boolean> {
    return this.drop(kind, value, provider);
  }

  list(limit: number): Promise<{ entries: Revocation[]; truncated: boolean }> {
    this.sweep();
    const all = [...this.entries.values()];
    return Promise.resolve({ entries: all.slice(0, limit), truncated: all.length > limit });
  }

  isRevoked(user: UserIdentity): Revocation | undefined {
    if (this.entries.size === 0) return undefined;
    const jti = typeof user.claims.jti === "string" ? user.claims.jti : undefined;
    const keys = [entryKey("sub", user.subject, undefined), entryKey("sub", user.subject, user.provider)];
    if (jti !== undefined) keys.push(entryKey("jti", jti, undefined), entryKey("jti", jti, user.provider));
    const now = this.now();
    for (const k of keys) {
      const e = this.entries.get(k);
      if (!e) continue;
      if (now < e.expiresAt) return e;
      this.entries.delete(k);
    }
    return undefined;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  onChange(listener: (entries: () => Iterable<Revocation>) => void): void {
    this.listeners.push(listener);
  }

  protected changed(): void {
    const live = () => this.entries.values();
    for (const l of this.listeners) l(live);
  }

  /** Adds or replaces an entry in memory. */
  put(e: Revocation): Revocation {
    const k = entryKey(e.kind, e.value, e.provider);
    if (!this.entries.has(k) && this.entries.size >= this.maxEntries) {
      this.sweep();
      if (this.entries.size >= this.maxEntries) throw new RevocationStoreUnavailable(`revocation list is full (${this.maxEntries} entries)`);
    }
    const prev = this.entries.get(k);
    this.entries.set(k, Object.freeze({ ...e }));
    if (!prev || prev.expiresAt !== e.expiresAt) this.changed();
    return e;
  }

  drop(kind: RevocationKind, value: string, provider: string | undefined): boolean {
    const k = entryKey(kind, value, provider);
    const e = this.entries.get(k);
    this.entries.delete(k);
    if (e !== undefined) this.changed();
    return e !== undefined && this.now() < e.expiresAt;
  }

  protected sweep(): void {
    const now = this.now();
    for (const [k, e] of this.entries) if (now >= e.expiresAt) this.entries.delete(k);
  }
}

export interface RedisRevocationOptions {
  readonly client: Redis | Cluster;
  /** A second connection for SUBSCRIBE (a subscribed connection cannot run other commands). */
  readonly subscriber: Redis | Cluster;
  readonly prefix?: string;
  /** Full resync period, the backstop for missed pub/sub messages (default 30 s). */
  readonly resyncMs?: number;
  readonly now?: () => number;
  readonly maxEntries?: number;
  readonly log?: { warn(obj: object, msg: string): void };
}

/**
 * Redis-backed denylist: each entry is a key `<prefix>entry:<kind>:<provider|*>:<value>` with PX expiry,
 * and every change is published on `<prefix>events` so all replicas update their in-memory copy at once.
 * A write succeeds only when Redis took it; the check never waits on Redis.
 */
export class RedisRevocationStore extends MemoryRevocationStore {
  private readonly client: Redis | Cluster;
  private readonly subscriber: Redis | Cluster;
  private readonly prefix: string;
  private readonly channel: string;
  private timer: NodeJS.Timeout | undefined;
  /** Changes made while a resync scans, re-applied after it (null = removed). */
  private changedDuringResync: Map<string, Revocation | null> | undefined;
  private readonly log: { warn(obj: object, msg: string): void } | undefined;

  constructor(private readonly opts: RedisRevocationOptions) {
    super(opts.now ?? Date.now, opts.maxEntries ?? 100_000);
    this.client = opts.client;
    this.subscriber = opts.subscriber;
    this.prefix = opts.prefix ?? "meshward:revocation:";
    this.channel = `${this.prefix}events`;
    this.log = opts.log;
  }

  /**
   * Subscribes, loads every live entry, and starts the periodic resync; never hangs on an unreachable
   * Redis (the subscription completes when it comes back, and every reconnect triggers a resync).
   */
  async start(): Promise<void> {
    this.subscriber.on("message", (channel: string, message: string) => {
      if (channel === this.channel) this.applyEvent(message);
    });
    this.subscriber.on("ready", () => { void this.resync().catch(() => undefined); });
    const subscribed = this.subscriber.subscribe(this.channel).then(() => true, () => false);
    const timeout = new Promise<boolean>((r) => setTimeout(() => r(false), 3_000).unref());
    if (!(await Promise.race([subscribed, timeout]))) this.log?.warn({}, "revocation: not subscribed yet (redis unreachable); will catch up on reconnect");
    await this.resync().catch((err: unknown) => this.log?.warn({ err: (err as Error).message }, "revocation: initial load failed; will resync"));
    this.timer = setInterval(() => { this.resync().catch((err: unknown) => this.log?.warn({ err: (err as Error).message }, "revocation: resync failed")); }, this.opts.resyncMs ?? 30_000);
    this.timer.unref();
  }

  override async revoke(kind: RevocationKind, value: string, ttlMs: number, provider?: string): Promise<Revocation> {
    const e: Revocation = { kind, value, expiresAt: this.now() + ttlMs, ...(provider ? { provider } : {}) };
    const raw = JSON.stringify(e);
    try {
      await this.client.set(`${this.prefix}entry:${entryKey(kind, value, provider)}`, raw, "PX", Math.max(1, Math.floor(ttlMs)));
      this.put(e);
      await this.client.publish(this.channel, JSON.stringify({ op: "add", entry: e }));
    } catch (err) {
      if (err instanceof RevocationStoreUnavailable) throw err;
      throw new RevocationStoreUnavailable(`redis: ${(err as Error).message}`, { cause: err });
    }
    return e;
  }

  override async unrevoke(kind: RevocationKind, value: string, provider?: string): Promise<boolean> {
    let removed: number;
    try {
      removed = await this.client.del(`${this.prefix}entry:${entryKey(kind, value, provider)}`);
      await this.client.publish(this.channel, JSON.stringify({ op: "remove", kind, value, provider: provider ?? null }));
    } catch (err) {
      throw new RevocationStoreUnavailable(`redis: ${(err as Error).message}`, { cause: err });
    }
    const local = this.drop(kind, value, provider);
    return removed > 0 || local;
  }

  override put(e: Revocation): Revocation {
    const r = super.put(e);
    this.changedDuringResync?.set(entryKey(e.kind, e.value, e.provider), r);
    return r;
  }

  override drop(kind: RevocationKind, value: string, provider: string | undefined): boolean {
    this.changedDuringResync?.set(entryKey(kind, value, provider), null);
    return super.drop(kind, value, provider);
  }

  /** Replaces the in-memory copy with what Redis holds (keeping changes made while it scanned). */
  async resync(): Promise<void> {
    const changed = new Map<string, Revocation | null>();
    this.changedDuringResync = changed;
    try {
      await this.scanInto(changed);
    } finally {
      this.changedDuringResync = undefined;
    }
  }

  private async scanInto(changed: Map<string, Revocation | null>): Promise<void> {
    const found = new Map<string, Revocation>();
    const nodes = "nodes" in this.client && typeof this.client.nodes === "function" ? (this.client as Cluster).nodes("master") : [this.client as Redis];
    for (const node of nodes) {
      let cursor = "0";
      do {
        const [next, keys] = await node.scan(cursor, "MATCH", `${this.prefix}entry:*`, "COUNT", 1000);
        cursor = next;
        if (keys.length === 0) continue;
        const values = await node.mget(...keys);
        for (const raw of values) {
          const e = raw === null ? undefined : parseRevocation(raw);
          if (e && found.size < this.maxEntries) found.set(entryKey(e.kind, e.value, e.provider), e);
        }
      } while (cursor !== "0");
    }
    for (const [k, e] of changed) {
      if (e) found.set(k, e); else found.delete(k);
    }
    this.entries.clear();
    for (const [k, e] of found) this.entries.set(k, e);
    this.changed();
  }

  override async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.subscriber.unsubscribe(this.channel).catch(() => undefined);
  }

  private applyEvent(message: string): void {
    try {
      const ev = JSON.parse(message) as { op?: string; entry?: unknown; kind?: unknown; value?: unknown; provider?: unknown };
      if (ev.op === "add") {
        const e = parseRevocation(JSON.stringify(ev.entry));
        if (e) this.put(e);
      } else if (ev.op === "remove" && (ev.kind === "jti" || ev.kind === "sub") && typeof ev.value === "string") {
        this.drop(ev.kind, ev.value, typeof ev.provider === "string" ? ev.provider : undefined);
      }
    } catch (err) {
      this.log?.warn({ err: (err as Error).message }, "revocation: ignoring a malformed event");
    }
  }
}

function parseRevocation(raw: string): Revocation | undefined {
  try {
    const o = JSON.parse(raw) as Record<string, unknown>;
    if ((o.kind !== "jti" && o.kind !== "sub") || typeof o.value !== "string" || typeof o.expiresAt !== "number") return undefined;
    if (o.value.length > MAX_REVOCATION_VALUE_LENGTH) return undefined;
    return { kind: o.kind, value: o.value, expiresAt: o.expiresAt, ...(typeof o.provider === "string" ? { provider: o.provider } : {}) };
  } catch {
    return undefined;
  }
}

/** The IdentityCheck the credentials stage runs after every verification (cache hits included). */
export function createRevocationCheck(store: RevocationStore): IdentityCheck {
  return {
    name: "revocation",
    check(user: UserIdentity): Promise<void> {
      let hit: Revocation | undefined;
      try {
        hit = store.isRevoked(user);
      } catch (err) {
        return Promise.reject(new DependencyUnavailable("ERR_REVOCATION_UNAVAILABLE", "revocation list unavailable", { cause: err }));
      }
      if (!hit) return Promise.resolve();
      return Promise.reject(new CredentialInvalid("ERR_TOKEN_REVOKED", `credential revoked (${hit.kind})`));
    },
  };
}

/** The credentials-stage plugin adding the revocation check. */
export function revocationPlugin(store: RevocationStore): CredentialPlugin {
  return { name: "revocation", build: () => ({ checks: [createRevocationCheck(store)] }) };
}
