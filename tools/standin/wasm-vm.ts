// One proxy-wasm VM (a worker's instance of a plugin's module): the ABI 0.2.x `env` and WASI host functions,
// per-VM context table, effective context, deferred after-call actions and failure state (docs/proxy-wasm-host.md §3–§6).
import { randomFillSync } from "node:crypto";
import { LOG_LEVEL_NAMES, MetricType, WasiErrno, WasmResult } from "./abi.js";
import type { Clock, TimerHandle } from "./clock.js";
import { HeaderMap } from "./header-map.js";
import { Wasm, type WasmInstance, type WasmMemory, type WasmModule } from "./wasm-api.js";
import type { EnvoyProfile } from "./host-signatures.js";
import type { HttpCallDispatcher, HttpCallResult } from "./http-callout.js";
import type { LogEntry, StreamInfo } from "./http-filter.js";
import { keyValuesSize, parsePairs, writeByteString, writeKeyValues } from "./pairs.js";
import { getProperty, type NodeInfo } from "./properties.js";
import type { SharedDataStore, SharedQueueRegistry } from "./shared-state.js";
import type { Stat, StatsStore } from "./stats.js";
import type { WasmStreamFilter } from "./wasm-stream-filter.js";

const { Ok, NotFound, BadArgument, InvalidMemoryAccess, InternalFailure, ParseFailure, Unimplemented } = WasmResult;

export type { LogEntry };

export interface PluginIdentity {
  name: string;
  rootId: string;
  vmId: string;
  configuration: Uint8Array;
  vmConfiguration: Uint8Array;
  failOpen: boolean;
  /**
   * Envoy 1.40 `failure_policy: FAIL_OPEN`: the stream whose callback failed the VM still gets the 503;
   * streams that start on the failed VM pass through (unlike the deprecated fail_open, which lets both pass).
   */
  failOpenAfterFailure: boolean;
  /** WASI environment variables configured for the VM. */
  environment: Readonly<Record<string, string>>;
}

export interface ForeignCallContext {
  stream: StreamInfo | undefined;
  clearRouteCache(): void;
}
/** A foreign function: returns a WasmResult and optional result bytes. */
export type ForeignFunction = (args: Uint8Array, ctx: ForeignCallContext) => { result: number; data?: Uint8Array };

export interface VmHost {
  readonly clock: Clock;
  readonly sharedData: SharedDataStore;
  readonly queues: SharedQueueRegistry;
  readonly stats: StatsStore;
  readonly profile: EnvoyProfile;
  /** Minimum level captured (and reported by proxy_get_log_level). */
  readonly logLevel: number;
  readonly node: NodeInfo;
  /** Old Envoy: every request-header mutation clears the route cache (§7.5). */
  readonly implicitRouteCacheClear: boolean;
  readonly http: HttpCallDispatcher;
  readonly foreignFunctions: ReadonlyMap<string, ForeignFunction>;
  random(buf: Uint8Array): void;
  onLog(e: LogEntry): void;
}

interface RootState {
  id: number;
  tick: TimerHandle | undefined;
  tickGen: number;
  statusCode: number;
  statusMessage: string;
  nextToken: number;
  pendingDone: boolean;
}

interface Ctx {
  id: number;
  root: RootState;
  /** The stream filter for stream contexts; null for the root context. */
  filter: WasmStreamFilter | null;
}

interface MetricSlot { stat: Stat; type: number }

export type Fn = (...args: number[]) => number;

export class VmFailure extends Error {
  readonly code = "ERR_WASM_VM_FAILED";
}

export class WasmVm {
  readonly contexts = new Map<number, Ctx>();
  failed = false;
  failure: unknown;
  rootId = 0;
  private root!: RootState;
  private instance!: WasmInstance;
  private memory!: WasmMemory;
  private ab: ArrayBuffer | undefined;
  private buf!: Buffer;
  private mallocFn!: Fn;
  private nextContextId = 1;
  private current = 0;
  private effective = 0;
  private deferred: (() => void)[] = [];
  private configAvailable = false;
  private callResponse: HttpCallResult | null = null;
  private callData: Uint8Array | null = null;
  private readonly metrics = new Map<number, MetricSlot>();
  private nextMetric = [4, 5, 6];
  private nextHttpToken = 4;
  private readonly pendingHttp = new Set<number>();
  private readonly enc = new TextEncoder();

  // Callback exports, resolved once.
  private e: Record<string, Fn | undefined> = {};
  onRequestHeaders: Fn | undefined;
  onRequestBody: Fn | undefined;
  onRequestTrailers: Fn | undefined;
  onResponseHeaders: Fn | undefined;
  onResponseBody: Fn | undefined;
  onResponseTrailers: Fn | undefined;
  onLog: Fn | undefined;
  onDone: Fn | undefined;
  onDelete: Fn | undefined;
  onContextCreate: Fn | undefined;

  constructor(
    readonly host: VmHost,
    readonly plugin: PluginIdentity,
    readonly worker: number,
  ) {}

  // ---------------------------------------------------------------- lifecycle

