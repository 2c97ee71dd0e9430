// A wasm plugin as one HTTP filter on one stream: maps chain callbacks onto proxy_on_* calls with Envoy's
// map availability (§7.2), return-value coercion (§6.5), deferred local replies/continues and fail_open (§7.6).
import type { DataStatus, HeadersStatus, TrailersStatus } from "./abi.js";
import type { HeaderMap } from "./header-map.js";
import type { BodyBuffer, FilterCallbacks, HttpFilter, LocalReply, StreamInfo } from "./http-filter.js";
import type { Fn, WasmVm } from "./wasm-vm.js";

function coerceHeaders(r: number): HeadersStatus {
  switch (r) {
    case 0: return "Continue";
    case 2: return "Continue";
    case 3: return "StopAllIterationAndBuffer";
    default: return "StopAllIterationAndWatermark";
  }
}

function coerceData(r: number): DataStatus {
  switch (r) {
    case 0: return "Continue";
    case 1: return "StopIterationAndBuffer";
    case 2: return "StopIterationAndWatermark";
    default: return "StopIterationNoBuffer";
  }
}

/** Per-stream counterpart of a wasm plugin: the "stream context" C of docs/proxy-wasm-host.md §6.4. */
export class WasmStreamFilter implements HttpFilter {
  readonly name: string;
  readonly stream: StreamInfo;
  ctxId = 0;
  inLog = false;
  private reqHeaders: HeaderMap | null = null;
  private reqTrailers: HeaderMap | null = null;
  private respHeaders: HeaderMap | null = null;
  private respTrailers: HeaderMap | null = null;
  private reqBody: BodyBuffer | null = null;
  private respBody: BodyBuffer | null = null;
  /** Which body (0 request, 1 response) is inside its callback and so writable; -1 none. */
  private bodyInCallback = -1;
  /** Local replies queued so far; compared around a callback (a nested encode may run inside it). */
  private localReplies = 0;
  private failHandled = false;
  private done = false;

  /** Whether the VM had already failed when this stream started (failure_policy FAIL_OPEN lets it pass). */
  private readonly startedOnFailedVm: boolean;

  constructor(private readonly vm: WasmVm, readonly callbacks: FilterCallbacks) {
    this.name = vm.plugin.name;
    this.stream = callbacks.stream;
    this.startedOnFailedVm = vm.failed;
  }

  /** A failed VM is transparent to this stream (fail_open, or FAIL_OPEN for streams started after the failure). */
  private get transparent(): boolean {
    return this.vm.plugin.failOpen || (this.vm.plugin.failOpenAfterFailure && this.startedOnFailedVm);
  }

  /** Map pointer as Envoy holds it now (null = unavailable). */
  map(type: number): HeaderMap | null {
    switch (type) {
      case 0: return this.reqHeaders;
      case 1: return this.reqTrailers;
      case 2: return this.respHeaders;
      case 3: return this.respTrailers;
      default: return null;
    }
  }

  requestHeadersForProperties(): HeaderMap | null {
    return this.reqHeaders;
  }

  body(type: number): BodyBuffer | null {
    return type === 0 ? this.reqBody : this.respBody;
  }

  writableBody(type: number): BodyBuffer | null {
    if (type !== this.bodyInCallback || this.inLog) return null;
    return type === 0 ? this.reqBody : this.respBody;
  }

  /** proxy_send_local_response: forces "stop" for this callback and replies after it returns. */
  queueLocalReply(reply: LocalReply): void {
    this.localReplies++;
    this.vmDefer(() => {
      if (!this.done) this.callbacks.sendLocalReply(reply);
    });
  }

  /** proxy_continue_stream(Request|Response): Envoy drops the request pointers now and continues after the call. */
  queueContinue(type: number): void {
    this.reqHeaders = null;
    this.reqBody = null;
    this.reqTrailers = null;
    this.vmDefer(() => {
      if (this.done) return;
      if (type === 0) this.callbacks.continueDecoding();
      else this.callbacks.continueEncoding();
    });
  }

  private vmDefer(act: () => void): void {
    this.vm.defer(act);
  }

  private ensureContext(): boolean {
    if (this.ctxId === 0) this.ctxId = this.vm.createStreamContext(this);
    return !this.vm.failed;
  }

  private failReply(): void {
    if (this.failHandled || this.done) return;
    this.failHandled = true;
    this.callbacks.sendLocalReply({ status: 503, body: new Uint8Array(0), headers: [], details: "wasm_fail_stream", grpcStatus: 14, from: this.name });
  }

  private failHeaders(): HeadersStatus {
    if (this.transparent) return "Continue";
    this.failReply();
    return "StopAllIterationAndWatermark";
  }

