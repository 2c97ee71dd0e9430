// Serves one unary method (ext_authz Check) on grpc-js's own HTTP/2 sessions without grpc-js's per-call layer
// (~28 µs of every Check here, tools/bench/README.md); every other stream still goes to grpc-js, same port.
import type { ServerHttp2Stream, IncomingHttpHeaders } from "node:http2";
import * as grpc from "@grpc/grpc-js";

/** grpc-js's default receive limit: larger messages are refused with RESOURCE_EXHAUSTED. */
export const MAX_RECEIVE_MESSAGE_BYTES = 4 * 1024 * 1024;

/** What a handler reads of the call: the decoded request and the request's metadata (as grpc-js's Metadata.get). */
export interface UnaryCall<Req> {
  readonly request: Req;
  readonly metadata: { get(key: string): grpc.MetadataValue[] };
}

export type UnaryCallback<Res> = (err: { code: grpc.status; details?: string } | null, value?: Res) => void;
export type UnaryHandler<Req, Res> = (call: UnaryCall<Req>, callback: UnaryCallback<Res>) => void;

export interface FastUnaryMethod<Req, Res> {
  /** e.g. `/envoy.service.auth.v3.Authorization/Check`. */
  readonly path: string;
  readonly deserialize: (b: Buffer) => Req;
  readonly serialize: (v: Res) => Buffer;
  readonly handler: UnaryHandler<Req, Res>;
}

// The headers grpc-js answers with (server-interceptors.ts: defaultResponseHeaders + defaultCompressionHeaders).
const RESPONSE_HEADERS = Object.freeze({
  ":status": 200,
  "content-type": "application/grpc+proto",
  "grpc-accept-encoding": "identity,deflate,gzip",
  "grpc-encoding": "identity",
});
const RESPONSE_OPTIONS = Object.freeze({ waitForTrailers: true });
const OK_TRAILERS = Object.freeze({ "grpc-status": "0", "grpc-message": "OK" });
// grpc-timeout as grpc-js parses it (TimeoutValue TimeoutUnit); an unparsable one is left to grpc-js.
const TIMEOUT = /(\d{1,8})\s*([HMSmun])/;
const UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };
const noop = (): void => undefined;
const EMPTY = Buffer.alloc(0);

type StreamListener = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, ...rest: unknown[]) => void;

interface H2ServerLike {
  listeners(event: string): unknown[];
  removeListener(event: string, listener: StreamListener): void;
  on(event: string, listener: StreamListener): void;
}

interface GrpcServerInternals {
  http2Servers?: Map<H2ServerLike, unknown>;
  onStreamOpened?: (stream: ServerHttp2Stream) => void;
}

/**
 * Puts `method` in front of grpc-js's stream handler on every HTTP/2 server `server` has bound (call after
 * bindAsync). Returns false, changing nothing, when this grpc-js does not look as expected: the method then
 * stays with grpc-js (it must be registered there too, with the same handler, for the streams left to it).
 */
export function serveUnaryDirectly<Req, Res>(server: grpc.Server, method: FastUnaryMethod<Req, Res>): boolean {
  const internals = server as unknown as GrpcServerInternals;
  const h2servers = internals.http2Servers;
  if (!(h2servers instanceof Map) || h2servers.size === 0) return false;
  const grpcListeners: Array<[H2ServerLike, StreamListener]> = [];
  for (const h2 of h2servers.keys()) {
    const listeners = h2.listeners("stream");
    if (listeners.length !== 1 || typeof listeners[0] !== "function") return false;
    grpcListeners.push([h2, listeners[0] as StreamListener]);
  }
  const opened = typeof internals.onStreamOpened === "function" ? internals.onStreamOpened.bind(server) : noop;
  for (const [h2, grpcListener] of grpcListeners) {
    h2.removeListener("stream", grpcListener);
    h2.on("stream", (stream, headers, ...rest) => {
      if (!tryServe(stream, headers, method, opened)) grpcListener(stream, headers, ...rest);
    });
  }
  return true;
}

/** Serves the stream when it is a plain call of `method`; false leaves it (untouched) to grpc-js. */
function tryServe<Req, Res>(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, method: FastUnaryMethod<Req, Res>, opened: (s: ServerHttp2Stream) => void): boolean {
  if (headers[":path"] !== method.path) return false;
  const contentType = headers["content-type"];
  if (typeof contentType !== "string" || !contentType.startsWith("application/grpc")) return false;
  const encoding = headers["grpc-encoding"];
  if (encoding !== undefined && encoding !== "identity") return false;
  const timeout = headers["grpc-timeout"];
  let timeoutMs = -1;
  if (timeout !== undefined) {
    const m = typeof timeout === "string" ? TIMEOUT.exec(timeout) : null;
    if (!m) return false;
    timeoutMs = (Number(m[1]) * UNIT_MS[m[2]!]!) | 0;
  }
  new DirectCall(stream, headers, method, timeoutMs);
  opened(stream);
  return true;
}