  /** Instantiates and runs VM start + configure (§6.3). Returns an error message, or undefined on success. */
  start(module: WasmModule): string | undefined {
    try {
      this.instance = new Wasm.Instance(module, this.imports());
    } catch (err) {
      this.markFailed(err, "instantiate");
      return `instantiation failed: ${(err as Error).message}`;
    }
    const ex = this.instance.exports as Record<string, unknown>;
    const mem = ex["memory"];
    if (!(mem instanceof (Wasm.Memory as unknown as new () => WasmMemory))) return this.startFailure("module exports no memory");
    this.memory = mem;
    this.refresh();
    const fn = (n: string): Fn | undefined => (typeof ex[n] === "function" ? (ex[n] as Fn) : undefined);
    const malloc = fn("malloc") ?? fn("proxy_on_memory_allocate");
    if (!malloc) return this.startFailure("module exports neither malloc nor proxy_on_memory_allocate");
    this.mallocFn = malloc;
    for (const n of Object.keys(ex)) this.e[n] = fn(n);
    this.onRequestHeaders = fn("proxy_on_request_headers");
    this.onRequestBody = fn("proxy_on_request_body");
    this.onRequestTrailers = fn("proxy_on_request_trailers");
    this.onResponseHeaders = fn("proxy_on_response_headers");
    this.onResponseBody = fn("proxy_on_response_body");
    this.onResponseTrailers = fn("proxy_on_response_trailers");
    this.onLog = fn("proxy_on_log");
    this.onDone = fn("proxy_on_done");
    this.onDelete = fn("proxy_on_delete");
    this.onContextCreate = fn("proxy_on_context_create");

    const init = fn("_initialize");
    if (init) {
      this.invoke(init, 0, 0);
      const main = fn("__main_void") ?? fn("main");
      if (main && !this.failed) this.invoke(main, 0, 0);
    } else {
      const start = fn("_start");
      if (start) this.invoke(start, 0, 0);
    }
    if (this.failed) return this.startFailure("_initialize/_start trapped");
    const id = this.nextContextId++;
    this.root = { id, tick: undefined, tickGen: 0, statusCode: 0, statusMessage: "", nextToken: 1, pendingDone: false };
    this.rootId = id;
    this.contexts.set(id, { id, root: this.root, filter: null });
    if (this.onContextCreate) this.invoke(this.onContextCreate, id, 2, 0);
    if (this.failed) return this.startFailure("proxy_on_context_create trapped");
    const vmStart = fn("proxy_on_vm_start");
    if (vmStart) {
      const ok = this.invoke(vmStart, id, 2, this.plugin.vmConfiguration.byteLength);
      if (this.failed) return this.startFailure("proxy_on_vm_start trapped");
      if (ok === 0) return this.startFailure("proxy_on_vm_start returned false");
    }
    const configure = fn("proxy_on_configure");
    if (configure) {
      this.configAvailable = true;
      const ok = this.invoke(configure, id, 2, this.plugin.configuration.byteLength);
      this.configAvailable = false;
      if (this.failed) return this.startFailure("proxy_on_configure trapped");
      if (ok === 0) return this.startFailure("proxy_on_configure returned false");
    }
    return undefined;
  }

  private startFailure(reason: string): string {
    if (!this.failed) this.markFailed(new VmFailure(reason), "start");
    return reason;
  }

  /** Shuts the root context down (on_done, then on_delete now or after proxy_done). */
  shutdown(): void {
    if (this.failed || !this.root) return;
    this.cancelTick(this.root);
    const done = this.e["proxy_on_done"];
    const r = done ? this.invoke(done, this.root.id, 1) : 1;
    if (this.failed) return;
    if (r !== 0) this.deleteRoot();
    else this.root.pendingDone = true;
  }

  /** Discards the VM without callbacks (Envoy's canary VM after the configuration check). */
  dispose(): void {
    if (this.root) this.cancelTick(this.root);
    this.contexts.clear();
    this.failed = true;
  }

  private deleteRoot(): void {
    const del = this.e["proxy_on_delete"];
    if (del) this.invoke(del, this.root.id, 1);
    this.contexts.delete(this.root.id);
  }

  private markFailed(err: unknown, where: string): void {
    if (this.failed) return;
    this.failed = true;
    this.failure = err;
    if (this.root) this.cancelTick(this.root);
    this.emitLog(5, `wasm VM failed in ${where}: ${err instanceof Error ? err.message : String(err)}`, 0);
  }

  // ---------------------------------------------------------------- calling into the module

  /**
   * Calls an export under context `ctx` (§6.2): effective context reset, trap ⇒ VM failed, then the deferred
   * after-call actions run in FIFO order. Returns the i32 result (0 when the VM failed).
   */
  invoke(fn: Fn, ctx: number, n: number, a = 0, b = 0, c = 0, d = 0): number {
    if (this.failed) return 0;
    const prevCur = this.current;
    const prevEff = this.effective;
    this.current = ctx;
    this.effective = 0;
    let r = 0;
    try {
      switch (n) {
        case 0: r = fn(); break;
        case 1: r = fn(ctx); break;
        case 2: r = fn(ctx, a); break;
        case 3: r = fn(ctx, a, b); break;
        case 4: r = fn(ctx, a, b, c); break;
        default: r = fn(ctx, a, b, c, d); break;
      }
    } catch (err) {
      this.markFailed(err, "callback");
    } finally {
      this.current = prevCur;
      this.effective = prevEff;
    }
    if (this.failed) {
      this.deferred.length = 0;
      return 0;
    }
    if (this.deferred.length > 0) {
      const acts = this.deferred;
      this.deferred = [];
      for (const act of acts) act();
    }
    return r === undefined ? 0 : r >>> 0;
  }

  /** Creates a stream context lazily (on_context_create(C, R)). */
  createStreamContext(filter: WasmStreamFilter): number {
    const id = this.nextContextId++;
    this.contexts.set(id, { id, root: this.root, filter });
    if (this.onContextCreate) this.invoke(this.onContextCreate, id, 2, this.root.id);
    return id;
  }

