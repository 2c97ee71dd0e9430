// The dynamic metadata ext_authz set on a miss, taken from Envoy's `metadata` property (a
// core.v3.Metadata message in protobuf wire format) and turned into one header per configured key,
// `<prefix><key in lower case>: base64(google.protobuf.Value)`, that header_to_metadata turns back
// into the same metadata on a hit (README "Dynamic metadata"). Pure.
import { base64Encode } from "../lib/base64";

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

/** A protobuf wire reader over linear memory; `ok` turns false on anything malformed. */
class Reader {
  ok: bool = true;
  wire: u32 = 0;
  constructor(public p: usize, public end: usize) {}

  varint(): u64 {
    let v: u64 = 0;
    for (let shift: u64 = 0; shift < 64; shift += 7) {
      if (this.p >= this.end) break;
      const b = load<u8>(this.p++);
      v |= (<u64>(b & 0x7f)) << shift;
      if (b < 0x80) return v;
    }
    this.ok = false;
    return 0;
  }

  /** The next field's number (its wire type in `wire`), or 0 at the end or on error. */
  field(): u32 {
    if (!this.ok || this.p >= this.end) return 0;
    const tag = this.varint();
    this.wire = <u32>(tag & 7);
    const n = <u32>(tag >> 3);
    if (n == 0) this.ok = false;
    return this.ok ? n : 0;
  }

  /** The length of a length-delimited field; its bytes start at `p`. */
  length(): usize {
    const len = this.varint();
    if (!this.ok || len > <u64>(this.end - this.p)) {
      this.ok = false;
      return 0;
    }
    return <usize>len;
  }

  skip(): void {
    if (this.wire == WIRE_VARINT) {
      this.varint();
    } else if (this.wire == WIRE_LEN) {
      const len = this.length(); // read first: `p += length()` would add to the p before the length
      this.p += len;
    } else if (this.wire == WIRE_FIXED64 && this.end - this.p >= 8) {
      this.p += 8;
    } else if (this.wire == WIRE_FIXED32 && this.end - this.p >= 4) {
      this.p += 4;
    } else {
      this.ok = false;
    }
  }
}

/** Walks the entries of a protobuf map in field 1 (Metadata.filter_metadata, Struct.fields). */
class MapEntries {
  r: Reader;
  keyPtr: usize = 0;
  keyLen: usize = 0;
  valuePtr: usize = 0;
  valueLen: usize = 0;

  constructor(ptr: usize, len: usize) {
    this.r = new Reader(ptr, ptr + len);
  }

  get ok(): bool {
    return this.r.ok;
  }

  next(): bool {
    const r = this.r;
    for (let n = r.field(); n != 0; n = r.field()) {
      if (n != 1 || r.wire != WIRE_LEN) {
        r.skip();
        continue;
      }
      const len = r.length();
      if (!r.ok) return false;
      const e = new Reader(r.p, r.p + len);
      r.p += len;
      this.keyLen = 0;
      this.valueLen = 0;
      this.valuePtr = e.p;
      for (let f = e.field(); f != 0; f = e.field()) {
        if (e.wire != WIRE_LEN || (f != 1 && f != 2)) {
          e.skip();
          continue;
        }
        const l = e.length();
        if (f == 1) {
          this.keyPtr = e.p;
          this.keyLen = l;
        } else {
          this.valuePtr = e.p;
          this.valueLen = l;
        }
        e.p += l;
      }
      if (!e.ok) {
        r.ok = false;
        return false;
      }
      return true;
    }
    return false;
  }

  keyIs(name: ArrayBuffer): bool {
    return this.keyLen == <usize>name.byteLength && memory.compare(this.keyPtr, changetype<usize>(name), this.keyLen) == 0;
  }
}

/** The metadata headers of one cached decision: names and values, UTF-8. */
export class MetadataHeaders {
  names: ArrayBuffer[] = [];
  values: ArrayBuffer[] = [];
  /** Fields of the namespace that no configured key names (not replayed). */
  unknown: i32 = 0;
}

/**
 * The headers for `namespace`'s fields in `metadata` (Envoy's `metadata` property); a field is
 * replayed when its key is in `keys` (header `headerNames[i]`). Null when the bytes are malformed.
 */
export function metadataHeaders(metadata: ArrayBuffer, namespace: ArrayBuffer, keys: ArrayBuffer[], headerNames: ArrayBuffer[]): MetadataHeaders | null {
  const out = new MetadataHeaders();
  const ns = new MapEntries(changetype<usize>(metadata), <usize>metadata.byteLength);
  while (ns.next()) {
    if (!ns.keyIs(namespace)) continue;
    const fields = new MapEntries(ns.valuePtr, ns.valueLen);
    while (fields.next()) {
      let k = -1;
      for (let i = 0; i < keys.length; i++) if (fields.keyIs(keys[i])) k = i;
      if (k < 0) {
        out.unknown++;
        continue;
      }
      out.names.push(headerNames[k]);
      out.values.push(base64Encode(fields.valuePtr, fields.valueLen));
    }
    if (!fields.ok) return null;
  }
  if (!ns.ok) return null;
  return out;
}
