// A direct protobuf decoder for the CheckRequest fields the pipeline reads (attributes-from-check-request's
// CheckRequestObject), skipping everything else. proto-loader decodes the whole message into protobufjs
// objects and then converts them again with toObject; this reads the bytes once. Field numbers are from
// envoy/service/auth/v3/{external_auth,attribute_context}.proto and config/core/v3/{base,address}.proto;
// test/authz-server/decode-check-request.test.ts compares the result with proto-loader's.
import type { CheckRequestObject } from "../attributes/from-check-request.js";

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type Attrs = NonNullable<CheckRequestObject["attributes"]>;
type Peer = NonNullable<Attrs["source"]>;
type Http = NonNullable<NonNullable<Attrs["request"]>["http"]>;
type HeaderValue = NonNullable<NonNullable<Http["headerMap"]>["headers"]>[number];

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_START_GROUP = 3;
const WIRE_END_GROUP = 4;
const WIRE_FIXED32 = 5;
const MAX_GROUP_DEPTH = 100;

class Reader {
  pos = 0;
  /** The whole message as latin1, decoded once: an ASCII field is then a cheap substring of it (one native call per message, not per field). */
  private readonly latin1: string;
  constructor(readonly buf: Buffer) {
    this.latin1 = buf.toString("latin1");
  }

  varint(): number {
    const buf = this.buf;
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= buf.length) throw new RangeError("CheckRequest: truncated varint");
      const b = buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 0x80;
    }
    throw new RangeError("CheckRequest: varint longer than 10 bytes");
  }

  /** The end offset of a length-delimited field starting here. */
  end(): number {
    const len = this.varint();
    const end = this.pos + len;
    if (end > this.buf.length) throw new RangeError("CheckRequest: length beyond the message");
    return end;
  }

  string(): string {
    const end = this.end();
    const start = this.pos;
    this.pos = end;
    const buf = this.buf;
    for (let i = start; i < end; i++) if (buf[i]! >= 0x80) return buf.toString("utf8", start, end);
    return this.latin1.slice(start, end);
  }

  bytes(): Buffer {
    const end = this.end();
    const b = Buffer.from(this.buf.subarray(this.pos, end));
    this.pos = end;
    return b;
  }

  skip(wire: number, field: number): void {
    switch (wire) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_FIXED64:
        this.advance(8);
        return;
      case WIRE_LEN:
        this.pos = this.end();
        return;
      case WIRE_FIXED32:
        this.advance(4);
        return;
      case WIRE_START_GROUP: {
        // Iterative, so that hostile nesting cannot exhaust the stack.
        const open = [field];
        while (open.length > 0) {
          if (open.length > MAX_GROUP_DEPTH) throw new RangeError("CheckRequest: groups nested too deeply");
          const tag = this.varint();
          const w = tag & 7;
          if (w === WIRE_END_GROUP) {
            if (tag >>> 3 !== open.pop()) throw new RangeError("CheckRequest: mismatched end group");
          } else if (w === WIRE_START_GROUP) open.push(tag >>> 3);
          else this.skip(w, tag >>> 3);
        }
        return;
      }
      default:
        throw new RangeError(`CheckRequest: invalid wire type ${wire}`);
    }
  }

  private advance(n: number): void {
    if (this.pos + n > this.buf.length) throw new RangeError("CheckRequest: truncated field");
    this.pos += n;
  }
}

/** Decodes a serialized `envoy.service.auth.v3.CheckRequest`; throws a RangeError on malformed bytes. */
export function decodeCheckRequest(buf: Buffer): CheckRequestObject {
  const r = new Reader(buf);
  const out: Mutable<CheckRequestObject> = {};
  while (r.pos < buf.length) {
    const tag = r.varint();
    if (tag === ((1 << 3) | WIRE_LEN)) out.attributes = attributeContext(r, r.end());
    else r.skip(tag & 7, tag >>> 3);
  }
  return out;
}

function attributeContext(r: Reader, end: number): Attrs {
  const a: Mutable<Attrs> = {};
  while (r.pos < end) {
    const tag = r.varint();
    switch (tag) {
      case (1 << 3) | WIRE_LEN:
        a.source = peer(r, r.end());
        break;
      case (2 << 3) | WIRE_LEN:
        a.destination = peer(r, r.end());
        break;
      case (4 << 3) | WIRE_LEN:
        a.request = request(r, r.end());
        break;
      case (10 << 3) | WIRE_LEN:
        a.contextExtensions ??= {};
        mapEntry(r, r.end(), a.contextExtensions);
        break;
      default:
        r.skip(tag & 7, tag >>> 3);
    }
  }
  checkEnd(r, end);
  return a;
}

