// Envoy-like header map: ordered entries, lower-cased keys, pseudo-headers first, inline-header merging on add.
import { toByteString, type Pair } from "./pairs.js";

/**
 * Headers Envoy keeps "inline" (O(1) slots). Adding one that is already present appends `,value` to it
 * instead of creating a second entry (docs/proxy-wasm-host.md §4.3 quirk). Custom inline headers registered by other
 * extensions are not modelled.
 */
const INLINE_HEADERS = new Set([
  ":authority", ":path", ":method", ":scheme", ":protocol", ":status", "host", "user-agent", "content-type",
  "content-length", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "via", "te",
  "expect", "grpc-timeout", "grpc-status", "grpc-message", "date", "server", "location",
  "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-client-cert", "x-request-id",
  "x-client-trace-id", "x-envoy-original-path", "x-envoy-original-url", "x-envoy-internal", "x-envoy-retry-on",
  "x-envoy-retry-grpc-on", "x-envoy-max-retries", "x-envoy-upstream-rq-timeout-ms",
  "x-envoy-upstream-rq-per-try-timeout-ms", "x-envoy-expected-rq-timeout-ms", "x-envoy-attempt-count",
  "x-envoy-decorator-operation", "x-envoy-downstream-service-cluster", "x-envoy-downstream-service-node",
  "x-envoy-external-address", "x-envoy-force-trace", "x-envoy-ip-tags", "x-envoy-upstream-alt-stat-name",
  "x-envoy-degraded", "x-envoy-immediate-health-check-fail", "x-envoy-ratelimited", "x-envoy-upstream-canary",
  "x-envoy-upstream-healthchecked-cluster", "x-envoy-upstream-service-time", "x-envoy-overloaded",
]);

export type HeaderInit = Record<string, string | readonly string[]> | readonly Pair[];

/** Header map whose keys and values are byte strings (latin1 chars = bytes). */
export class HeaderMap {
  readonly keys: string[] = [];
  readonly values: string[] = [];

  /** Builds a map from user input: keys lower-cased, strings encoded as UTF-8 bytes. */
  static from(init?: HeaderInit): HeaderMap {
    const map = new HeaderMap();
    if (!init) return map;
    if (Array.isArray(init)) {
      for (const [k, v] of init as readonly Pair[]) map.add(toByteString(k), toByteString(v));
      return map;
    }
    const rec = init as Record<string, string | readonly string[]>;
    for (const k in rec) {
      const v = rec[k]!;
      if (typeof v === "string") map.add(toByteString(k), toByteString(v));
      else for (const x of v) map.add(toByteString(k), toByteString(x));
    }
    return map;
  }

  get size(): number {
    return this.keys.length;
  }

  /** Σ key+value lengths: what Envoy's proxy_get_header_map_size reports. */
  get byteSize(): number {
    let n = 0;
    for (let i = 0; i < this.keys.length; i++) n += this.keys[i]!.length + this.values[i]!.length;
    return n;
  }

  /** First value for `key` (case-insensitive), or undefined. */
  get(key: string): string | undefined {
    const k = key.toLowerCase();
    const i = this.keys.indexOf(k);
    return i < 0 ? undefined : this.values[i];
  }

  getAll(key: string): string[] {
    const k = key.toLowerCase();
    const out: string[] = [];
    for (let i = 0; i < this.keys.length; i++) if (this.keys[i] === k) out.push(this.values[i]!);
    return out;
  }

  has(key: string): boolean {
    return this.keys.indexOf(key.toLowerCase()) >= 0;
  }

  /** Appends an entry (pseudo-headers go after existing pseudo-headers); inline headers merge as `old,new`. */
  add(key: string, value: string): void {
    const k = key.toLowerCase();
    if (INLINE_HEADERS.has(k)) {
      const i = this.keys.indexOf(k);
      if (i >= 0) {
        this.values[i] = this.values[i] + "," + value;
        return;
      }
    }
    if (k.charCodeAt(0) === 58 /* ':' */) {
      let at = 0;
      while (at < this.keys.length && this.keys[at]!.charCodeAt(0) === 58) at++;
      this.keys.splice(at, 0, k);
      this.values.splice(at, 0, value);
      return;
    }
    this.keys.push(k);
    this.values.push(value);
  }

  /** The key ends with exactly this value: the first entry is updated in place, the others removed. */
  set(key: string, value: string): void {
    const k = key.toLowerCase();
    const i = this.keys.indexOf(k);
    if (i < 0) {
      this.add(k, value);
      return;
    }
    this.values[i] = value;
    for (let j = this.keys.length - 1; j > i; j--) {
      if (this.keys[j] === k) {
        this.keys.splice(j, 1);
        this.values.splice(j, 1);
      }
    }
  }

  remove(key: string): void {
    const k = key.toLowerCase();
    for (let j = this.keys.length - 1; j >= 0; j--) {
      if (this.keys[j] === k) {
        this.keys.splice(j, 1);
        this.values.splice(j, 1);
      }
    }
  }

  clear(): void {
    this.keys.length = 0;
    this.values.length = 0;
  }

  pairs(): Pair[] {
    const out: Pair[] = new Array(this.keys.length);
    for (let i = 0; i < this.keys.length; i++) out[i] = [this.keys[i]!, this.values[i]!];
    return out;
  }

  /** Plain object view (multi-values comma-joined), convenient for assertions. */
  toObject(): Record<string, string> {
    const out: Record<string, string> = {};
    for (let i = 0; i < this.keys.length; i++) {
      const k = this.keys[i]!;
      out[k] = k in out ? out[k] + "," + this.values[i] : this.values[i]!;
    }
    return out;
  }

  clone(): HeaderMap {
    const m = new HeaderMap();
    m.keys.push(...this.keys);
    m.values.push(...this.values);
    return m;
  }
}
