// The cache key: SHA-256 over a length-prefixed encoding of the epoch, the shape and the request's
// values of the shape's attributes (README "The key"). Pure: works on any RequestView.
import { RequestView } from "../lib/request-view";
import { Sha256 } from "../lib/sha256";

const DOMAIN = "meshward-authz-cache/1";
const METHOD = String.UTF8.encode(":method");
const SCHEME = String.UTF8.encode(":scheme");
const AUTHORITY = String.UTF8.encode(":authority");
const MAX_SHAPE_ATTRIBUTES = 32;

/** A parsed key shape: the header names, whether the query is keyed (`q`) and the source IP (`a`). */
export class Shape {
  text: string = "";
  headers: ArrayBuffer[] = [];
  query: bool = false;
  address: bool = false;
  /** The hasher state after the constant prefix (domain, epoch, shape) of `prefixEpoch`'s keys. */
  prefix: Sha256 | null = null;
  prefixEpoch: string = "";
  /** A number naming (this shape, `idEpoch`) in this VM, never reused (see shapeEpochId). */
  id: u32 = 0;
  idEpoch: string = "";
}

let lastShapeEpochId: u32 = 0;

/**
 * A number for (`shape`, `epoch`), unique in this VM: two requests with the same number and the same
 * key material (keyFields) have the same SHA-256 key. Strings are compared by identity first, so a
 * lookup under the epoch the state view holds costs one comparison.
 */
export function shapeEpochId(shape: Shape, epoch: string): u32 {
  if (shape.id == 0 || shape.idEpoch != epoch) {
    shape.id = ++lastShapeEpochId;
    shape.idEpoch = epoch;
  }
  return shape.id;
}

/** Parses a shape (`k` of a directive, joined by ","); null when any attribute is malformed. */
export function parseShape(attrs: string[]): Shape | null {
  if (attrs.length > MAX_SHAPE_ATTRIBUTES) return null;
  const s = new Shape();
  for (let i = 0; i < attrs.length; i++) {
    const a = attrs[i];
    if (i > 0 && a <= attrs[i - 1]) return null; // sorted and unique: one text per shape
    if (a == "q") s.query = true;
    else if (a == "a") s.address = true;
    else if (a.startsWith("h:") && a.length > 2 && a.length <= 258 && isHeaderName(a.substring(2))) s.headers.push(String.UTF8.encode(a.substring(2)));
    else return null;
  }
  s.text = attrs.join(",");
  return s;
}

/** Parses the stored text form of a shape ("" = no extra attributes). */
export function parseShapeText(text: string): Shape | null {
  if (text.length == 0) return parseShape([]);
  return parseShape(text.split(","));
}

function isHeaderName(s: string): bool {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x5f || c == 0x2e || c == 0x21 ||
      c == 0x23 || c == 0x24 || c == 0x25 || c == 0x26 || c == 0x27 || c == 0x2a || c == 0x2b || c == 0x5e || c == 0x60 ||
      c == 0x7c || c == 0x7e;
    if (!ok) return false;
  }
  return true;
}

const hasher = new Sha256();
const PATH = String.UTF8.encode(":path");

/**
 * A sink for the key's fields: the SHA-256 hasher, or the local table's key material (local.ts).
 * Both receive the same calls in the same order, so equal material means an equal digest.
 */
function viewField<S>(h: S, view: RequestView, name: ArrayBuffer): void {
  if (view.find(name)) {
    h.u32(1);
    h.field(view.foundPtr, view.foundLen);
  } else {
    h.u32(0);
  }
}

/** The hasher state after the domain, the epoch and the shape text: computed once per shape and epoch. */
function prefixOf(shape: Shape, epoch: string): Sha256 {
  let p = shape.prefix;
  if (p === null || shape.prefixEpoch != epoch) {
    p = new Sha256();
    p.fieldString(DOMAIN);
    p.fieldString(epoch);
    p.fieldString(shape.text);
    shape.prefix = p;
    shape.prefixEpoch = epoch;
  }
  return p;
}

/** Writes the 32-byte key of `view` under `shape` in `epoch` at `out`; `sourceIp` is used only when the shape has `a`. */
export function cacheKeyInto(epoch: string, shape: Shape, view: RequestView, sourceIp: string, out: usize): void {
  const h = hasher;
  h.copyFrom(prefixOf(shape, epoch));
  keyFields<Sha256>(h, shape, view, sourceIp);
  h.digestInto(out);
}

/**
 * Feeds `h` the request's values of `shape`'s attributes, in the key's encoding: length-prefixed
 * fields, header values counted then listed, so the encoding is prefix-free. Reads the header bytes
 * in place (no decoding, no allocation per request).
 */
export function keyFields<S>(h: S, shape: Shape, view: RequestView, sourceIp: string): void {
  viewField(h, view, METHOD);
  viewField(h, view, SCHEME);
  viewField(h, view, AUTHORITY);
  // The whole `:path` with `q`, else up to its query or fragment ("" when absent).
  let ptr: usize = 0;
  let len: u32 = 0;
  if (view.find(PATH)) {
    ptr = view.foundPtr;
    len = view.foundLen;
    if (!shape.query) {
      for (let i: u32 = 0; i < len; i++) {
        const c = load<u8>(ptr + <usize>i);
        if (c == 0x3f || c == 0x23) {
          len = i;
          break;
        }
      }
    }
  }
  h.field(ptr, len);
  for (let i = 0; i < shape.headers.length; i++) {
    const name = unchecked(shape.headers[i]);
    // The count of values (absent = 0), then every value in order: a prefix-free encoding.
    let count: u32 = 0;
    let at = view.findFrom(name, 0);
    while (at >= 0) {
      count++;
      at = view.findFrom(name, at + 1);
    }
    h.u32(count);
    at = view.findFrom(name, 0);
    while (at >= 0) {
      h.field(view.foundPtr, view.foundLen);
      at = view.findFrom(name, at + 1);
    }
  }
  if (shape.address) h.fieldString(sourceIp);
}

/** The 32-byte key of `view` under `shape` in `epoch`, in a new buffer. */
export function cacheKey(epoch: string, shape: Shape, view: RequestView, sourceIp: string): ArrayBuffer {
  const out = new ArrayBuffer(32);
  cacheKeyInto(epoch, shape, view, sourceIp, changetype<usize>(out));
  return out;
}