  deleteContext(id: number): void {
    this.contexts.delete(id);
  }

  get rootContextId(): number {
    return this.root?.id ?? 0;
  }

  /** Delivers a completed http_call to the owning root (skipped if the VM failed or the root is gone). */
  private deliverHttpResponse(root: RootState, token: number, r: HttpCallResult): void {
    if (!this.pendingHttp.delete(token)) return;
    if (this.failed || !this.contexts.has(root.id)) return;
    const fn = this.e["proxy_on_http_call_response"];
    if (!fn) return;
    if (r.kind === "reset") {
      root.statusCode = 11;
      root.statusMessage = "reset";
      this.invoke(fn, root.id, 5, token, 0, 0, 0);
      return;
    }
    root.statusCode = 0;
    root.statusMessage = "";
    this.callResponse = r;
    try {
      this.invoke(fn, root.id, 5, token, r.headers.size, r.body.byteLength, r.trailers.size);
    } finally {
      this.callResponse = null;
    }
  }

  /** Number of http_call tokens still awaiting completion on this VM. */
  get pendingHttpCalls(): number {
    return this.pendingHttp.size;
  }

  private deliverQueueReady(rootId: number, token: number): void {
    if (this.failed || !this.contexts.has(rootId)) return;
    const fn = this.e["proxy_on_queue_ready"];
    if (fn) this.invoke(fn, rootId, 2, token);
  }

  /** Invokes proxy_on_foreign_function with CallData (buffer 8) readable. */
  callForeignFunctionExport(functionId: number, args: Uint8Array): void {
    const fn = this.e["proxy_on_foreign_function"];
    if (!fn || this.failed) return;
    this.callData = args;
    try {
      this.invoke(fn, this.root.id, 3, functionId, args.byteLength);
    } finally {
      this.callData = null;
    }
  }

  private cancelTick(root: RootState): void {
    if (root.tick) this.host.clock.cancel(root.tick);
    root.tick = undefined;
    root.tickGen++;
  }

  private setTick(root: RootState, ms: number): void {
    this.cancelTick(root);
    if (ms === 0) return;
    const gen = root.tickGen;
    const fire = (): void => {
      if (root.tickGen !== gen || this.failed || !this.contexts.has(root.id)) return;
      root.tick = this.host.clock.schedule(ms, fire);
      const tick = this.e["proxy_on_tick"];
      if (tick) this.invoke(tick, root.id, 1);
    };
    root.tick = this.host.clock.schedule(ms, fire);
  }

  // ---------------------------------------------------------------- test hooks

  /**
   * Calls any export with exactly `args` under context `ctxId` (current context = ctxId, deferred actions run
   * afterwards), as if the module had called it from a callback of that context. Returns the i32 result.
   */
  callExport(name: string, ctxId: number, ...args: (number | bigint)[]): number {
    const fn = this.e[name] as ((...a: (number | bigint)[]) => number) | undefined;
    if (!fn) throw new Error(`module exports no function ${name}`);
    const wrapped: Fn = () => fn(...args);
    return this.invoke(wrapped, ctxId, 0);
  }

  /** Ids of live stream contexts, oldest first. */
  streamContextIds(): number[] {
    return [...this.contexts.values()].filter((c) => c.filter).map((c) => c.id);
  }

  readMemory(ptr: number, len: number): Uint8Array {
    this.refresh();
    return new Uint8Array(this.buf.subarray(ptr, ptr + len));
  }

  readU32(ptr: number): number {
    this.refresh();
    return this.buf.readUInt32LE(ptr);
  }

  writeMemory(ptr: number, bytes: Uint8Array): void {
    this.refresh();
    this.buf.set(bytes, ptr);
  }

  get memoryBytes(): number {
    this.refresh();
    return this.buf.length;
  }

  // ---------------------------------------------------------------- memory helpers

  private refresh(): void {
    const ab = this.memory.buffer as ArrayBuffer;
    if (ab !== this.ab) {
      this.ab = ab;
      this.buf = Buffer.from(ab);
    }
  }

  private ok(ptr: number, len: number): boolean {
    return ptr + len <= this.buf.length;
  }

  private readStr(ptr: number, len: number): string | undefined {
    ptr >>>= 0;
    len >>>= 0;
    this.refresh();
    if (ptr + len > this.buf.length) return undefined;
    return this.buf.toString("latin1", ptr, ptr + len);
  }

  private readBytes(ptr: number, len: number): Uint8Array | undefined {
    ptr >>>= 0;
    len >>>= 0;
    this.refresh();
    if (ptr + len > this.buf.length) return undefined;
    return new Uint8Array(this.buf.subarray(ptr, ptr + len)); // a copy: Buffer#slice would alias wasm memory
  }

  private writeU32(ptr: number, v: number): boolean {
    ptr >>>= 0;
    this.refresh();
    if (ptr + 4 > this.buf.length) return false;
    this.buf.writeUInt32LE(v >>> 0, ptr);
    return true;
  }

  private writeU64(ptr: number, v: bigint): boolean {
    ptr >>>= 0;
    this.refresh();
    if (ptr + 8 > this.buf.length) return false;
    this.buf.writeBigUInt64LE(BigInt.asUintN(64, v), ptr);
    return true;
  }

  /** Calls the module allocator under the VM context (may grow memory: views are refreshed). */
  private alloc(len: number): number {
    const prevCur = this.current;
    const prevEff = this.effective;
    this.current = 0;
    this.effective = 0;
    let p: number;
    try {
      p = this.mallocFn(len) >>> 0;
    } finally {
      this.current = prevCur;
      this.effective = prevEff;
    }
    this.refresh();
    return p;
  }

