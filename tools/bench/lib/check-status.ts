// Dependency-free pieces of the ext_authz Check wire format: the method path, gRPC frames, and the
// CheckResponse status code read straight from the bytes (cheap enough for the load generator).

export const CHECK_PATH = "/envoy.service.auth.v3.Authorization/Check";

/** A gRPC length-prefixed message frame (uncompressed): the body h2load sends. */
export function grpcFrame(message: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt8(0, 0);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

function readVarint(buf: Buffer, at: number): [value: number, next: number] {
  let value = 0;
  let shift = 0;
  let i = at;
  for (;;) {
    if (i >= buf.length || shift > 49) throw new RangeError("truncated varint");
    const b = buf[i++]!;
    value += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return [value, i];
    shift += 7;
  }
}

/** Index just past the field value at `at` of the given wire type. */
function skipField(buf: Buffer, wire: number, at: number): number {
  if (wire === 0) return readVarint(buf, at)[1];
  if (wire === 1) return at + 8;
  if (wire === 5) return at + 4;
  if (wire === 2) {
    const [len, start] = readVarint(buf, at);
    return start + len;
  }
  throw new RangeError(`unsupported wire type ${wire}`);
}

/** Finds field `field` (length-delimited or varint) at the top level of `buf`. */
function findField(buf: Buffer, field: number): { wire: number; at: number } | undefined {
  let i = 0;
  while (i < buf.length) {
    const [key, after] = readVarint(buf, i);
    const wire = key & 7;
    if (Math.floor(key / 8) === field) return { wire, at: after };
    i = skipField(buf, wire, after);
  }
  return undefined;
}

/**
 * The google.rpc status code of a serialized CheckResponse (field 1 `status`, its field 1 `code`).
 * An absent status or code is 0 (OK).
 */
export function checkResponseCode(buf: Buffer): number {
  const status = findField(buf, 1);
  if (!status || status.wire !== 2) return 0;
  const [len, start] = readVarint(buf, status.at);
  const inner = buf.subarray(start, start + len);
  const code = findField(inner, 1);
  return code && code.wire === 0 ? readVarint(inner, code.at)[0] : 0;
}
