// Drives one HTTP filter chain per stream the way Envoy's FilterManager does: decoder filters in order,
// encoder filters in reverse, pause/resume, buffering, local replies and stream completion (log, destroy).
import { randomUUID } from "node:crypto";
import type { DataStatus, HeadersStatus, TrailersStatus } from "./abi.js";
import type { Clock } from "./clock.js";
import { HeaderMap, type HeaderInit } from "./header-map.js";
import {
  BodyBuffer, type FilterCallbacks, type HttpFilter, type HttpFilterFactory, type LocalReply, type PropertyValue,
  type StreamInfo,
} from "./http-filter.js";
import { fromByteString, toByteString } from "./pairs.js";

export type Body = string | Uint8Array;

/** A request as a test describes it; the chain adds what Envoy's connection manager adds. */
export interface RequestSpec {
  method?: string;
  path?: string;
  /** Defaults to the `host` header, else "example.com". */
  authority?: string;
  scheme?: "http" | "https";
  headers?: HeaderInit;
  /** Body; an array is sent as several data frames. */
  body?: Body | readonly Body[];
  trailers?: HeaderInit;
  /** Downstream peer "ip:port" (default "10.0.0.1:40000"). */
  source?: string;
  /** Local address "ip:port" (default "10.0.0.2:8080"). */
  destination?: string;
  protocol?: "HTTP/1.0" | "HTTP/1.1" | "HTTP/2" | "HTTP/3";
  /** Attributes by dotted name, e.g. { "connection.mtls": true, "connection.uri_san_peer_certificate": "spiffe://…" }. */
  properties?: Record<string, PropertyValue>;
  /** x-request-id (default: a random UUID). */
  requestId?: string;
  /** Do not add x-request-id / x-forwarded-proto / :scheme (raw header map). */
  raw?: boolean;
}

export interface UpstreamRequest {
  headers: HeaderMap;
  body: Uint8Array;
  trailers: HeaderMap | undefined;
  stream: StreamInfo;
}

export interface UpstreamResponse {
  status: number;
  headers?: HeaderInit;
  body?: Body | readonly Body[];
  trailers?: HeaderInit;
}

export type Upstream = (req: UpstreamRequest) => UpstreamResponse | Promise<UpstreamResponse>;

export interface StreamResult {
  /** The local reply sent by a filter or the host, if any. */
  localReply: LocalReply | undefined;
  /** The request as it reached the upstream; undefined when the upstream was never contacted. */
  upstreamRequest: { headers: HeaderMap; body: Uint8Array; trailers: HeaderMap | undefined } | undefined;
  /** Response as sent downstream (undefined if the stream was reset before response headers). */
  responseStatus: number | undefined;
  responseHeaders: HeaderMap | undefined;
  responseBody: Uint8Array;
  responseBodyText: string;
  responseTrailers: HeaderMap | undefined;
  routeCacheClears: StreamInfo["routeCacheClears"];
  reset: string | undefined;
  /** Plugin log lines emitted in this stream's contexts. */
  logs: StreamInfo["logs"];
  stream: StreamInfo;
}

type Frame =
  | { kind: "headers"; map: HeaderMap; eos: boolean }
  | { kind: "data"; buf: BodyBuffer; eos: boolean }
  | { kind: "trailers"; map: HeaderMap };

/** One direction (decode or encode) through a sequence of filter slots, ending in a sink. */
class Direction {
  private readonly inbox: Frame[][];
  private readonly held: Frame[][];
  private readonly buffered: (BodyBuffer | null)[];
  private readonly bufferedEos: boolean[];
  private readonly stopped: boolean[];
  private readonly busy: boolean[];
  private readonly resumeRequested: boolean[];
  aborted = false;

  constructor(
    private readonly slots: number,
    private readonly deliver: (pos: number, f: Frame) => HeadersStatus | DataStatus | TrailersStatus,
    private readonly sink: (f: Frame) => void,
  ) {
    this.inbox = [];
    this.held = [];
    this.buffered = [];
    this.bufferedEos = [];
    this.stopped = [];
    this.busy = [];
    this.resumeRequested = [];
    for (let i = 0; i < slots; i++) {
      this.inbox.push([]);
      this.held.push([]);
      this.buffered.push(null);
      this.bufferedEos.push(false);
      this.stopped.push(false);
      this.busy.push(false);
      this.resumeRequested.push(false);
    }
  }

