// Read-only view of a request's headers over the host's serialized header pairs (one
// proxy_get_header_map_pairs call per request). Lookups compare bytes in place and decode only
// the values that are asked for. Pure: build one from any pairs buffer (docs/proxy-wasm-host.md §2.2).
import { cookieValue } from "./cookies";
import { queryParam } from "./query";
import { stripQuery } from "./path-match";

const PATH = String.UTF8.encode(":path");
const METHOD = String.UTF8.encode(":method");
const COOKIE = String.UTF8.encode("cookie");

export class RequestView {
  private buf: ArrayBuffer = new ArrayBuffer(0);
  private count: u32 = 0;
  /** Absolute address of the first key byte. */
  private dataStart: usize = 0;
  private targetValue: string | null = null;
  private pathOnly: string | null = null;
  private methodValue: string | null = null;
  /** Address and length of the value found by the last successful `find`. */
  foundPtr: usize = 0;
  foundLen: u32 = 0;

  /** Points the view at a new pairs buffer; a malformed buffer reads as no headers. */
  reset(pairs: ArrayBuffer): void {
    this.buf = pairs;
    this.count = 0;
    this.targetValue = null;
    this.pathOnly = null;
    this.methodValue = null;
    const size = <usize>pairs.byteLength;
    if (size < 4) return;
    const base = changetype<usize>(pairs);
    const n = load<u32>(base);
    const tableEnd: usize = 4 + <usize>n * 8;
    if (n > 1024 || tableEnd > size) return;
    let total: usize = tableEnd;
    for (let i: u32 = 0; i < n; i++) {
      total += <usize>load<u32>(base + 4 + i * 8) + <usize>load<u32>(base + 8 + i * 8) + <usize>2;
      if (total > size) return;
    }
    this.count = n;
    this.dataStart = base + tableEnd;
  }

  get size(): i32 {
    return this.count;
  }

  /** Finds the first header named `name` (lower-case UTF-8 bytes); sets foundPtr/foundLen. */
  find(name: ArrayBuffer): bool {
    return this.findFrom(name, 0) >= 0;
  }

  /** Like `find` starting at pair `from`; returns the pair index found, or -1. */
  findFrom(name: ArrayBuffer, from: i32): i32 {
    const base = changetype<usize>(this.buf);
    const nameLen = <u32>name.byteLength;
    const namePtr = changetype<usize>(name);
    let p = this.dataStart;
    for (let i: i32 = 0; i < <i32>this.count; i++) {
      const klen = load<u32>(base + 4 + i * 8);
      const vlen = load<u32>(base + 8 + i * 8);
      if (i >= from && klen == nameLen && memory.compare(p, namePtr, klen) == 0) {
        this.foundPtr = p + klen + 1;
        this.foundLen = vlen;
        return i;
      }
      p += <usize>klen + <usize>vlen + 2;
    }
    return -1;
  }

  /**
   * How many headers are named `name`, counting up to 2, in one pass; when there is one or more,
   * foundPtr/foundLen point at the first value.
   */
  occurrences(name: ArrayBuffer): u32 {
    const base = changetype<usize>(this.buf);
    const nameLen = <u32>name.byteLength;
    const namePtr = changetype<usize>(name);
    let seen: u32 = 0;
    let p = this.dataStart;
    for (let i: i32 = 0; i < <i32>this.count; i++) {
      const klen = load<u32>(base + 4 + i * 8);
      const vlen = load<u32>(base + 8 + i * 8);
      if (klen == nameLen && memory.compare(p, namePtr, klen) == 0) {
        if (++seen == 2) return 2;
        this.foundPtr = p + klen + 1;
        this.foundLen = vlen;
      }
      p += <usize>klen + <usize>vlen + 2;
    }
    return seen;
  }

  /** The first value of header `name` (lower-case UTF-8 bytes), or null. */
  header(name: ArrayBuffer): string | null {
    if (!this.find(name)) return null;
    return String.UTF8.decodeUnsafe(this.foundPtr, this.foundLen);
  }

  /** `:path` as sent (with the query string), or "" when absent. */
  target(): string {
    let t = this.targetValue;
    if (t === null) {
      t = this.header(PATH);
      if (t === null) t = "";
      this.targetValue = t;
    }
    return t;
  }

  /** `:path` without its query string and fragment. */
  path(): string {
    let p = this.pathOnly;
    if (p === null) {
      p = stripQuery(this.target());
      this.pathOnly = p;
    }
    return p;
  }

  /** `:method`, or "" when absent. */
  method(): string {
    let m = this.methodValue;
    if (m === null) {
      m = this.header(METHOD);
      if (m === null) m = "";
      this.methodValue = m;
    }
    return m;
  }

  /** Decoded query parameter `name`, or null. */
  query(name: string): string | null {
    return queryParam(this.target(), name);
  }

  /** Cookie `name` from any `cookie` header, or null. */
  cookie(name: string): string | null {
    let i = this.findFrom(COOKIE, 0);
    while (i >= 0) {
      const v = cookieValue(String.UTF8.decodeUnsafe(this.foundPtr, this.foundLen), name);
      if (v !== null) return v;
      i = this.findFrom(COOKIE, i + 1);
    }
    return null;
  }
}

/** Serializes name/value pairs in the proxy-wasm pairs format (docs/proxy-wasm-host.md §2.2). */
export function serializePairs(names: string[], values: string[]): ArrayBuffer {
  const n = names.length;
  const keys = new Array<ArrayBuffer>(n);
  const vals = new Array<ArrayBuffer>(n);
  let size = 4 + n * 8;
  for (let i = 0; i < n; i++) {
    keys[i] = String.UTF8.encode(names[i]);
    vals[i] = String.UTF8.encode(values[i]);
    size += keys[i].byteLength + vals[i].byteLength + 2;
  }
  const out = new ArrayBuffer(size);
  const base = changetype<usize>(out);
  store<u32>(base, n);
  let p = base + 4 + n * 8;
  for (let i = 0; i < n; i++) {
    store<u32>(base + 4 + i * 8, keys[i].byteLength);
    store<u32>(base + 8 + i * 8, vals[i].byteLength);
    memory.copy(p, changetype<usize>(keys[i]), keys[i].byteLength);
    p += keys[i].byteLength;
    store<u8>(p++, 0);
    memory.copy(p, changetype<usize>(vals[i]), vals[i].byteLength);
    p += vals[i].byteLength;
    store<u8>(p++, 0);
  }
  return out;
}
