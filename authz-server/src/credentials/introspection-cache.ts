// Cache of token introspection results keyed by the SHA-256 of the token (never the token): a bounded
// in-process LRU (expiring-lru.ts) in front of an optional Redis cache that every replica shares.
import type { Cluster, Redis } from "ioredis";

/** What the shared cache holds: an active token's introspection claims, or a negative result; `until` is epoch ms. */
export type CachedIntrospection =
  | { readonly active: true; readonly claims: Readonly<Record<string, unknown>>; readonly until: number }
  | { readonly active: false; readonly reason: "token_inactive" | "token_expired"; readonly until: number };

export interface IntrospectionCache {
  get(key: string): Promise<CachedIntrospection | undefined>;
  set(key: string, value: CachedIntrospection, ttlMs: number): Promise<void>;
}

/**
 * Shared cache in Redis under `<prefix><key>` with PX expiry. Redis errors read as misses and failed
 * writes are dropped: the shared cache saves endpoint calls but is never needed to answer.
 */
export class RedisIntrospectionCache implements IntrospectionCache {
  constructor(
    private readonly client: Redis | Cluster,
    private readonly prefix = "meshward:introspection:",
    private readonly maxValueBytes = 64 * 1024,
    private readonly onError?: (err: Error) => void,
  ) {}

  async get(key: string): Promise<CachedIntrospection | undefined> {
    let raw: string | null;
    try {
      raw = await this.client.get(this.prefix + key);
    } catch (err) {
      this.onError?.(err as Error);
      return undefined;
    }
    if (raw === null || raw.length > this.maxValueBytes) return undefined;
    try {
      const v = JSON.parse(raw) as unknown;
      return isCached(v) ? v : undefined;
    } catch {
      return undefined;
    }
  }

  async set(key: string, value: CachedIntrospection, ttlMs: number): Promise<void> {
    const ms = Math.floor(ttlMs);
    if (ms <= 0) return;
    const raw = JSON.stringify(value);
    if (raw.length > this.maxValueBytes) return;
    try {
      await this.client.set(this.prefix + key, raw, "PX", ms);
    } catch (err) {
      this.onError?.(err as Error);
    }
  }
}

function isCached(v: unknown): v is CachedIntrospection {
  if (typeof v !== "object" || v === null) return false;
  const o = v as Record<string, unknown>;
  if (typeof o.until !== "number") return false;
  if (o.active === true) return typeof o.claims === "object" && o.claims !== null && !Array.isArray(o.claims);
  return o.active === false && (o.reason === "token_inactive" || o.reason === "token_expired");
}