  isStopped(pos: number): boolean {
    return this.stopped[pos]!;
  }

  /** Index of the first stopped slot, or -1. */
  stoppedAt(): number {
    return this.stopped.indexOf(true);
  }

  push(pos: number, f: Frame): void {
    if (this.aborted) return;
    if (pos >= this.slots) {
      this.sink(f);
      return;
    }
    this.inbox[pos]!.push(f);
    this.process(pos);
  }

  private process(pos: number): void {
    if (this.busy[pos]) return;
    this.busy[pos] = true;
    try {
      const inbox = this.inbox[pos]!;
      while (!this.aborted && !this.stopped[pos] && inbox.length > 0) {
        const f = inbox.shift()!;
        if (f.kind === "headers") {
          const st = this.deliver(pos, f) as HeadersStatus;
          if (this.aborted) return;
          if (st === "Continue" || st === "ContinueAndEndStream") this.push(pos + 1, f);
          else {
            this.held[pos]!.push(f);
            if (st !== "StopIteration") this.stopped[pos] = true;
          }
        } else if (f.kind === "data") {
          let buf = f.buf;
          const prev = this.buffered[pos];
          if (prev) {
            prev.append(f.buf.bytes);
            buf = prev;
          }
          const frame: Frame = { kind: "data", buf, eos: f.eos };
          const st = this.deliver(pos, frame) as DataStatus;
          if (this.aborted) return;
          if (st === "Continue") {
            this.buffered[pos] = null;
            this.flushHeld(pos);
            this.push(pos + 1, frame);
          } else if (st !== "StopIterationAndBuffer") {
            // NoBuffer / Watermark: this chunk is held; the next chunk is delivered on its own.
            this.buffered[pos] = null;
            this.held[pos]!.push(frame);
          } else {
            this.buffered[pos] = buf;
            this.bufferedEos[pos] = f.eos;
          }
        } else {
          const buf = this.buffered[pos];
          if (buf) {
            this.held[pos]!.push({ kind: "data", buf, eos: false });
            this.buffered[pos] = null;
          }
          const st = this.deliver(pos, f) as TrailersStatus;
          if (this.aborted) return;
          if (st === "Continue") {
            this.flushHeld(pos);
            this.push(pos + 1, f);
          } else {
            this.held[pos]!.push(f);
            this.stopped[pos] = true;
          }
        }
        if (this.resumeRequested[pos]) {
          // continue requested from inside this filter's own callback: applies once its status is known.
          this.resumeRequested[pos] = false;
          this.unstop(pos);
        }
      }
    } finally {
      this.busy[pos] = false;
    }
  }

  private flushHeld(pos: number): void {
    const held = this.held[pos]!;
    while (held.length > 0 && !this.aborted) this.push(pos + 1, held.shift()!);
  }

  /** Resumes a slot: held frames and buffered data go on, then the slot sees its remaining input. */
  resume(pos: number): void {
    if (this.aborted || pos < 0 || pos >= this.slots) return;
    if (this.busy[pos]) {
      this.resumeRequested[pos] = true;
      return;
    }
    this.unstop(pos);
    this.process(pos);
  }

  private unstop(pos: number): void {
    this.stopped[pos] = false;
    this.flushHeld(pos);
    const buf = this.buffered[pos];
    if (buf && !this.aborted) {
      this.buffered[pos] = null;
      this.push(pos + 1, { kind: "data", buf, eos: this.bufferedEos[pos]! });
    }
  }
}

let streamIds = 0;

class ChainCallbacks implements FilterCallbacks {
  readonly stream: StreamInfo;
  constructor(private readonly s: HttpStream, private readonly index: number) {
    this.stream = s.info;
  }
  continueDecoding(): void {
    this.s.continueDecodingFrom(this.index);
  }
  continueEncoding(): void {
    this.s.continueEncodingFrom(this.index);
  }
  sendLocalReply(reply: LocalReply): void {
    this.s.localReplyFrom(this.index, reply);
  }
  resetStream(details: string): void {
    this.s.reset(details);
  }
  clearRouteCache(via: string): void {
    this.s.clearRouteCacheFrom(this.index, via);
  }
}