function peer(r: Reader, end: number): Peer {
  const p: Mutable<Peer> = {};
  while (r.pos < end) {
    const tag = r.varint();
    switch (tag) {
      case (1 << 3) | WIRE_LEN:
        p.address = address(r, r.end());
        break;
      case (4 << 3) | WIRE_LEN:
        p.principal = r.string();
        break;
      case (5 << 3) | WIRE_LEN:
        p.certificate = r.string();
        break;
      default:
        r.skip(tag & 7, tag >>> 3);
    }
  }
  checkEnd(r, end);
  return p;
}

function address(r: Reader, end: number): NonNullable<Peer["address"]> {
  const a: Mutable<NonNullable<Peer["address"]>> = {};
  while (r.pos < end) {
    const tag = r.varint();
    // socket_address (1) and pipe (2) are members of one oneof: the last one on the wire wins.
    if (tag === ((1 << 3) | WIRE_LEN)) {
      a.socketAddress = singleString(r, r.end(), 2, "address");
      delete a.pipe;
    } else if (tag === ((2 << 3) | WIRE_LEN)) {
      a.pipe = singleString(r, r.end(), 1, "path");
      delete a.socketAddress;
    } else r.skip(tag & 7, tag >>> 3);
  }
  checkEnd(r, end);
  return a;
}

/** A message of which only one string field is read (SocketAddress.address, Pipe.path). */
function singleString<K extends string>(r: Reader, end: number, field: number, name: K): { [P in K]?: string } {
  const o: { [P in K]?: string } = {};
  const want = (field << 3) | WIRE_LEN;
  while (r.pos < end) {
    const tag = r.varint();
    if (tag === want) o[name] = r.string();
    else r.skip(tag & 7, tag >>> 3);
  }
  checkEnd(r, end);
  return o;
}

function request(r: Reader, end: number): NonNullable<Attrs["request"]> {
  const q: Mutable<NonNullable<Attrs["request"]>> = {};
  while (r.pos < end) {
    const tag = r.varint();
    if (tag === ((2 << 3) | WIRE_LEN)) q.http = httpRequest(r, r.end());
    else r.skip(tag & 7, tag >>> 3);
  }
  checkEnd(r, end);
  return q;
}

function httpRequest(r: Reader, end: number): Http {
  const h: Mutable<Http> = {};
  while (r.pos < end) {
    const tag = r.varint();
    switch (tag) {
      case (2 << 3) | WIRE_LEN:
        h.method = r.string();
        break;
      case (3 << 3) | WIRE_LEN:
        h.headers ??= {};
        mapEntry(r, r.end(), h.headers);
        break;
      case (4 << 3) | WIRE_LEN:
        h.path = r.string();
        break;
      case (5 << 3) | WIRE_LEN:
        h.host = r.string();
        break;
      case (6 << 3) | WIRE_LEN:
        h.scheme = r.string();
        break;
      case (10 << 3) | WIRE_LEN:
        h.protocol = r.string();
        break;
      case (13 << 3) | WIRE_LEN:
        h.headerMap = headerMap(r, r.end());
        break;
      default:
        r.skip(tag & 7, tag >>> 3);
    }
  }
  checkEnd(r, end);
  return h;
}

function headerMap(r: Reader, end: number): NonNullable<Http["headerMap"]> {
  const headers: HeaderValue[] = [];
  while (r.pos < end) {
    const tag = r.varint();
    if (tag === ((1 << 3) | WIRE_LEN)) headers.push(headerValue(r, r.end()));
    else r.skip(tag & 7, tag >>> 3);
  }
  checkEnd(r, end);
  return { headers };
}

function headerValue(r: Reader, end: number): HeaderValue {
  const v: Mutable<HeaderValue> = {};
  while (r.pos < end) {
    const tag = r.varint();
    if (tag === ((1 << 3) | WIRE_LEN)) v.key = r.string();
    else if (tag === ((2 << 3) | WIRE_LEN)) v.value = r.string();
    else if (tag === ((3 << 3) | WIRE_LEN)) v.rawValue = r.bytes();
    else r.skip(tag & 7, tag >>> 3);
  }
  checkEnd(r, end);
  return v;
}

/** One `map<string, string>` entry (key 1, value 2; missing ones are ""); a repeated key keeps the last value. */
function mapEntry(r: Reader, end: number, into: Record<string, string>): void {
  let key = "";
  let value = "";
  while (r.pos < end) {
    const tag = r.varint();
    if (tag === ((1 << 3) | WIRE_LEN)) key = r.string();
    else if (tag === ((2 << 3) | WIRE_LEN)) value = r.string();
    else r.skip(tag & 7, tag >>> 3);
  }
  checkEnd(r, end);
  // protobufjs assigns map entries with `obj[key] = value`, which drops `__proto__`: so do we.
  if (key !== "__proto__") into[key] = value;
}

function checkEnd(r: Reader, end: number): void {
  if (r.pos !== end) throw new RangeError("CheckRequest: a field overruns its message");
}
