// A bounded (approximate) LRU of verified credentials keyed by the SHA-256 of the credential (the token itself is
// never kept), each entry expiring at the credential's own expiry at the latest.
import { hash } from "node:crypto";
import type { UserIdentity } from "../model.js";

export class TokenCache {
  private readonly entries = new Map<string, { readonly identity: UserIdentity; readonly expiresAtMs: number; seq: number }>();
  /** Bumped on every insertion or recency refresh; an entry's `seq` says how recently it moved. */
  private seq = 0;
  constructor(private readonly maxEntries: number) {}

  static keyOf(credential: string): string {
    // one-shot crypto.hash: measured ~2× cheaper than createHash().update().digest() per token
    return hash("sha256", credential, "base64");
  }

  get(key: string, nowMs: number): UserIdentity | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (nowMs >= e.expiresAtMs) {
      this.entries.delete(key);
      return undefined;
    }
    // Refresh recency only once the entry has drifted out of the most recent half: a hot token then
    // costs a lookup, not a Map delete + insert per request, and eviction still takes a cold one.
    if (this.seq - e.seq > this.maxEntries / 2) {
      this.entries.delete(key);
      e.seq = ++this.seq;
      this.entries.set(key, e);
    }
    return e.identity;
  }

  set(key: string, identity: UserIdentity, expiresAtMs: number): void {
    if (this.maxEntries <= 0) return;
    this.entries.delete(key);
    this.entries.set(key, { identity, expiresAtMs, seq: ++this.seq });
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
  }
}
