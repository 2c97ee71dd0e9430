// Proxy-Wasm pair serialization (docs/proxy-wasm-host.md §2.2): u32 count, all (key_len, value_len) pairs, then NUL-terminated data.
// Strings here are byte strings (one char per byte, latin1) so round trips are byte-exact.

/** cpp-host parser limits: bigger or malformed input is treated as an empty list. */
export const MAX_PAIRS_BYTES = 1024 * 1024;
export const MAX_PAIRS_COUNT = 1024;

export type Pair = readonly [string, string];

export function pairsSize(pairs: readonly Pair[]): number {
  let size = 4;
  for (const [k, v] of pairs) size += 10 + k.length + v.length;
  return size;
}

/** Writes a byte string (chars 0–255) at `offset`; short strings by hand, which beats a native call. */
export function writeByteString(buf: Buffer, s: string, offset: number): number {
  const n = s.length;
  if (n > 32) return buf.write(s, offset, n, "latin1");
  for (let i = 0; i < n; i++) buf[offset + i] = s.charCodeAt(i);
  return n;
}

/** Serialized size of parallel key/value arrays (a header map) without building pairs. */
export function keyValuesSize(keys: readonly string[], values: readonly string[]): number {
  let size = 4;
  for (let i = 0; i < keys.length; i++) size += 10 + keys[i]!.length + values[i]!.length;
  return size;
}

/** Writes parallel key/value arrays in pair format (caller sized it with keyValuesSize). */
export function writeKeyValues(buf: Buffer, offset: number, keys: readonly string[], values: readonly string[]): void {
  const n = keys.length;
  buf.writeUInt32LE(n, offset);
  let lens = offset + 4;
  let data = lens + n * 8;
  for (let i = 0; i < n; i++) {
    const k = keys[i]!;
    const v = values[i]!;
    buf.writeUInt32LE(k.length, lens);
    buf.writeUInt32LE(v.length, lens + 4);
    lens += 8;
    data += writeByteString(buf, k, data);
    buf[data++] = 0;
    data += writeByteString(buf, v, data);
    buf[data++] = 0;
  }
}

/** Writes the serialization of `pairs` into `buf` at `offset` (caller sized it with pairsSize). */
export function writePairs(buf: Buffer, offset: number, pairs: readonly Pair[]): void {
  buf.writeUInt32LE(pairs.length, offset);
  let lens = offset + 4;
  let data = lens + pairs.length * 8;
  for (const [k, v] of pairs) {
    buf.writeUInt32LE(k.length, lens);
    buf.writeUInt32LE(v.length, lens + 4);
    lens += 8;
    data += buf.write(k, data, "latin1");
    buf[data++] = 0;
    data += buf.write(v, data, "latin1");
    buf[data++] = 0;
  }
}

export function serializePairs(pairs: readonly Pair[]): Uint8Array {
  const out = Buffer.alloc(pairsSize(pairs));
  writePairs(out, 0, pairs);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * Parses module-supplied pairs as current cpp-host does: oversize (> 1 MiB), more than 1024 pairs,
 * truncation, a missing NUL terminator or trailing bytes yield an empty list (never an error).
 */
export function parsePairs(bytes: Uint8Array): Pair[] {
  const n = bytes.byteLength;
  if (n < 4 || n > MAX_PAIRS_BYTES) return [];
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, n);
  const count = buf.readUInt32LE(0);
  if (count > MAX_PAIRS_COUNT) return [];
  let lens = 4;
  let data = 4 + count * 8;
  if (data > n) return [];
  const out: Pair[] = [];
  for (let i = 0; i < count; i++) {
    const kl = buf.readUInt32LE(lens);
    const vl = buf.readUInt32LE(lens + 4);
    lens += 8;
    if (data + kl + 1 > n || buf[data + kl] !== 0) return [];
    const k = buf.toString("latin1", data, data + kl);
    data += kl + 1;
    if (data + vl + 1 > n || buf[data + vl] !== 0) return [];
    const v = buf.toString("latin1", data, data + vl);
    data += vl + 1;
    out.push([k, v]);
  }
  if (data !== n) return [];
  return out;
}

const NON_ASCII = /[^\x00-\x7f]/;

/** Converts a JS (UTF-16) string to a byte string holding its UTF-8 bytes. */
export function toByteString(s: string): string {
  return NON_ASCII.test(s) ? Buffer.from(s, "utf8").toString("latin1") : s;
}

/** Converts a byte string holding UTF-8 back to a JS string. */
export function fromByteString(s: string): string {
  return NON_ASCII.test(s) ? Buffer.from(s, "latin1").toString("utf8") : s;
}