  /** §2.1: empty → 0/0 without allocating; else exactly len bytes from malloc, then address and length. */
  private writeOut(data: Uint8Array | string, ptrPtr: number, sizePtr: number): number {
    ptrPtr >>>= 0;
    sizePtr >>>= 0;
    const len = typeof data === "string" ? data.length : data.byteLength;
    if (len === 0) {
      if (!this.writeU32(ptrPtr, 0) || !this.writeU32(sizePtr, 0)) return InvalidMemoryAccess;
      return Ok;
    }
    const p = this.alloc(len);
    if (p === 0 || !this.ok(p, len)) return InvalidMemoryAccess;
    if (typeof data === "string") writeByteString(this.buf, data, p);
    else this.buf.set(data, p);
    if (!this.writeU32(ptrPtr, p) || !this.writeU32(sizePtr, len)) return InvalidMemoryAccess;
    return Ok;
  }

  // ---------------------------------------------------------------- context helpers

  private ctx(): Ctx | undefined {
    if (this.effective !== 0) {
      const c = this.contexts.get(this.effective);
      if (c) return c;
    }
    return this.contexts.get(this.current);
  }

  private streamFilter(): WasmStreamFilter | null {
    return this.ctx()?.filter ?? null;
  }

  private rootState(): RootState {
    return this.ctx()?.root ?? this.root;
  }

  private emitLog(level: number, message: string, ctxId: number): void {
    if (level < this.host.logLevel) return;
    const f = this.contexts.get(ctxId)?.filter;
    const entry: LogEntry = {
      level: LOG_LEVEL_NAMES[level]!, message, plugin: this.plugin.name, rootId: this.plugin.rootId,
      vmId: this.plugin.vmId, worker: this.worker, contextId: ctxId, streamId: f?.stream.id,
    };
    this.host.onLog(entry);
    if (f && f.stream.logs.length < 1000) f.stream.logs.push(entry);
  }

  /** Map lookup for reads (§7.2); a number is the error to return. */
  private mapFor(type: number): HeaderMap | null | number {
    if (type > 7) return BadArgument;
    if (type >= 6) {
      const r = this.callResponse;
      if (!r || r.kind !== "response") return null;
      return type === 6 ? r.headers : r.trailers;
    }
    if (type >= 4) return null;
    const f = this.streamFilter();
    if (!f) return null;
    return f.map(type);
  }

  private writableMap(type: number): HeaderMap | number {
    if (type > 7) return BadArgument;
    if (type > 3) return BadArgument;
    const f = this.streamFilter();
    if (!f || f.inLog) return BadArgument;
    return f.map(type) ?? BadArgument;
  }

  private afterRequestHeaderMutation(type: number): void {
    if (type !== 0 || !this.host.implicitRouteCacheClear) return;
    this.streamFilter()?.callbacks.clearRouteCache("implicit");
  }

  /** Queues an after-call action (runs when the current callback returns, FIFO). */
  defer(act: () => void): void {
    this.deferred.push(act);
  }

  // ---------------------------------------------------------------- imports

  private imports(): Record<string, Record<string, (...a: never[]) => unknown>> {
    const wasi = this.wasiImports();
    return { env: this.envImports(), wasi_snapshot_preview1: wasi, wasi_unstable: wasi };
  }

