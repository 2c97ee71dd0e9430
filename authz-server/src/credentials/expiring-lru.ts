// A bounded (approximate) LRU whose entries expire: the in-process cache of verified tokens, introspection
// results and certificate thumbprints. Memory stays at `maxEntries` whatever keys attackers send.

export class ExpiringLru<V> {
  private readonly entries = new Map<string, { readonly value: V; readonly expiresAtMs: number; seq: number }>();
  /** Bumped on every insertion or recency refresh; an entry's `seq` says how recently it moved. */
  private seq = 0;
  constructor(private readonly maxEntries: number) {}

  /** `nowMs` is passed in (not read from an injected clock here): measured, it keeps the hit path cheap. */
  get(key: string, nowMs: number): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (nowMs >= e.expiresAtMs) {
      this.entries.delete(key);
      return undefined;
    }
    // Refresh recency only once the entry has drifted out of the most recent half: a hot key then
    // costs a lookup, not a Map delete + insert per request, and eviction still takes a cold one.
    if (this.seq - e.seq > this.maxEntries / 2) {
      this.entries.delete(key);
      e.seq = ++this.seq;
      this.entries.set(key, e);
    }
    return e.value;
  }

  /** Keeps `value` until `expiresAtMs` at the latest, evicting the least recently used entry when full. */
  set(key: string, value: V, expiresAtMs: number): void {
    if (this.maxEntries <= 0) return;
    this.entries.delete(key);
    this.entries.set(key, { value, expiresAtMs, seq: ++this.seq });
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