function toBytes(b: Body): Uint8Array {
  return typeof b === "string" ? Buffer.from(b, "utf8") : b;
}

function bodyFrames(body: Body | readonly Body[] | undefined): Uint8Array[] {
  if (body === undefined) return [];
  if (typeof body === "string" || body instanceof Uint8Array) return toBytes(body).byteLength ? [toBytes(body)] : [];
  return (body as readonly Body[]).map(toBytes);
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  return Buffer.concat(parts);
}

/** Maps an HTTP status to the gRPC status Envoy uses for local replies to gRPC requests. */
function httpToGrpcStatus(status: number): number {
  switch (status) {
    case 400: return 13;
    case 401: return 16;
    case 403: return 7;
    case 404: return 12;
    case 429: case 502: case 503: case 504: return 14;
    default: return 2;
  }
}

export interface FilterChainOptions {
  filters: readonly HttpFilterFactory[];
  upstream: Upstream;
  clock: Clock;
}

/** An HTTP filter chain (like one Envoy HTTP connection manager) that streams run through. */
export class FilterChain {
  constructor(readonly options: FilterChainOptions) {}

  /** Creates a stream (no callbacks yet); drive it with `start()` or the step methods. */
  newStream(req: RequestSpec, upstream?: Upstream): HttpStream {
    return new HttpStream(this.options.filters, upstream ?? this.options.upstream, this.options.clock, req);
  }

  /** Runs a whole request through the chain and resolves when the stream completes. */
  run(req: RequestSpec, upstream?: Upstream): Promise<StreamResult> {
    const s = this.newStream(req, upstream);
    s.start();
    return s.completion;
  }
}

/** One stream through a chain. Step methods let tests interleave streams and inspect pauses. */
export class HttpStream {
  readonly info: StreamInfo;
  readonly filters: HttpFilter[] = [];
  /** Resolves when the stream completed (response sent or reset, filters logged and destroyed). */
  readonly completion: Promise<StreamResult>;
  private resolve!: (r: StreamResult) => void;
  private readonly decoder: Direction;
  private encoder: Direction | undefined;
  private readonly decodeHeadersSeen: boolean[];
  private readonly requestFrames: Uint8Array[];
  private readonly requestTrailers: HeaderMap | undefined;
  private upstreamParts: Uint8Array[] = [];
  private upstreamHeaders: HeaderMap | undefined;
  private upstreamTrailers: HeaderMap | undefined;
  private upstreamCalled = false;
  private responseStarted = false;
  private headersSentDownstream = false;
  private responseParts: Uint8Array[] = [];
  private encoderOrder: number[] = [];
  private finished = false;
  private localReply: LocalReply | undefined;
  private resetDetails: string | undefined;
  private decodeDone = false;

