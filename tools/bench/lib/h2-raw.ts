// A minimal HTTP/2 (prior knowledge, cleartext) client for load generation: one request shape, encoded
// once into HEADERS (+ DATA) frames that are copied with a new stream id per request, and responses read
// frame by frame. No per-request objects beyond a small state record, so one process drives thousands of
// requests per second. It asks the server for an HPACK table of 0 so every header block decodes on its own;
// decoded blocks are memoised by their bytes (hpack.js decodes the ones not seen before).
import { connect, type Socket } from "node:net";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
// hpack.js has no type declarations; the shape used here is small.
interface HpackDecompressor {
  on(event: "error", listener: (err: Error) => void): void;
  write(buf: Buffer): void;
  execute(): void;
  read(): { name: string; value: string } | null;
}
const hpack = require("hpack.js") as { decompressor: { create(o: { table: { maxSize: number } }): HpackDecompressor } };

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
const DATA = 0x0, HEADERS = 0x1, RST_STREAM = 0x3, SETTINGS = 0x4, PING = 0x6, GOAWAY = 0x7, WINDOW_UPDATE = 0x8, CONTINUATION = 0x9;
const END_STREAM = 0x1, ACK = 0x1, END_HEADERS = 0x4, PADDED = 0x8, PRIORITY = 0x20;
/** Our receive window: large, replenished in bulk, so the server never waits on us. */
const RECEIVE_WINDOW = 0x3fff_ffff;
const MAX_STREAM_ID = 0x7fff_ffff;

export interface RawRequestShape {
  readonly authority: string;
  readonly method: "GET" | "POST";
  readonly path: string;
  /** Headers (lower-case names); an `:authority` here replaces `authority`. */
  readonly headers?: Readonly<Record<string, string>>;
  /** Request body, sent in one DATA frame with END_STREAM; none for a GET. */
  readonly body?: Buffer;
}

/** What came back on one stream. `error` is set when the stream did not complete normally. */
export interface RawResponse {
  readonly status: number;
  /** grpc-status from the trailers (or a trailers-only response), when present. */
  readonly grpcStatus?: number;
  /** Response body (only when the client was created with keepBody). */
  readonly body?: Buffer;
  readonly error?: string;
}

export type RawCallback = (r: RawResponse) => void;

function frameHeader(length: number, type: number, flags: number, stream: number): Buffer {
  const b = Buffer.alloc(9);
  b.writeUIntBE(length, 0, 3);
  b[3] = type;
  b[4] = flags;
  b.writeUInt32BE(stream, 5);
  return b;
}