  private failData(): DataStatus {
    if (this.transparent) return "Continue";
    this.failReply();
    return "StopIterationNoBuffer";
  }

  private failTrailers(): TrailersStatus {
    if (this.transparent) return "Continue";
    this.failReply();
    return "StopIteration";
  }

  wantsLocalReplyEncoding(): boolean {
    return !this.vm.failed || this.transparent;
  }

  decodeHeaders(headers: HeaderMap, endStream: boolean): HeadersStatus {
    return this.onHeaders("reqHeaders", this.vm.onRequestHeaders, headers, endStream);
  }

  decodeData(data: BodyBuffer, endStream: boolean): DataStatus {
    return this.onData("reqBody", 0, this.vm.onRequestBody, data, endStream);
  }

  decodeTrailers(trailers: HeaderMap): TrailersStatus {
    return this.onTrailers("reqTrailers", this.vm.onRequestTrailers, trailers);
  }

  encodeHeaders(headers: HeaderMap, endStream: boolean): HeadersStatus {
    return this.onHeaders("respHeaders", this.vm.onResponseHeaders, headers, endStream);
  }

  encodeData(data: BodyBuffer, endStream: boolean): DataStatus {
    return this.onData("respBody", 1, this.vm.onResponseBody, data, endStream);
  }

  encodeTrailers(trailers: HeaderMap): TrailersStatus {
    return this.onTrailers("respTrailers", this.vm.onResponseTrailers, trailers);
  }

  // The three callback shapes, for either direction. A map or buffer is readable while its callback
  // runs and, when the filter stops, until it continues (Envoy drops it on Continue, docs/proxy-wasm-host.md §7.2).

  private onHeaders(slot: "reqHeaders" | "respHeaders", fn: Fn | undefined, headers: HeaderMap, endStream: boolean): HeadersStatus {
    if (this.vm.failed || !this.ensureContext()) return this.failHeaders();
    if (!fn) return "Continue";
    this[slot] = headers;
    const replies = this.localReplies;
    const r = this.vm.invoke(fn, this.ctxId, 3, headers.size, endStream ? 1 : 0);
    if (this.vm.failed) return this.failHeaders();
    if (this.localReplies !== replies) return "StopAllIterationAndWatermark";
    const st = coerceHeaders(r);
    if (st === "Continue") this[slot] = null;
    return st;
  }

  private onData(slot: "reqBody" | "respBody", bufferType: 0 | 1, fn: Fn | undefined, data: BodyBuffer, endStream: boolean): DataStatus {
    if (this.vm.failed || !this.ensureContext()) return this.failData();
    if (!fn) return "Continue";
    this[slot] = data;
    this.bodyInCallback = bufferType;
    const replies = this.localReplies;
    const r = this.vm.invoke(fn, this.ctxId, 3, data.length, endStream ? 1 : 0);
    this.bodyInCallback = -1;
    if (this.vm.failed) return this.failData();
    if (this.localReplies !== replies) return "StopIterationNoBuffer";
    const st = coerceData(r);
    if (st === "Continue") this[slot] = null;
    return st;
  }

  private onTrailers(slot: "reqTrailers" | "respTrailers", fn: Fn | undefined, trailers: HeaderMap): TrailersStatus {
    if (this.vm.failed || !this.ensureContext()) return this.failTrailers();
    if (!fn) return "Continue";
    this[slot] = trailers;
    const replies = this.localReplies;
    const r = this.vm.invoke(fn, this.ctxId, 2, trailers.size);
    if (this.vm.failed) return this.failTrailers();
    if (this.localReplies !== replies || r !== 0) return "StopIteration";
    this[slot] = null;
    return "Continue";
  }

  /** HTTP teardown (Envoy ≥ 1.16): on_log → on_done → on_delete; a never-created context is created first. */
  onStreamComplete(): void {
    if (this.done) return;
    this.done = true;
    const vm = this.vm;
    if (vm.failed || !this.ensureContext()) return;
    this.inLog = true;
    this.reqHeaders = this.stream.requestHeaders;
    this.reqTrailers = null;
    this.respHeaders = this.stream.responseHeaders ?? null;
    this.respTrailers = this.stream.responseTrailers ?? null;
    this.reqBody = null;
    this.respBody = null;
    if (vm.onLog) vm.invoke(vm.onLog, this.ctxId, 1);
    if (vm.onDone && !vm.failed) vm.invoke(vm.onDone, this.ctxId, 1);
    if (vm.onDelete && !vm.failed) vm.invoke(vm.onDelete, this.ctxId, 1);
    vm.deleteContext(this.ctxId);
  }
}
