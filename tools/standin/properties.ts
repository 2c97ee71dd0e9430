// Envoy attribute resolution for proxy_get_property (docs/proxy-wasm-host.md §2.3, §2.4, §7.4): path segments → typed value → bytes.
import { WasmResult } from "./abi.js";
import type { HeaderMap } from "./header-map.js";
import type { PropertyValue, StreamInfo } from "./http-filter.js";
import { serializePairs, toByteString } from "./pairs.js";

type V =
  | { t: "string"; v: string }
  | { t: "bytes"; v: Uint8Array }
  | { t: "int"; v: bigint }
  | { t: "uint"; v: bigint }
  | { t: "double"; v: number }
  | { t: "bool"; v: boolean }
  | { t: "duration"; v: bigint }
  | { t: "timestamp"; v: bigint }
  | { t: "map"; v: [string, V][] }
  | { t: "list"; v: V[] }
  | { t: "proto"; bytes: Uint8Array; fields: Map<string, V> }
  | { t: "object" }; // a CEL wrapper (request, source, …) that cannot be serialized whole

export interface NodeInfo {
  id: string;
  cluster: string;
  /** Flat string metadata (serialized as a google.protobuf.Struct). */
  metadata?: Record<string, string>;
}

export interface PropertyEnv {
  pluginName: string;
  rootId: string;
  vmId: string;
  node: NodeInfo;
  /** Stream attributes; undefined in root-context callbacks. */
  stream: StreamInfo | undefined;
  /** Request/response header maps as the calling filter currently sees them (null = pointer dropped). */
  requestHeaders: HeaderMap | null;
  responseHeaders: HeaderMap | null;
  responseTrailers: HeaderMap | null;
  nowMs: number;
}

const str = (v: string): V => ({ t: "string", v: toByteString(v) });
const int = (v: number | bigint): V => ({ t: "int", v: BigInt(v) });

// ---- minimal protobuf wire encoding for node / Struct ----
function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
function lenField(field: number, bytes: Uint8Array): number[] {
  return [...varint((field << 3) | 2), ...varint(bytes.length), ...bytes];
}
function structBytes(fields: Record<string, string>): Uint8Array {
  const out: number[] = [];
  for (const [k, v] of Object.entries(fields)) {
    const value = new Uint8Array(lenField(3, Buffer.from(v, "utf8"))); // Value.string_value = 3
    const entry = new Uint8Array([...lenField(1, Buffer.from(k, "utf8")), ...lenField(2, value)]);
    out.push(...lenField(1, entry)); // Struct.fields = 1 (map entry)
  }
  return new Uint8Array(out);
}
function nodeValue(node: NodeInfo): V {
  const out: number[] = [];
  if (node.id) out.push(...lenField(1, Buffer.from(node.id, "utf8")));
  if (node.cluster) out.push(...lenField(2, Buffer.from(node.cluster, "utf8")));
  const md = node.metadata ? structBytes(node.metadata) : undefined;
  if (md && md.length) out.push(...lenField(3, md));
  const fields = new Map<string, V>([["id", str(node.id)], ["cluster", str(node.cluster)]]);
  if (node.metadata) {
    fields.set("metadata", { t: "proto", bytes: md!, fields: new Map([["fields", { t: "map", v: Object.entries(node.metadata).map(([k, v]) => [toByteString(k), str(v)] as [string, V]) }]]) });
  }
  return { t: "proto", bytes: new Uint8Array(out), fields };
}

function fromUser(p: PropertyValue): V {
  if (typeof p === "string") return str(p);
  if (typeof p === "number") return Number.isInteger(p) ? int(p) : { t: "double", v: p };
  if (typeof p === "bigint") return int(p);
  if (typeof p === "boolean") return { t: "bool", v: p };
  if (p instanceof Uint8Array) return { t: "bytes", v: p };
  if (Array.isArray(p)) return { t: "list", v: (p as readonly string[]).map(str) };
  const o = p as Record<string, unknown>;
  if (typeof o["durationNs"] === "bigint") return { t: "duration", v: o["durationNs"] as bigint };
  if (typeof o["timestampNs"] === "bigint") return { t: "timestamp", v: o["timestampNs"] as bigint };
  if ("uint" in o) return { t: "uint", v: BigInt(o["uint"] as bigint) };
  return { t: "map", v: Object.entries(o).map(([k, v]) => [toByteString(k), str(String(v))] as [string, V]) };
}