function hpackInt(value: number, prefixBits: number, first: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [first | value];
  const out = [first | max];
  let v = value - max;
  while (v >= 128) {
    out.push((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out.push(v);
  return out;
}

/** HPACK literal without indexing: static-table name index when given, else a literal name; no Huffman. */
function literal(name: string, value: string, nameIndex?: number): Buffer {
  const v = Buffer.from(value, "latin1");
  if (nameIndex !== undefined) return Buffer.concat([Buffer.from(hpackInt(nameIndex, 4, 0x00)), Buffer.from(hpackInt(v.length, 7, 0)), v]);
  const n = Buffer.from(name, "latin1");
  return Buffer.concat([Buffer.from([0x00]), Buffer.from(hpackInt(n.length, 7, 0)), n, Buffer.from(hpackInt(v.length, 7, 0)), v]);
}

/** The request's HEADERS (+ DATA) frames, with stream id 0 in both; send() patches them. */
function encodeRequest(shape: RawRequestShape): { template: Buffer; dataAt: number } {
  const headers = Object.entries(shape.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v] as const);
  const authority = headers.find(([k]) => k === ":authority")?.[1] ?? shape.authority;
  const block = Buffer.concat([
    Buffer.from([shape.method === "GET" ? 0x82 : 0x83, 0x86]), // :method GET|POST, :scheme http (static table)
    literal(":path", shape.path, 4),
    literal(":authority", authority, 1),
    ...headers.filter(([k]) => !k.startsWith(":")).map(([k, v]) => literal(k, v)),
  ]);
  if (block.length > 16_384) throw new RangeError(`request header block of ${block.length} bytes exceeds one frame`);
  const body = shape.body && shape.body.length ? shape.body : undefined;
  const frame = Buffer.concat([frameHeader(block.length, HEADERS, END_HEADERS | (body ? 0 : END_STREAM), 0), block]);
  if (!body) return { template: frame, dataAt: -1 };
  if (body.length > 16_384) throw new RangeError(`request body of ${body.length} bytes exceeds one frame`);
  return { template: Buffer.concat([frame, frameHeader(body.length, DATA, END_STREAM, 0), body]), dataAt: frame.length };
}

interface StreamState {
  readonly done: RawCallback;
  status: number;
  grpcStatus: number | undefined;
  body: Buffer[] | undefined;
  /** Header block fragments awaiting CONTINUATION, and whether that block ends the stream. */
  pending: Buffer[] | undefined;
  endsWithBlock: boolean;
}

/** One HTTP/2 connection sending one request shape. */
export class RawH2Client {
  private readonly streams = new Map<number, StreamState>();
  private nextId = 1;
  private buffered: Buffer | undefined;
  private sendWindow = 65_535;
  private streamWindow = 65_535;
  private received = 0;
  private readonly queue: RawCallback[] = [];
  private closed: string | undefined;
  /** Table size 0, as our SETTINGS ask: a server that used a dynamic table anyway fails decoding loudly. */
  private readonly decoder = hpack.decompressor.create({ table: { maxSize: 0 } });
  private decodeError: Error | undefined;
  /** Decoded header blocks by their bytes (bounded): the same answer is decoded once. */
  private readonly memo = new Map<string, Array<[string, string]>>();
  private readonly template: Buffer;
  private readonly dataAt: number;
  private readonly bodyLength: number;

  private constructor(private readonly socket: Socket, shape: RawRequestShape, private readonly keepBody: boolean, private readonly grpc: boolean) {
    ({ template: this.template, dataAt: this.dataAt } = encodeRequest(shape));
    this.bodyLength = shape.body?.length ?? 0;
    this.decoder.on("error", (err) => void (this.decodeError = err));
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("error", (err) => this.fail(err.message));
    socket.on("close", () => this.fail("connection closed"));
  }

  /** Connects to host:port and exchanges the preface and settings. */
  static connect(target: string, shape: RawRequestShape, opts: { keepBody?: boolean; grpc?: boolean; timeoutMs?: number } = {}): Promise<RawH2Client> {
    const at = target.lastIndexOf(":");
    const host = target.slice(0, at);
    const port = Number(target.slice(at + 1));
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no connection to ${target} within ${opts.timeoutMs ?? 10_000} ms`)); }, opts.timeoutMs ?? 10_000);
      socket.once("error", (err) => { clearTimeout(timer); reject(err); });
      socket.once("connect", () => {
        clearTimeout(timer);
        const client = new RawH2Client(socket, shape, opts.keepBody ?? false, opts.grpc ?? false);
        // SETTINGS: HEADER_TABLE_SIZE 0 (stateless decoding), ENABLE_PUSH 0, INITIAL_WINDOW_SIZE large; then the connection window.
        const settings = Buffer.alloc(18);
        settings.writeUInt16BE(0x1, 0); settings.writeUInt32BE(0, 2);
        settings.writeUInt16BE(0x2, 6); settings.writeUInt32BE(0, 8);
        settings.writeUInt16BE(0x4, 12); settings.writeUInt32BE(RECEIVE_WINDOW, 14);
        const update = Buffer.alloc(4);
        update.writeUInt32BE(RECEIVE_WINDOW - 65_535, 0);
        socket.write(Buffer.concat([PREFACE, frameHeader(18, SETTINGS, 0, 0), settings, frameHeader(4, WINDOW_UPDATE, 0, 0), update]));
        resolve(client);
      });
    });
  }

  /** Streams open now. */
  get inFlight(): number {
    return this.streams.size + this.queue.length;
  }

  /** Sends one request; `done` is called once with its outcome. */
  send(done: RawCallback): void {
    if (this.closed !== undefined) return done({ status: 0, error: this.closed });
    if (this.bodyLength > 0 && (this.sendWindow < this.bodyLength || this.streamWindow < this.bodyLength || this.queue.length > 0)) {
      this.queue.push(done); // flow control: wait for the server's WINDOW_UPDATE
      return;
    }
    this.write(done);
  }

  private write(done: RawCallback): void {
    if (this.nextId > MAX_STREAM_ID) return done({ status: 0, error: "STREAM_IDS_EXHAUSTED" });
    const id = this.nextId;
    this.nextId += 2;
    const frames = Buffer.allocUnsafe(this.template.length);
    this.template.copy(frames);
    frames.writeUInt32BE(id, 5);
    if (this.dataAt >= 0) frames.writeUInt32BE(id, this.dataAt + 5);
    this.sendWindow -= this.bodyLength;
    this.streams.set(id, { done, status: 0, grpcStatus: undefined, body: undefined, pending: undefined, endsWithBlock: false });
    this.socket.write(frames);
  }

  /** Batches the writes of several sends into one syscall. */
  cork(): void { this.socket.cork(); }
  uncork(): void { this.socket.uncork(); }

  close(): void {
    this.fail("client closed");
    this.socket.destroy();
  }

  private fail(reason: string): void {
    if (this.closed !== undefined) return;
    this.closed = reason;
    for (const s of this.streams.values()) s.done({ status: s.status, error: reason === "client closed" ? "NO_ANSWER" : "CONNECTION_LOST" });
    this.streams.clear();
    for (const q of this.queue.splice(0)) q({ status: 0, error: "CONNECTION_LOST" });
  }

  private onData(chunk: Buffer): void {
    let buf = this.buffered ? Buffer.concat([this.buffered, chunk]) : chunk;
    let at = 0;
    while (buf.length - at >= 9) {
      const length = buf.readUIntBE(at, 3);
      if (buf.length - at < 9 + length) break;
      const type = buf[at + 3]!;
      const flags = buf[at + 4]!;
      const stream = buf.readUInt32BE(at + 5) & MAX_STREAM_ID;
      this.onFrame(type, flags, stream, buf.subarray(at + 9, at + 9 + length));
      at += 9 + length;
    }
    this.buffered = at < buf.length ? Buffer.from(buf.subarray(at)) : undefined;
    buf = Buffer.alloc(0);
  }

  private onFrame(type: number, flags: number, id: number, payload: Buffer): void {
    switch (type) {
      case DATA: {
        this.received += payload.length;
        if (this.received > RECEIVE_WINDOW / 2) {
          const update = Buffer.alloc(4);
          update.writeUInt32BE(this.received, 0);
          this.socket.write(Buffer.concat([frameHeader(4, WINDOW_UPDATE, 0, 0), update]));
          this.received = 0;
        }
        const s = this.streams.get(id);
        if (!s) return;
        if (this.keepBody) (s.body ??= []).push(Buffer.from(unpad(payload, flags)));
        if (flags & END_STREAM) this.finish(id, s);
        return;
      }
      case HEADERS:
      case CONTINUATION: {
        const s = this.streams.get(id);
        if (!s) return;
        let fragment = payload;
        if (type === HEADERS) {
          fragment = unpad(payload, flags);
          if (flags & PRIORITY) fragment = fragment.subarray(5);
          if (!(flags & END_HEADERS)) {
            s.pending = [Buffer.from(fragment)];
            s.endsWithBlock = (flags & END_STREAM) !== 0;
            return;
          }
        } else {
          (s.pending ??= []).push(Buffer.from(fragment));
          if (!(flags & END_HEADERS)) return;
          fragment = Buffer.concat(s.pending);
          s.pending = undefined;
        }
        const ends = type === HEADERS ? (flags & END_STREAM) !== 0 : s.endsWithBlock;
        try {
          this.onHeaderBlock(s, fragment, ends);
        } catch {
          this.fail("HPACK_ERROR");
          this.socket.destroy();
          return;
        }
        if (ends) this.finish(id, s);
        return;
      }
      case RST_STREAM: {
        const s = this.streams.get(id);
        if (!s) return;
        this.streams.delete(id);
        s.done({ status: s.status, error: `RST_STREAM_${payload.length >= 4 ? payload.readUInt32BE(0) : "?"}` });
        this.drainQueue();
        return;
      }
      case SETTINGS: {
        if (flags & ACK) return;
        for (let i = 0; i + 6 <= payload.length; i += 6) {
          if (payload.readUInt16BE(i) === 0x4) {
            this.streamWindow = payload.readUInt32BE(i + 2);
          }
        }
        this.socket.write(frameHeader(0, SETTINGS, ACK, 0));
        return;
      }
      case PING:
        if (!(flags & ACK)) this.socket.write(Buffer.concat([frameHeader(8, PING, ACK, 0), payload]));
        return;
      case WINDOW_UPDATE:
        if (id === 0 && payload.length >= 4) {
          this.sendWindow += payload.readUInt32BE(0) & MAX_STREAM_ID;
          this.drainQueue();
        }
        return;
      case GOAWAY:
        this.fail(`GOAWAY_${payload.length >= 8 ? payload.readUInt32BE(4) : "?"}`);
        this.socket.destroy();
        return;
      default:
        return;
    }
  }

  private drainQueue(): void {
    while (this.queue.length > 0 && this.sendWindow >= this.bodyLength && this.closed === undefined) this.write(this.queue.shift()!);
  }

  private onHeaderBlock(s: StreamState, block: Buffer, endsStream: boolean): void {
    // Fast path: response headers starting with `:status: 200` (static index 8, after any table-size
    // update), when nothing else in them matters (a gRPC trailers-only answer carries grpc-status).
    let i = 0;
    while (i < block.length && (block[i]! & 0xe0) === 0x20) i++;
    if (s.status === 0 && block[i] === 0x88 && !(endsStream && this.grpc)) {
      s.status = 200;
      return;
    }
    for (const [name, value] of this.decode(block)) {
      if (name === ":status") s.status = Number(value);
      else if (name === "grpc-status") s.grpcStatus = Number(value);
    }
  }

  private decode(block: Buffer): Array<[string, string]> {
    const key = block.toString("latin1");
    const hit = this.memo.get(key);
    if (hit) return hit;
    this.decodeError = undefined;
    this.decoder.write(block);
    this.decoder.execute();
    if (this.decodeError) throw new Error(`HPACK: ${(this.decodeError as Error).message}`);
    const out: Array<[string, string]> = [];
    for (let h = this.decoder.read(); h; h = this.decoder.read()) if (h.name === ":status" || h.name === "grpc-status") out.push([h.name, h.value]);
    if (this.memo.size < 4096) this.memo.set(key, out);
    return out;
  }

  private finish(id: number, s: StreamState): void {
    this.streams.delete(id);
    const grpcStatus = s.grpcStatus;
    const body = s.body ? Buffer.concat(s.body) : undefined;
    s.done({ status: s.status, ...(grpcStatus !== undefined ? { grpcStatus } : {}), ...(body ? { body } : {}) });
  }
}

function unpad(payload: Buffer, flags: number): Buffer {
  if (!(flags & PADDED) || payload.length === 0) return payload;
  return payload.subarray(1, payload.length - payload[0]!);
}