  constructor(
    factories: readonly HttpFilterFactory[],
    private readonly upstream: Upstream,
    private readonly clock: Clock,
    req: RequestSpec,
  ) {
    this.completion = new Promise((r) => (this.resolve = r));
    const headers = HeaderMap.from(req.headers);
    const authority = req.authority ?? headers.get("host") ?? "example.com";
    headers.remove("host");
    const scheme = req.scheme ?? "http";
    const requestId = req.requestId ?? headers.get("x-request-id") ?? randomUUID();
    const pre = new HeaderMap();
    pre.add(":authority", toByteString(authority));
    pre.add(":path", toByteString(req.path ?? "/"));
    pre.add(":method", req.method ?? "GET");
    if (!req.raw) pre.add(":scheme", scheme);
    for (let i = 0; i < headers.size; i++) {
      const k = headers.keys[i]!;
      if (k.startsWith(":")) pre.set(k, headers.values[i]!);
      else pre.add(k, headers.values[i]!);
    }
    this.requestFrames = bodyFrames(req.body);
    if (!req.raw) {
      if (this.requestFrames.length && !pre.has("content-length") && !pre.has("transfer-encoding"))
        pre.add("content-length", String(this.requestFrames.reduce((n, b) => n + b.byteLength, 0)));
      pre.set("x-forwarded-proto", scheme);
      pre.set("x-request-id", toByteString(requestId));
    }
    this.requestTrailers = req.trailers ? HeaderMap.from(req.trailers) : undefined;
    const props = new Map<string, PropertyValue>(Object.entries(req.properties ?? {}));
    this.info = {
      id: ++streamIds,
      startMs: this.clock.nowMs(),
      sourceAddress: req.source ?? "10.0.0.1:40000",
      destinationAddress: req.destination ?? "10.0.0.2:8080",
      protocol: req.protocol ?? "HTTP/1.1",
      requestId,
      properties: props,
      filterState: new Map(),
      routeCacheClears: [],
      isGrpc: (pre.get("content-type") ?? "").startsWith("application/grpc"),
      requestHeaders: pre,
      requestTrailers: this.requestTrailers,
      responseHeaders: undefined,
      responseTrailers: undefined,
      responseCode: undefined,
      responseCodeDetails: "",
      requestBodyBytes: 0,
      responseBodyBytes: 0,
      endMs: undefined,
      logs: [],
      dynamicMetadata: new Map(),
    };
    this.decodeHeadersSeen = new Array(factories.length).fill(false);
    factories.forEach((f, index) => this.filters.push(f.createFilter(this.callbacksFor(index))));
    this.decoder = new Direction(this.filters.length, (pos, f) => this.deliverDecode(pos, f), (f) => this.decodeSink(f));
  }

  private callbacksFor(index: number): FilterCallbacks {
    return new ChainCallbacks(this, index);
  }

  /** @internal FilterCallbacks entry points. */
  continueDecodingFrom(index: number): void {
    this.decoder.resume(index);
  }

  /** @internal */
  continueEncodingFrom(index: number): void {
    const pos = this.encoderOrder.indexOf(index);
    if (this.encoder && pos >= 0) this.encoder.resume(pos);
  }

  /** @internal */
  localReplyFrom(index: number, reply: LocalReply): void {
    this.sendLocalReply(reply, index);
  }

  /** @internal */
  clearRouteCacheFrom(index: number, via: string): void {
    this.info.routeCacheClears.push({ filter: this.filters[index]?.name ?? `#${index}`, via, headers: this.info.requestHeaders.toObject() });
  }

  // ---- stepping API ----

  /** Delivers the request headers (end_stream when the request has no body and no trailers). */
  sendRequestHeaders(): void {
    const eos = this.requestFrames.length === 0 && !this.requestTrailers;
    this.decoder.push(0, { kind: "headers", map: this.info.requestHeaders, eos });
  }

  /** Delivers the request body frames and trailers given in the request spec. */
  sendRequestBodyAndTrailers(): void {
    this.requestFrames.forEach((b, i) =>
      this.decoder.push(0, { kind: "data", buf: new BodyBuffer(b), eos: i === this.requestFrames.length - 1 && !this.requestTrailers }));
    if (this.requestTrailers) this.decoder.push(0, { kind: "trailers", map: this.requestTrailers });
  }

  /** Sends the whole request. */
  start(): this {
    this.sendRequestHeaders();
    this.sendRequestBodyAndTrailers();
    return this;
  }

  /** Index of the filter that currently holds decoding (-1 = none). */
  get decodingStoppedAt(): number {
    return this.decodeDone ? -1 : this.decoder.stoppedAt();
  }

  get encodingStoppedAt(): number {
    const pos = this.encoder?.stoppedAt() ?? -1;
    return pos < 0 ? -1 : this.encoderOrder[pos]!;
  }

  get upstreamContacted(): boolean {
    return this.upstreamCalled;
  }

  get isComplete(): boolean {
    return this.finished;
  }

  // ---- internals ----

  private deliverDecode(pos: number, f: Frame): HeadersStatus | DataStatus | TrailersStatus {
    const filter = this.filters[pos]!;
    if (f.kind === "headers") {
      this.decodeHeadersSeen[pos] = true;
      return filter.decodeHeaders(f.map, f.eos);
    }
    if (f.kind === "data") return filter.decodeData(f.buf, f.eos);
    this.info.requestTrailers = f.map;
    return filter.decodeTrailers(f.map);
  }