/** One call: reads the single request message, runs the handler, answers once (or not at all once cancelled). */
class DirectCall<Req, Res> {
  private done = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly chunks: Buffer[] = [];
  private bytes = 0;
  /** Length of the message being read (from its 5-byte prefix), -1 before the prefix is in. */
  private messageLength = -1;
  private message: Buffer | undefined;

  constructor(
    private readonly stream: ServerHttp2Stream,
    private readonly headers: IncomingHttpHeaders,
    private readonly method: FastUnaryMethod<Req, Res>,
    timeoutMs: number,
  ) {
    // As grpc-js: an error event always comes with a close event, which is what ends the call.
    stream.once("error", noop);
    stream.once("close", () => this.finish());
    if (timeoutMs >= 0) this.timer = setTimeout(() => this.sendStatus(grpc.status.DEADLINE_EXCEEDED, "Deadline exceeded"), timeoutMs);
    stream.on("data", (chunk: Buffer) => this.onData(chunk));
    stream.once("end", () => this.onEnd());
  }

  private onData(chunk: Buffer): void {
    if (this.done) return;
    // A bug here must answer this call, never throw out of a stream event (that would end the process).
    try {
      this.read(chunk);
    } catch {
      this.sendStatus(grpc.status.INTERNAL, "Error reading request");
    }
  }

  private read(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    while (!this.done) {
      if (this.messageLength < 0) {
        if (this.bytes < 5) return;
        const head = this.take(5);
        this.messageLength = head.readUInt32BE(1);
        if (this.messageLength > MAX_RECEIVE_MESSAGE_BYTES) {
          this.sendStatus(grpc.status.RESOURCE_EXHAUSTED, `Received message larger than max (${this.messageLength} vs ${MAX_RECEIVE_MESSAGE_BYTES})`);
          return;
        }
      }
      if (this.bytes < this.messageLength) return;
      const body = this.take(this.messageLength);
      this.messageLength = -1;
      if (this.message) {
        this.sendStatus(grpc.status.UNIMPLEMENTED, `Received a second request message for server streaming method ${this.method.path}`);
        return;
      }
      this.message = body;
    }
  }

  /** Removes the next `n` buffered bytes (n ≤ this.bytes). */
  private take(n: number): Buffer {
    // An empty message (a valid CheckRequest with no fields) may arrive after the last buffered byte.
    if (n === 0) return EMPTY;
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let at = 0;
      while (at < n) {
        const c = this.chunks[0]!;
        const k = Math.min(c.length, n - at);
        c.copy(out, at, 0, k);
        at += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.bytes -= n;
    return out;
  }

  private onEnd(): void {
    if (this.done) return;
    const message = this.message;
    if (!message) {
      this.sendStatus(grpc.status.UNIMPLEMENTED, `Received no request message for server streaming method ${this.method.path}`);
      return;
    }
    const request = this.orInternal(this.method.deserialize, message, "Error deserializing request");
    if (request === undefined) return;
    const headers = this.headers;
    const call: UnaryCall<Req> = {
      request,
      metadata: {
        get(key: string): grpc.MetadataValue[] {
          const v = headers[key.toLowerCase()];
          return v === undefined ? [] : Array.isArray(v) ? v : [v];
        },
      },
    };
    try {
      this.method.handler(call, (err, value) => (err ? this.sendStatus(err.code, err.details ?? "") : this.sendMessage(value as Res)));
    } catch (err) {
      this.sendStatus(grpc.status.UNKNOWN, `Server method handler threw error ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private sendMessage(value: Res): void {
    if (this.cancelled()) return;
    const body = this.orInternal(this.method.serialize, value, "Error serializing response");
    if (body === undefined) return;
    this.finish();
    const frame = Buffer.allocUnsafe(body.length + 5);
    frame[0] = 0;
    frame.writeUInt32BE(body.length, 1);
    body.copy(frame, 5);
    const stream = this.stream;
    stream.respond(RESPONSE_HEADERS, RESPONSE_OPTIONS);
    stream.once("wantTrailers", () => stream.sendTrailers(OK_TRAILERS));
    stream.end(frame);
  }

  /** `convert(input)`, or undefined once INTERNAL (with grpc-js's `details`) is answered because it threw. */
  private orInternal<I, O>(convert: (input: I) => O, input: I, details: string): O | undefined {
    try {
      return convert(input);
    } catch {
      this.sendStatus(grpc.status.INTERNAL, details);
      return undefined;
    }
  }

  /** A trailers-only answer (grpc-js's form for a status without a message); later data is drained. */
  private sendStatus(code: grpc.status, details: string): void {
    if (this.cancelled()) return;
    this.finish();
    this.stream.respond({ "grpc-status": String(code), "grpc-message": encodeURI(details), ":status": 200, "content-type": "application/grpc+proto" }, { endStream: true });
    this.stream.resume();
  }

  private cancelled(): boolean {
    if (this.done) return true;
    if (this.stream.destroyed || this.stream.closed) {
      this.finish();
      return true;
    }
    return false;
  }

  private finish(): void {
    this.done = true;
    this.chunks.length = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