  private envImports(): Record<string, (...a: never[]) => unknown> {
    const host = this.host;
    const vm = this;
    const env = {
      proxy_log: (level: number, ptr: number, len: number): number => {
        if (level >>> 0 > 5) return BadArgument;
        if (level < host.logLevel) return Ok;
        ptr >>>= 0;
        len >>>= 0;
        vm.refresh();
        if (!vm.ok(ptr, len)) return InvalidMemoryAccess;
        vm.emitLog(level, vm.buf.toString("utf8", ptr, ptr + len), vm.ctx()?.id ?? 0);
        return Ok;
      },
      proxy_get_log_level: (ptr: number): number => (vm.writeU32(ptr, host.logLevel) ? Ok : InvalidMemoryAccess),
      proxy_get_status: (codePtr: number, msgPtr: number, msgSize: number): number => {
        const root = vm.rootState();
        if (!vm.writeU32(codePtr, root.statusCode)) return InvalidMemoryAccess;
        return vm.writeOut(root.statusMessage, msgPtr, msgSize);
      },
      proxy_set_property: (pPtr: number, pLen: number, vPtr: number, vLen: number): number => {
        const path = vm.readStr(pPtr, pLen);
        const value = vm.readBytes(vPtr, vLen);
        if (path === undefined || value === undefined) return InvalidMemoryAccess;
        const f = vm.streamFilter();
        if (!f) return NotFound;
        f.stream.filterState.set(`wasm.${path}`, value);
        return Ok;
      },
      proxy_get_property: (pPtr: number, pLen: number, retPtr: number, retSize: number): number => {
        const path = vm.readStr(pPtr, pLen);
        if (path === undefined) return InvalidMemoryAccess;
        const f = vm.streamFilter();
        const v = getProperty(path, {
          pluginName: vm.plugin.name, rootId: vm.plugin.rootId, vmId: vm.plugin.vmId, node: host.node,
          stream: f?.stream, requestHeaders: f ? f.requestHeadersForProperties() : null,
          responseHeaders: f ? f.map(2) : null, responseTrailers: f ? f.map(3) : null, nowMs: host.clock.nowMs(),
        });
        if (typeof v === "number") return v;
        return vm.writeOut(v, retPtr, retSize);
      },
      proxy_send_local_response: (status: number, dPtr: number, dLen: number, bPtr: number, bLen: number,
        hPtr: number, hLen: number, grpcStatus: number): number => {
        const details = vm.readStr(dPtr, dLen);
        const body = vm.readBytes(bPtr, bLen);
        const hbytes = vm.readBytes(hPtr, hLen);
        if (details === undefined || body === undefined || hbytes === undefined) return InvalidMemoryAccess;
        const f = vm.streamFilter();
        if (!f) return Ok;
        const headers = parsePairs(hbytes).map(([k, v]) => [k.toLowerCase(), v] as [string, string]);
        const gs = grpcStatus >>> 0;
        f.queueLocalReply({
          status: status >>> 0, body, headers,
          details: host.profile === "current" ? details.replace(/ /g, "_") : details,
          grpcStatus: gs <= 16 ? gs : undefined, from: vm.plugin.name,
        });
        return Ok;
      },
      proxy_get_shared_data: (kPtr: number, kLen: number, vPtrPtr: number, vSizePtr: number, casPtr: number): number => {
        const key = vm.readStr(kPtr, kLen);
        if (key === undefined) return InvalidMemoryAccess;
        const e = host.sharedData.get(vm.plugin.vmId, key);
        if (!e) return NotFound;
        const r = vm.writeOut(e.value, vPtrPtr, vSizePtr);
        if (r !== Ok) return r;
        return vm.writeU32(casPtr, e.cas) ? Ok : InvalidMemoryAccess;
      },
      proxy_set_shared_data: (kPtr: number, kLen: number, vPtr: number, vLen: number, cas: number): number => {
        const key = vm.readStr(kPtr, kLen);
        const value = vm.readBytes(vPtr, vLen);
        if (key === undefined || value === undefined) return InvalidMemoryAccess;
        return host.sharedData.set(vm.plugin.vmId, key, value, cas >>> 0);
      },
      proxy_register_shared_queue: (nPtr: number, nLen: number, tokenPtr: number): number => {
        const name = vm.readStr(nPtr, nLen);
        if (name === undefined) return InvalidMemoryAccess;
        const rootId = vm.rootState().id;
        const token = host.queues.register(vm.plugin.vmId, name, {
          notify: (t) => queueMicrotask(() => vm.deliverQueueReady(rootId, t)),
        });
        return vm.writeU32(tokenPtr, token) ? Ok : InvalidMemoryAccess;
      },
      proxy_resolve_shared_queue: (vPtr: number, vLen: number, nPtr: number, nLen: number, tokenPtr: number): number => {
        const vmId = vm.readStr(vPtr, vLen);
        const name = vm.readStr(nPtr, nLen);
        if (vmId === undefined || name === undefined) return InvalidMemoryAccess;
        const token = host.queues.resolve(vmId === "" ? vm.plugin.vmId : vmId, name);
        if (token === undefined) return NotFound;
        return vm.writeU32(tokenPtr, token) ? Ok : InvalidMemoryAccess;
      },
      proxy_dequeue_shared_queue: (token: number, ptrPtr: number, sizePtr: number): number => {
        const r = host.queues.dequeue(token >>> 0);
        if (r.result !== Ok) return r.result;
        return vm.writeOut(r.value!, ptrPtr, sizePtr);
      },
      proxy_enqueue_shared_queue: (token: number, ptr: number, len: number): number => {
        const value = vm.readBytes(ptr, len);
        if (value === undefined) return InvalidMemoryAccess;
        return host.queues.enqueue(token >>> 0, value);
      },
      proxy_get_header_map_value: (type: number, kPtr: number, kLen: number, retPtr: number, retSize: number): number => {
        const key = vm.readStr(kPtr, kLen);
        if (key === undefined) return InvalidMemoryAccess;
        const map = vm.mapFor(type >>> 0);
        if (typeof map === "number") return map;
        if (!map) return vm.streamFilter()?.inLog ? NotFound : BadArgument;
        const v = map.get(key);
        if (v === undefined) return NotFound;
        return vm.writeOut(v, retPtr, retSize);
      },
      proxy_add_header_map_value: (type: number, kPtr: number, kLen: number, vPtr: number, vLen: number): number => {
        const key = vm.readStr(kPtr, kLen);
        const value = vm.readStr(vPtr, vLen);
        if (key === undefined || value === undefined) return InvalidMemoryAccess;
        const map = vm.writableMap(type >>> 0);
        if (typeof map === "number") return map;
        map.add(key, value);
        vm.afterRequestHeaderMutation(type);
        return Ok;
      },
      proxy_replace_header_map_value: (type: number, kPtr: number, kLen: number, vPtr: number, vLen: number): number => {
        const key = vm.readStr(kPtr, kLen);
        const value = vm.readStr(vPtr, vLen);
        if (key === undefined || value === undefined) return InvalidMemoryAccess;
        const map = vm.writableMap(type >>> 0);
        if (typeof map === "number") return map;
        map.set(key, value);
        vm.afterRequestHeaderMutation(type);
        return Ok;
      },
      proxy_remove_header_map_value: (type: number, kPtr: number, kLen: number): number => {
        const key = vm.readStr(kPtr, kLen);
        if (key === undefined) return InvalidMemoryAccess;
        const map = vm.writableMap(type >>> 0);
        if (typeof map === "number") return map;
        map.remove(key);
        vm.afterRequestHeaderMutation(type);
        return Ok;
      },
      proxy_get_header_map_pairs: (type: number, retPtr: number, retSize: number): number => {
        const map = vm.mapFor(type >>> 0);
        if (typeof map === "number") return map;
        if (!map || map.size === 0) return vm.writeOut("", retPtr, retSize);
        const size = keyValuesSize(map.keys, map.values);
        const p = vm.alloc(size);
        if (p === 0 || !vm.ok(p, size)) return InvalidMemoryAccess;
        writeKeyValues(vm.buf, p, map.keys, map.values);
        if (!vm.writeU32(retPtr, p) || !vm.writeU32(retSize, size)) return InvalidMemoryAccess;
        return Ok;
      },
      proxy_set_header_map_pairs: (type: number, ptr: number, size: number): number => {
        const bytes = vm.readBytes(ptr, size);
        if (bytes === undefined) return InvalidMemoryAccess;
        const map = vm.writableMap(type >>> 0);
        if (typeof map === "number") return map;
        map.clear();
        for (const [k, v] of parsePairs(bytes)) map.add(k, v);
        vm.afterRequestHeaderMutation(type);
        return Ok;
      },
      proxy_get_header_map_size: (type: number, retPtr: number): number => {
        if (type >>> 0 > 7) return BadArgument;
        if (type >>> 0 > 3) return BadArgument;
        const map = vm.streamFilter()?.map(type >>> 0);
        if (!map) return BadArgument;
        return vm.writeU32(retPtr, map.byteSize) ? Ok : InvalidMemoryAccess;
      },
      proxy_get_buffer_status: (type: number, sizePtr: number, flagsPtr: number): number => {
        const b = vm.bufferFor(type >>> 0);
        if (typeof b === "number") return b;
        if (!vm.writeU32(sizePtr, b.byteLength) || !vm.writeU32(flagsPtr, 0)) return InvalidMemoryAccess;
        return Ok;
      },
      proxy_get_buffer_bytes: (type: number, start: number, max: number, retPtr: number, retSize: number): number => {
        const b = vm.bufferFor(type >>> 0);
        if (typeof b === "number") return b;
        start >>>= 0;
        max >>>= 0;
        const size = b.byteLength;
        const len = start > size ? 0 : Math.min(max, size - start);
        return vm.writeOut(len === 0 ? "" : b.subarray(start, start + len), retPtr, retSize);
      },
      proxy_set_buffer_bytes: (type: number, start: number, size: number, dPtr: number, dLen: number): number => {
        const data = vm.readBytes(dPtr, dLen);
        if (data === undefined) return InvalidMemoryAccess;
        const body = vm.streamFilter()?.writableBody(type >>> 0);
        if (!body) return BadArgument;
        start >>>= 0;
        size >>>= 0;
        const len = body.length;
        const cur = body.bytes;
        if (host.profile === "current") {
          if (start === 0) body.bytes = Buffer.concat([data, cur.subarray(Math.min(size, len))]);
          else if (start >= len) body.bytes = Buffer.concat([cur, data]);
          else return BadArgument;
        } else {
          if (start === 0 && size === 0) body.bytes = Buffer.concat([data, cur]);
          else if (start === 0 && size >= len) body.bytes = data;
          else if (start >= len) body.bytes = Buffer.concat([cur, data]);
          else return BadArgument;
        }
        return Ok;
      },
      proxy_http_call: (cPtr: number, cLen: number, hPtr: number, hLen: number, bPtr: number, bLen: number,
        tPtr: number, tLen: number, timeout: number, tokenPtr: number): number => {
        if (!vm.writeU32(tokenPtr, 0)) return InvalidMemoryAccess;
        const cluster = vm.readStr(cPtr, cLen);
        const hbytes = vm.readBytes(hPtr, hLen);
        const body = vm.readBytes(bPtr, bLen);
        const tbytes = vm.readBytes(tPtr, tLen);
        if (cluster === undefined || hbytes === undefined || body === undefined || tbytes === undefined) return InvalidMemoryAccess;
        if ((timeout | 0) < 0) return BadArgument;
        if (!host.http.has(cluster)) return BadArgument;
        const headers = new HeaderMap();
        for (const [k, v] of parsePairs(hbytes)) headers.add(k, v);
        if (!headers.has(":path") || !headers.has(":method") || !headers.has(":authority")) return BadArgument;
        if (body.byteLength) headers.set("content-length", String(body.byteLength));
        const trailers = new HeaderMap();
        for (const [k, v] of parsePairs(tbytes)) trailers.add(k, v);
        const root = vm.rootState();
        let token: number;
        if (host.profile === "current") {
          token = vm.nextHttpToken;
          vm.nextHttpToken += 4;
        } else token = root.nextToken++;
        vm.pendingHttp.add(token);
        try {
          host.http.dispatch({ cluster, headers, body, trailers, timeoutMs: timeout >>> 0 }, (r) => vm.deliverHttpResponse(root, token, r));
        } catch {
          vm.pendingHttp.delete(token);
          return InternalFailure;
        }
        return vm.writeU32(tokenPtr, token) ? Ok : InvalidMemoryAccess;
      },
      proxy_grpc_call: (...args: number[]): number => {
        const tokenPtr = args[args.length - 1]!;
        if (!vm.writeU32(tokenPtr, 0)) return InvalidMemoryAccess;
        const service = vm.readStr(args[0]!, args[1]!);
        if (service === undefined) return InvalidMemoryAccess;
        return host.http.has(service) ? InternalFailure : ParseFailure;
      },
      proxy_grpc_stream: (...args: number[]): number => {
        const tokenPtr = args[args.length - 1]!;
        if (!vm.writeU32(tokenPtr, 0)) return InvalidMemoryAccess;
        const service = vm.readStr(args[0]!, args[1]!);
        if (service === undefined) return InvalidMemoryAccess;
        return host.http.has(service) ? InternalFailure : ParseFailure;
      },
      proxy_grpc_close: (token: number): number => (vm.pendingHttp.has(token >>> 0) ? BadArgument : NotFound),
      proxy_grpc_cancel: (token: number): number => (vm.pendingHttp.has(token >>> 0) ? BadArgument : NotFound),
      proxy_grpc_send: (token: number): number => (vm.pendingHttp.has(token >>> 0) ? BadArgument : NotFound),
      proxy_set_tick_period_milliseconds: (ms: number): number => {
        vm.setTick(vm.rootState(), ms >>> 0);
        return Ok;
      },
      proxy_get_current_time_nanoseconds: (retPtr: number): number =>
        vm.writeU64(retPtr, BigInt(Math.round(host.clock.nowMs() * 1e6))) ? Ok : InvalidMemoryAccess,
      proxy_define_metric: (type: number, nPtr: number, nLen: number, retPtr: number): number => {
        type >>>= 0;
        if (type > 2) return BadArgument;
        const name = vm.readStr(nPtr, nLen);
        if (name === undefined) return InvalidMemoryAccess;
        const stat = host.stats.define(name, type === MetricType.Counter ? "counter" : type === MetricType.Gauge ? "gauge" : "histogram");
        const id = vm.nextMetric[type]!;
        vm.nextMetric[type] = id + 4;
        vm.metrics.set(id, { stat, type });
        return vm.writeU32(retPtr, id) ? Ok : InvalidMemoryAccess;
      },
      proxy_increment_metric: (id: number, delta: bigint): number => {
        id >>>= 0;
        const tag = id & 3;
        if (tag === MetricType.Counter) {
          const m = vm.metrics.get(id);
          if (!m) return NotFound;
          if (delta <= 0n) return BadArgument;
          m.stat.value = BigInt.asUintN(64, m.stat.value + delta);
          return Ok;
        }
        if (tag === MetricType.Gauge) {
          const m = vm.metrics.get(id);
          if (!m) return NotFound;
          m.stat.value = BigInt.asUintN(64, m.stat.value + delta);
          return Ok;
        }
        return BadArgument;
      },
      proxy_record_metric: (id: number, value: bigint): number => {
        id >>>= 0;
        const tag = id & 3;
        if (tag === 3) return BadArgument;
        const m = vm.metrics.get(id);
        if (!m) return NotFound;
        const v = BigInt.asUintN(64, value);
        if (tag === MetricType.Counter) m.stat.value = BigInt.asUintN(64, m.stat.value + v);
        else if (tag === MetricType.Gauge) m.stat.value = v;
        else host.stats.record(m.stat, v);
        return Ok;
      },
      proxy_get_metric: (id: number, retPtr: number): number => {
        id >>>= 0;
        const tag = id & 3;
        if (tag >= 2) return BadArgument;
        const m = vm.metrics.get(id);
        if (!m) return NotFound;
        return vm.writeU64(retPtr, m.stat.value) ? Ok : InvalidMemoryAccess;
      },
      proxy_set_effective_context: (id: number): number => {
        id >>>= 0;
        if (!vm.contexts.has(id)) return BadArgument;
        vm.effective = id;
        return Ok;
      },
      proxy_done: (): number => {
        const c = vm.ctx();
        if (!c || c.filter || !c.root.pendingDone) return NotFound;
        c.root.pendingDone = false;
        vm.defer(() => vm.deleteRoot());
        return Ok;
      },
      proxy_call_foreign_function: (nPtr: number, nLen: number, aPtr: number, aLen: number, retPtr: number, retSize: number): number => {
        const name = vm.readStr(nPtr, nLen);
        const args = vm.readBytes(aPtr, aLen);
        if (name === undefined || args === undefined) return InvalidMemoryAccess;
        const ff = host.foreignFunctions.get(name);
        if (!ff) return NotFound;
        const f = vm.streamFilter();
        const r = ff(args, { stream: f?.stream, clearRouteCache: () => f?.callbacks.clearRouteCache("foreign_function") });
        const w = vm.writeOut(r.data ?? "", retPtr, retSize);
        return w !== Ok ? w : r.result;
      },
      proxy_continue_stream: (type: number): number => {
        type >>>= 0;
        if (type > 3) return BadArgument;
        if (type === 3) return Unimplemented;
        const f = vm.streamFilter();
        if (f && type <= 1) f.queueContinue(type);
        return Ok;
      },
      proxy_close_stream: (type: number): number => {
        if (type >>> 0 > 3) return BadArgument;
        const f = vm.streamFilter();
        if (f) {
          const details = host.profile === "current" ? "wasm_close_stream" : "wasm_fail_stream";
          vm.defer(() => f.callbacks.resetStream(details));
        }
        return Ok;
      },
    };
    return env as unknown as Record<string, (...a: never[]) => unknown>;
  }