function headersMap(h: HeaderMap): V {
  const merged = h.toObject();
  return { t: "map", v: Object.entries(merged).map(([k, v]) => [k, { t: "string", v }] as [string, V]) };
}

function splitHostPort(addr: string): { ip: string; port: number | undefined } {
  const i = addr.lastIndexOf(":");
  if (i < 0) return { ip: addr, port: undefined };
  const port = Number(addr.slice(i + 1));
  return { ip: addr.slice(0, i), port: Number.isInteger(port) ? port : undefined };
}

/** Resolves `segments` to a typed value; a number is a WasmResult error. */
function resolve(segments: string[], env: PropertyEnv): V | number {
  const [top, ...rest] = segments;
  if (top === undefined || top === "") return WasmResult.SerializationFailure;
  const s = env.stream;
  // Test-supplied attributes win (exact dotted name), e.g. "connection.mtls", "xds.route_name".
  if (s) {
    const joined = segments.join(".");
    const user = s.properties.get(joined) ?? s.properties.get(joined.replace(/^xds\./, "")) ?? s.properties.get(`xds.${joined}`);
    if (user !== undefined) return fromUser(user);
  }
  let base: V | undefined;
  let fieldsOf: ((name: string) => V | undefined) | undefined;
  switch (top) {
    case "plugin_name": base = str(env.pluginName); break;
    case "plugin_root_id": base = str(env.rootId); break;
    case "plugin_vm_id": base = str(env.vmId); break;
    case "node": base = nodeValue(env.node); break;
    case "xds":
      if (rest[0] === "node") return index(nodeValue(env.node), rest.slice(1));
      if (!s) return WasmResult.NotFound;
      return WasmResult.NotFound;
  }
  if (base) return index(base, rest);
  if (!s) return WasmResult.NotFound;
  switch (top) {
    case "request": {
      const h = env.requestHeaders;
      const hv = (name: string): V | undefined => {
        const v = h?.get(name);
        return v === undefined ? undefined : { t: "string", v };
      };
      fieldsOf = (f) => {
        switch (f) {
          case "path": return hv(":path");
          case "url_path": { const p = h?.get(":path"); return p === undefined ? undefined : { t: "string", v: p.split("?")[0]! }; }
          case "query": { const p = h?.get(":path"); if (p === undefined) return undefined; const q = p.indexOf("?"); return { t: "string", v: q < 0 ? "" : p.slice(q + 1) }; }
          case "host": return hv(":authority");
          case "scheme": return hv(":scheme");
          case "method": return hv(":method");
          case "referer": return hv("referer");
          case "useragent": return hv("user-agent");
          case "id": return hv("x-request-id");
          case "headers": return h ? headersMap(h) : undefined;
          case "protocol": return str(s.protocol);
          case "time": return { t: "timestamp", v: BigInt(Math.round(s.startMs * 1e6)) };
          case "headers_bytes": return h ? int(h.byteSize) : undefined;
          case "size": return int(s.requestBodyBytes);
          case "total_size": return int(s.requestBodyBytes + s.requestHeaders.byteSize);
          case "duration": return s.endMs === undefined ? undefined : { t: "duration", v: BigInt(Math.round((s.endMs - s.startMs) * 1e6)) };
          default: return undefined;
        }
      };
      break;
    }
    case "response": {
      fieldsOf = (f) => {
        const h = env.responseHeaders;
        switch (f) {
          case "code": return s.responseCode === undefined ? undefined : int(s.responseCode);
          case "code_details": return s.responseCodeDetails ? str(s.responseCodeDetails) : undefined;
          case "flags": return int(0);
          case "grpc_status": { const g = env.responseTrailers?.get("grpc-status") ?? h?.get("grpc-status"); return g === undefined ? undefined : int(Number(g)); }
          case "headers": return h ? headersMap(h) : undefined;
          case "trailers": return env.responseTrailers ? headersMap(env.responseTrailers) : undefined;
          case "size": return int(s.responseBodyBytes);
          case "headers_bytes": return h ? int(h.byteSize) : undefined;
          case "total_size": return int(s.responseBodyBytes + (s.responseHeaders?.byteSize ?? 0));
          default: return undefined;
        }
      };
      break;
    }
    case "source":
    case "destination": {
      const addr = top === "source" ? s.sourceAddress : s.destinationAddress;
      fieldsOf = (f) => {
        if (f === "address") return str(addr);
        if (f === "port") { const p = splitHostPort(addr).port; return p === undefined ? undefined : int(p); }
        return undefined;
      };
      break;
    }
    case "connection":
      fieldsOf = (f) => {
        if (f === "mtls") return { t: "bool", v: false };
        if (f === "id") return { t: "uint", v: BigInt(s.id) };
        return undefined;
      };
      break;
    case "connection_id": return index({ t: "uint", v: BigInt(s.id) }, rest);
    case "upstream": fieldsOf = () => undefined; break;
    case "metadata": return index({ t: "proto", bytes: new Uint8Array(0), fields: new Map() }, rest);
    case "filter_state": {
      const entries: [string, V][] = [...s.filterState].map(([k, v]) => [toByteString(k), { t: "bytes", v }]);
      return index({ t: "map", v: entries }, rest);
    }
    default: {
      // Unknown top-level name: the stream's filter state under "wasm.<name>".
      const fs = s.filterState.get(`wasm.${top}`);
      if (fs !== undefined && rest.length === 0) return { t: "bytes", v: fs };
      return WasmResult.NotFound;
    }
  }
  if (rest.length === 0) return { t: "object" };
  const field = fieldsOf(rest[0]!);
  if (field === undefined) return WasmResult.NotFound;
  return index(field, rest.slice(1));
}

