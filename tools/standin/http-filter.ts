// The contract between the stand-in's HTTP filter chain and its filters (wasm plugins, ext_authz, router, …),
// modelled on Envoy's Http::StreamDecoderFilter/StreamEncoderFilter and their callbacks.
import type { DataStatus, HeadersStatus, LogLevelName, TrailersStatus } from "./abi.js";
import type { HeaderMap } from "./header-map.js";
import type { Pair } from "./pairs.js";

export type { DataStatus, HeadersStatus, TrailersStatus };

/** A log line captured from a plugin (proxy_log or WASI stdout/stderr). */
export interface LogEntry {
  level: LogLevelName;
  message: string;
  plugin: string;
  rootId: string;
  vmId: string;
  worker: number;
  contextId: number;
  streamId: number | undefined;
}

/** Property value supplied by a test (serialized per docs/proxy-wasm-host.md §2.4). */
export type PropertyValue =
  | string
  | number
  | bigint
  | boolean
  | Uint8Array
  | readonly string[]
  | { readonly [key: string]: string }
  | { readonly durationNs: bigint }
  | { readonly timestampNs: bigint }
  | { readonly uint: bigint | number };

/** A mutable body buffer; filters may replace `bytes`. */
export class BodyBuffer {
  constructor(public bytes: Uint8Array) {}
  get length(): number {
    return this.bytes.byteLength;
  }
  append(more: Uint8Array): void {
    if (more.byteLength === 0) return;
    const b = new Uint8Array(this.bytes.byteLength + more.byteLength);
    b.set(this.bytes, 0);
    b.set(more, this.bytes.byteLength);
    this.bytes = b;
  }
}

export interface LocalReply {
  status: number;
  body: Uint8Array;
  /** Extra headers (byte strings, keys lower-cased). */
  headers: readonly Pair[];
  details: string;
  /** gRPC status 0–16 to answer gRPC requests with; undefined = derived from the HTTP status. */
  grpcStatus?: number | undefined;
  /** Name of the filter that sent it (or "router"/"host"). */
  from: string;
}

export interface RouteCacheClear {
  filter: string;
  /** "foreign_function" (clear_route_cache), "implicit" (old Envoy header mutation), or another source. */
  via: string;
  /** Snapshot of the request headers when the cache was cleared. */
  headers: Record<string, string>;
}

/** Per-stream information shared by all filters of a stream (Envoy's StreamInfo + filter state). */
export interface StreamInfo {
  readonly id: number;
  readonly startMs: number;
  /** "ip:port" of the downstream peer. */
  readonly sourceAddress: string;
  readonly destinationAddress: string;
  readonly protocol: string;
  readonly requestId: string;
  /** Extra attributes by dotted name (e.g. "connection.mtls", "xds.route_name"). */
  readonly properties: ReadonlyMap<string, PropertyValue>;
  /** Filter state (wasm set_property stores under "wasm." + path). */
  readonly filterState: Map<string, Uint8Array>;
  readonly routeCacheClears: RouteCacheClear[];
  readonly isGrpc: boolean;
  /** Request headers as they currently are (the live map). */
  readonly requestHeaders: HeaderMap;
  requestTrailers: HeaderMap | undefined;
  responseHeaders: HeaderMap | undefined;
  responseTrailers: HeaderMap | undefined;
  responseCode: number | undefined;
  responseCodeDetails: string;
  requestBodyBytes: number;
  responseBodyBytes: number;
  /** Set once the stream finished (for request.duration). */
  endMs: number | undefined;
  /** Plugin log lines emitted in this stream's contexts (first 1000). */
  readonly logs: LogEntry[];
  /** Dynamic metadata by filter namespace (set by e.g. ext_authz). */
  readonly dynamicMetadata: Map<string, Record<string, unknown>>;
}

/** What a filter may ask of the chain (Envoy's decoder/encoder filter callbacks). */
export interface FilterCallbacks {
  readonly stream: StreamInfo;
  /** Resumes decoding after this filter stopped it (Envoy continueDecoding). */
  continueDecoding(): void;
  continueEncoding(): void;
  /** Sends a local reply (through the encoder chain if the response has not started). */
  sendLocalReply(reply: LocalReply): void;
  /** Resets the stream (no response is sent downstream). */
  resetStream(details: string): void;
  clearRouteCache(via: string): void;
}

export interface HttpFilter {
  readonly name: string;
  decodeHeaders(headers: HeaderMap, endStream: boolean): HeadersStatus;
  decodeData(data: BodyBuffer, endStream: boolean): DataStatus;
  decodeTrailers(trailers: HeaderMap): TrailersStatus;
  encodeHeaders(headers: HeaderMap, endStream: boolean): HeadersStatus;
  encodeData(data: BodyBuffer, endStream: boolean): DataStatus;
  encodeTrailers(trailers: HeaderMap): TrailersStatus;
  /** Stream finished: access log then destroy (HTTP: on_log → on_done → on_delete for wasm). */
  onStreamComplete(): void;
  /** Whether the encoder chain should include this filter for a local reply (default true). */
  wantsLocalReplyEncoding?(): boolean;
}

export interface HttpFilterFactory {
  createFilter(callbacks: FilterCallbacks): HttpFilter;
}