  /** Buffer lookup for reads (§4.4, §7.2); a number is the error to return. */
  private bufferFor(type: number): Uint8Array | number {
    switch (type) {
      case 0:
      case 1: {
        const b = this.streamFilter()?.body(type);
        return b ? b.bytes : new Uint8Array(0);
      }
      case 4: {
        const r = this.callResponse;
        return r && r.kind === "response" ? r.body : NotFound;
      }
      case 5: return new Uint8Array(0);
      case 6: return this.plugin.vmConfiguration;
      case 7: return this.configAvailable ? this.plugin.configuration : NotFound;
      case 8: return this.callData ?? new Uint8Array(0);
      case 2:
      case 3: return NotFound;
      default: return BadArgument;
    }
  }

  private wasiImports(): Record<string, (...a: never[]) => unknown> {
    const vm = this;
    const host = this.host;
    const envEntries = (): string[] => Object.entries(vm.plugin.environment).map(([k, v]) => `${k}=${v}\0`);
    const wasi = {
      fd_write: (fd: number, iovs: number, n: number, nwrittenPtr: number): number => {
        if (fd !== 1 && fd !== 2) return WasiErrno.BADF;
        vm.refresh();
        iovs >>>= 0;
        n >>>= 0;
        if (!vm.ok(iovs, n * 8)) return WasiErrno.FAULT;
        const parts: Buffer[] = [];
        let total = 0;
        for (let i = 0; i < n; i++) {
          const p = vm.buf.readUInt32LE(iovs + i * 8);
          const l = vm.buf.readUInt32LE(iovs + i * 8 + 4);
          if (!vm.ok(p, l)) return WasiErrno.FAULT;
          parts.push(Buffer.from(vm.buf.subarray(p, p + l)));
          total += l;
        }
        let text = Buffer.concat(parts).toString("utf8");
        if (text.endsWith("\n")) text = text.slice(0, -1);
        if (text.length) vm.emitLog(fd === 1 ? 2 : 4, text, vm.ctx()?.id ?? 0);
        return vm.writeU32(nwrittenPtr, total) ? WasiErrno.SUCCESS : WasiErrno.FAULT;
      },
      fd_read: (): number => WasiErrno.NOSYS,
      fd_seek: (): number => {
        vm.emitLog(4, "wasi fd_seek is not supported", vm.ctx()?.id ?? 0);
        return WasiErrno.SUCCESS;
      },
      fd_close: (): number => {
        vm.emitLog(4, "wasi fd_close is not supported", vm.ctx()?.id ?? 0);
        return WasiErrno.SUCCESS;
      },
      fd_fdstat_get: (fd: number, ptr: number): number => {
        if (fd !== 1 && fd !== 2) return WasiErrno.BADF;
        ptr >>>= 0;
        vm.refresh();
        if (!vm.ok(ptr, 24)) return WasiErrno.FAULT;
        vm.buf.fill(0, ptr, ptr + 24);
        vm.buf.writeBigUInt64LE(64n, ptr + 8);
        return WasiErrno.SUCCESS;
      },
      fd_fdstat_set_flags: (): number => WasiErrno.NOTSUP,
      fd_prestat_get: (): number => WasiErrno.BADF,
      fd_prestat_dir_name: (): number => WasiErrno.NOTSUP,
      path_open: (): number => WasiErrno.NOTSUP,
      environ_sizes_get: (countPtr: number, sizePtr: number): number => {
        const entries = envEntries();
        const size = entries.reduce((n, e) => n + Buffer.byteLength(e), 0);
        return vm.writeU32(countPtr, entries.length) && vm.writeU32(sizePtr, size) ? WasiErrno.SUCCESS : WasiErrno.FAULT;
      },
      environ_get: (arrayPtr: number, bufPtr: number): number => {
        let a = arrayPtr >>> 0;
        let b = bufPtr >>> 0;
        for (const e of envEntries()) {
          const bytes = vm.enc.encode(e);
          vm.refresh();
          if (!vm.ok(b, bytes.length) || !vm.writeU32(a, b)) return WasiErrno.FAULT;
          vm.buf.set(bytes, b);
          a += 4;
          b += bytes.length;
        }
        return WasiErrno.SUCCESS;
      },
      args_sizes_get: (countPtr: number, sizePtr: number): number =>
        vm.writeU32(countPtr, 0) && vm.writeU32(sizePtr, 0) ? WasiErrno.SUCCESS : WasiErrno.FAULT,
      args_get: (): number => WasiErrno.SUCCESS,
      clock_time_get: (id: number, _precision: bigint, retPtr: number): number => {
        let ns: bigint;
        if (id === 0) ns = BigInt(Math.round(host.clock.nowMs() * 1e6));
        else if (id === 1) ns = host.clock.monotonicNs();
        else return WasiErrno.NOTSUP;
        return vm.writeU64(retPtr, ns) ? WasiErrno.SUCCESS : WasiErrno.FAULT;
      },
      random_get: (ptr: number, len: number): number => {
        ptr >>>= 0;
        len >>>= 0;
        if (len > 65536) return WasiErrno.INVAL;
        vm.refresh();
        if (!vm.ok(ptr, len)) return WasiErrno.FAULT;
        host.random(vm.buf.subarray(ptr, ptr + len));
        return WasiErrno.SUCCESS;
      },
      proc_exit: (code: number): void => {
        vm.emitLog(0, `wasi proc_exit(${code}) ignored`, vm.ctx()?.id ?? 0);
      },
      sched_yield: (): number => WasiErrno.SUCCESS,
      poll_oneoff: (_in: number, _out: number, _n: number, neventsPtr: number): number =>
        vm.writeU32(neventsPtr, 0) ? WasiErrno.SUCCESS : WasiErrno.FAULT,
    };
    return wasi as unknown as Record<string, (...a: never[]) => unknown>;
  }
}

export const defaultRandom = (buf: Uint8Array): void => {
  randomFillSync(buf);
};