  private decodeSink(f: Frame): void {
    let eos: boolean;
    if (f.kind === "headers") {
      this.upstreamHeaders = f.map;
      eos = f.eos;
    } else if (f.kind === "data") {
      this.upstreamParts.push(f.buf.bytes);
      this.info.requestBodyBytes += f.buf.length;
      eos = f.eos;
    } else {
      this.upstreamTrailers = f.map;
      eos = true;
    }
    if (eos && !this.upstreamCalled) {
      this.upstreamCalled = true;
      this.decodeDone = true;
      this.callUpstream();
    }
  }

  private callUpstream(): void {
    const started = this.clock.nowMs();
    new Promise<UpstreamResponse>((resolve) =>
      resolve(this.upstream({ headers: this.upstreamHeaders!, body: concat(this.upstreamParts), trailers: this.upstreamTrailers, stream: this.info })))
      .then((res) => this.onUpstreamResponse(res, started), () => {
        if (this.finished || this.responseStarted) return;
        this.sendLocalReply({ status: 503, body: Buffer.from("upstream connect error or disconnect/reset before headers. reset reason: connection failure"),
          headers: [], details: "upstream_reset_before_response_started{connection_failure}", from: "router" }, this.filters.length);
      });
  }

  private onUpstreamResponse(res: UpstreamResponse, started: number): void {
    if (this.finished || this.responseStarted) return;
    const headers = new HeaderMap();
    headers.add(":status", String(res.status));
    const extra = HeaderMap.from(res.headers);
    for (let i = 0; i < extra.size; i++) headers.add(extra.keys[i]!, extra.values[i]!);
    const frames = bodyFrames(res.body);
    if (frames.length && !headers.has("content-length") && !headers.has("transfer-encoding"))
      headers.add("content-length", String(frames.reduce((n, b) => n + b.byteLength, 0)));
    headers.add("x-envoy-upstream-service-time", String(Math.round(this.clock.nowMs() - started)));
    this.info.responseCodeDetails = "via_upstream";
    this.encodeResponse(headers, frames, res.trailers ? HeaderMap.from(res.trailers) : undefined, this.filters.map((_, i) => i));
  }

  /** Runs a response through the encoder filters `order` (decode-order indices), last filter first. */
  private encodeResponse(headers: HeaderMap, frames: Uint8Array[], trailers: HeaderMap | undefined, order: number[]): void {
    this.responseStarted = true;
    this.encoderOrder = order.slice().reverse();
    this.info.responseHeaders = headers;
    this.info.responseCode = Number(headers.get(":status"));
    this.encoder = new Direction(this.encoderOrder.length, (pos, f) => this.deliverEncode(pos, f), (f) => this.encodeSink(f));
    const enc = this.encoder;
    enc.push(0, { kind: "headers", map: headers, eos: frames.length === 0 && !trailers });
    frames.forEach((b, i) => enc.push(0, { kind: "data", buf: new BodyBuffer(b), eos: i === frames.length - 1 && !trailers }));
    if (trailers) enc.push(0, { kind: "trailers", map: trailers });
  }

  private deliverEncode(pos: number, f: Frame): HeadersStatus | DataStatus | TrailersStatus {
    const filter = this.filters[this.encoderOrder[pos]!]!;
    if (f.kind === "headers") return filter.encodeHeaders(f.map, f.eos);
    if (f.kind === "data") return filter.encodeData(f.buf, f.eos);
    this.info.responseTrailers = f.map;
    return filter.encodeTrailers(f.map);
  }

  private encodeSink(f: Frame): void {
    let eos: boolean;
    if (f.kind === "headers") {
      this.headersSentDownstream = true;
      this.info.responseHeaders = f.map;
      this.info.responseCode = Number(f.map.get(":status"));
      eos = f.eos;
    } else if (f.kind === "data") {
      this.responseParts.push(f.buf.bytes);
      this.info.responseBodyBytes += f.buf.length;
      eos = f.eos;
    } else {
      this.info.responseTrailers = f.map;
      eos = true;
    }
    if (eos) this.complete();
  }