function index(v: V, rest: string[]): V | number {
  let cur = v;
  for (const seg of rest) {
    if (cur.t === "map") {
      const hit = cur.v.find(([k]) => k === seg);
      if (!hit) return WasmResult.NotFound;
      cur = hit[1];
    } else if (cur.t === "list") {
      if (!/^\d+$/.test(seg)) return WasmResult.NotFound;
      const item = cur.v[Number(seg)];
      if (!item) return WasmResult.NotFound;
      cur = item;
    } else if (cur.t === "proto") {
      const f = cur.fields.get(seg);
      if (!f) return WasmResult.NotFound;
      cur = f;
    } else return WasmResult.NotFound;
  }
  return cur;
}

function le64(v: bigint, signed: boolean): Uint8Array {
  const b = Buffer.alloc(8);
  if (signed) b.writeBigInt64LE(BigInt.asIntN(64, v));
  else b.writeBigUInt64LE(BigInt.asUintN(64, v));
  return b;
}

/** Envoy serializeValue (§2.4); a number is a WasmResult error. */
function serialize(v: V): Uint8Array | number {
  switch (v.t) {
    case "string": return Buffer.from(v.v, "latin1");
    case "bytes": return v.v;
    case "int": case "duration": case "timestamp": return le64(v.v, true);
    case "uint": return le64(v.v, false);
    case "double": { const b = Buffer.alloc(8); b.writeDoubleLE(v.v); return b; }
    case "bool": return new Uint8Array([v.v ? 1 : 0]);
    case "proto": return v.bytes;
    case "map": {
      const pairs: [string, string][] = [];
      for (const [k, x] of v.v) {
        const ser = serialize(x);
        if (typeof ser === "number") return ser;
        pairs.push([k, Buffer.from(ser).toString("latin1")]);
      }
      return serializePairs(pairs);
    }
    case "list": {
      const pairs: [string, string][] = [];
      for (const x of v.v) {
        const ser = serialize(x);
        if (typeof ser === "number") return ser;
        pairs.push([Buffer.from(ser).toString("latin1"), ""]);
      }
      return serializePairs(pairs);
    }
    default: return WasmResult.SerializationFailure;
  }
}

/** Resolves a raw property path (segments joined by NUL, a trailing NUL tolerated) to serialized bytes. */
export function getProperty(rawPath: string, env: PropertyEnv): Uint8Array | number {
  if (rawPath.length === 0) return WasmResult.SerializationFailure;
  const path = rawPath.endsWith("\0") ? rawPath.slice(0, -1) : rawPath;
  const v = resolve(path.split("\0"), env);
  return typeof v === "number" ? v : serialize(v);
}