  private sendLocalReply(reply: LocalReply, fromIndex: number): void {
    if (this.finished) return;
    this.decoder.aborted = true;
    this.decodeDone = true;
    if (this.responseStarted) {
      // Response headers already handed to the encoder chain: Envoy replies directly, bypassing the filters.
      if (this.encoder) this.encoder.aborted = true;
      if (!this.headersSentDownstream) {
        this.localReply = reply;
        const headers = this.localReplyHeaders(reply);
        this.info.responseCodeDetails = reply.details;
        this.encoderOrder = [];
        this.encoder = new Direction(0, () => "Continue", (f) => this.encodeSink(f));
        this.encodeDirect(headers, reply);
      } else this.reset("local_reply_after_response_started");
      return;
    }
    this.localReply = reply;
    this.info.responseCodeDetails = reply.details;
    const headers = this.localReplyHeaders(reply);
    const order: number[] = [];
    for (let i = 0; i < this.filters.length; i++) {
      if (!this.decodeHeadersSeen[i]) continue;
      if (i === fromIndex && this.filters[i]!.wantsLocalReplyEncoding?.() === false) continue;
      order.push(i);
    }
    const grpc = this.info.isGrpc;
    this.encodeResponse(headers, grpc || this.isHead || reply.body.byteLength === 0 ? [] : [reply.body], undefined, order);
  }

  /**
   * A HEAD request's local reply is headers only (content-type and content-length as for the body),
   * end of stream on the headers: Envoy's sendLocalReply (conformance case "HEAD limited").
   */
  private get isHead(): boolean {
    return this.info.requestHeaders.get(":method") === "HEAD";
  }

  private encodeDirect(headers: HeaderMap, reply: LocalReply): void {
    const enc = this.encoder!;
    const body = this.info.isGrpc || this.isHead ? new Uint8Array(0) : reply.body;
    enc.push(0, { kind: "headers", map: headers, eos: body.byteLength === 0 });
    if (body.byteLength) enc.push(0, { kind: "data", buf: new BodyBuffer(body), eos: true });
  }

  private localReplyHeaders(reply: LocalReply): HeaderMap {
    const h = new HeaderMap();
    if (this.info.isGrpc) {
      h.add(":status", "200");
      h.add("content-type", "application/grpc");
      const gs = reply.grpcStatus !== undefined && reply.grpcStatus >= 0 && reply.grpcStatus <= 16 ? reply.grpcStatus : httpToGrpcStatus(reply.status);
      h.add("grpc-status", String(gs));
      if (reply.body.byteLength) h.add("grpc-message", Buffer.from(reply.body).toString("latin1"));
      for (const [k, v] of reply.headers) h.add(k, v);
      return h;
    }
    h.add(":status", String(reply.status));
    for (const [k, v] of reply.headers) h.add(k, v);
    if (reply.body.byteLength) {
      h.set("content-length", String(reply.body.byteLength));
      if (!h.has("content-type")) h.add("content-type", "text/plain");
    }
    return h;
  }

  /** Resets the stream: no (further) response; filters still log and are destroyed. */
  reset(details: string): void {
    if (this.finished) return;
    this.resetDetails = details;
    this.info.responseCodeDetails = details;
    this.decoder.aborted = true;
    if (this.encoder) this.encoder.aborted = true;
    this.complete();
  }

  private complete(): void {
    if (this.finished) return;
    this.finished = true;
    this.decoder.aborted = true;
    this.info.endMs = this.clock.nowMs();
    for (const f of this.filters) f.onStreamComplete();
    const body = concat(this.responseParts.length ? this.responseParts : [new Uint8Array(0)]);
    const up = this.upstreamCalled && this.upstreamHeaders
      ? { headers: this.upstreamHeaders, body: concat(this.upstreamParts.length ? this.upstreamParts : [new Uint8Array(0)]), trailers: this.upstreamTrailers }
      : undefined;
    const reset = this.resetDetails;
    this.resolve({
      localReply: this.localReply,
      upstreamRequest: up,
      responseStatus: reset !== undefined && !this.responseStarted ? undefined : this.info.responseCode,
      responseHeaders: this.info.responseHeaders,
      responseBody: body,
      responseBodyText: fromByteString(Buffer.from(body).toString("latin1")),
      responseTrailers: this.info.responseTrailers,
      routeCacheClears: this.info.routeCacheClears,
      reset,
      logs: this.info.logs,
      stream: this.info,
    });
  }
}
