// Raw proxy-wasm host calls for meshward filters (the only lib module that talks to the host).
// Works around @solo-io/proxy-runtime 0.1.8 defects (docs/proxy-wasm-host.md §8): reads the plugin configuration
// with a correct size pointer, clears the route cache through the `clear_route_cache` foreign
// function (never `proxy_clear_route_cache`, which makes Envoy refuse the module), and exposes
// shared data with CAS. Results never abort the VM; callers get WasmResult statuses.
import * as imports from "@solo-io/proxy-runtime/imports";
import { free } from "@solo-io/proxy-runtime/malloc";

/** proxy-wasm WasmResult codes used by callers. */
export const enum HostStatus { Ok = 0, NotFound = 1, BadArgument = 2, Empty = 7, CasMismatch = 8 }
export const enum LogLevel { Trace = 0, Debug = 1, Info = 2, Warn = 3, Error = 4, Critical = 5 }
export const enum MetricKind { Counter = 0, Gauge = 1, Histogram = 2 }
export const enum MapType { RequestHeaders = 0, ResponseHeaders = 2, HttpCallResponseHeaders = 6 }
export const enum BufferKind { HttpCallResponseBody = 4, VmConfiguration = 6, PluginConfiguration = 7 }

// @ts-ignore: decorator
@external("wasi_unstable", "random_get")
declare function wasi_random_get(buf: usize, len: usize): u32;

// @ts-ignore: decorator
@external("wasi_unstable", "environ_sizes_get")
declare function wasi_environ_sizes_get(count_ptr: usize, size_ptr: usize): u32;
// @ts-ignore: decorator
@external("wasi_unstable", "environ_get")
declare function wasi_environ_get(array_ptr: usize, buf_ptr: usize): u32;

// Scratch for host out-parameters: +0 data pointer, +4 size, +8 u32 (cas, id), +16 u64.
const SCRATCH = new ArrayBuffer(32);
const S_PTR = changetype<usize>(SCRATCH);
const S_SIZE = S_PTR + 4;
const S_U32 = S_PTR + 8;
const S_U64 = S_PTR + 16;

function clearScratch(): void {
  store<u64>(S_PTR, 0);
  store<u64>(S_U32, 0);
  store<u64>(S_U64, 0);
}

/** Takes ownership of the buffer the host allocated (through the SDK's `malloc`) for an out-pair. */
function takeHostBuffer(): ArrayBuffer {
  const ptr = load<usize>(S_PTR);
  if (ptr == 0 || load<u32>(S_SIZE) == 0) return new ArrayBuffer(0);
  const buf = changetype<ArrayBuffer>(ptr);
  free(ptr);
  return buf;
}

// ---- VM environment --------------------------------------------------------------------------

/**
 * The value of `name` among the VM's environment variables (Envoy: `vm_config.environment_variables`,
 * Istio: WasmPlugin `vmConfig.env`), or null. How secrets reach a filter: wasm cannot read files.
 */
export function vmEnvironment(name: string): string | null {
  const sizes = new ArrayBuffer(8);
  const sp = changetype<usize>(sizes);
  if (wasi_environ_sizes_get(sp, sp + 4) != 0) return null;
  const count = load<u32>(sp);
  const total = load<u32>(sp + 4);
  if (count == 0 || total == 0) return null;
  const pointers = new ArrayBuffer(<i32>count * 4);
  const buf = new ArrayBuffer(<i32>total);
  if (wasi_environ_get(changetype<usize>(pointers), changetype<usize>(buf)) != 0) return null;
  const text = String.UTF8.decode(buf);
  // Entries are KEY=VALUE\0, in order.
  const entries = text.split("\0");
  const prefix = name + "=";
  for (let i = 0; i < entries.length; i++) {
    if (entries[i].startsWith(prefix)) return entries[i].substring(prefix.length);
  }
  return null;
}

// ---- logging, time, randomness -------------------------------------------------------------

export function log(level: LogLevel, message: string): void {
  const bytes = String.UTF8.encode(message);
  imports.proxy_log(<usize>level, changetype<usize>(bytes), bytes.byteLength);
}

/** Wall-clock time in nanoseconds (0 if the host refuses). */
export function nowNanos(): u64 {
  clearScratch();
  imports.proxy_get_current_time_nanoseconds(S_U64);
  return load<u64>(S_U64);
}

/**
 * 64 random bits from WASI `random_get` (Envoy provides it); if that fails, the wall clock in
 * nanoseconds. Meant for seeding a per-VM PRNG, not per request.
 */
export function randomSeed(): u64 {
  store<u64>(S_U64, 0);
  const errno = wasi_random_get(S_U64, 8);
  const r = load<u64>(S_U64);
  return errno == 0 && r != 0 ? r : nowNanos();
}

// ---- configuration, buffers, properties ----------------------------------------------------

/** Bytes [start, start+max) of a host buffer; empty when absent. `status` receives the result. */
export function readBuffer(kind: i32, start: u32, max: u32): ArrayBuffer {
  clearScratch();
  lastStatus = imports.proxy_get_buffer_bytes(kind, start, max, S_PTR, S_SIZE);
  if (lastStatus == HostStatus.Ok) return takeHostBuffer();
  return new ArrayBuffer(0);
}

/** The plugin configuration (readable only in `onConfigure`), decoded as UTF-8. */
export function readPluginConfiguration(size: u32): string {
  if (size == 0) return "";
  return String.UTF8.decode(readBuffer(BufferKind.PluginConfiguration, 0, size));
}

/** Status of the last `readBuffer`/`getProperty` call. */
export let lastStatus: u32 = 0;

/** A property by path segments (e.g. ["source", "address"]); null when the host has none. */
export function getProperty(segments: string[]): ArrayBuffer | null {
  const path = String.UTF8.encode(segments.join("\0"));
  clearScratch();
  lastStatus = imports.proxy_get_property(changetype<usize>(path), path.byteLength, S_PTR, S_SIZE);
  if (lastStatus == HostStatus.Ok) return takeHostBuffer();
  return null;
}

// ---- request headers ------------------------------------------------------------------------

/** All request headers in the pairs serialization (docs/proxy-wasm-host.md §2.2); empty outside request callbacks. */
export function requestHeaderPairs(): ArrayBuffer {
  clearScratch();
  const status = imports.proxy_get_header_map_pairs(MapType.RequestHeaders, S_PTR, S_SIZE);
  if (status == HostStatus.Ok) return takeHostBuffer();
  return new ArrayBuffer(0);
}

/** Sets header `name` to exactly `value` (replacing every existing value). */
export function replaceRequestHeader(name: ArrayBuffer, value: ArrayBuffer): u32 {
  return imports.proxy_replace_header_map_value(MapType.RequestHeaders, changetype<usize>(name), name.byteLength,
    changetype<usize>(value), value.byteLength);
}

/** Appends a value to header `name`. */
export function addRequestHeader(name: ArrayBuffer, value: ArrayBuffer): u32 {
  return imports.proxy_add_header_map_value(MapType.RequestHeaders, changetype<usize>(name), name.byteLength,
    changetype<usize>(value), value.byteLength);
}

/** Removes every value of header `name`. */
export function removeRequestHeader(name: ArrayBuffer): u32 {
  return imports.proxy_remove_header_map_value(MapType.RequestHeaders, changetype<usize>(name), name.byteLength);
}

/** Removes every value of response header `name`. */
export function removeResponseHeader(name: ArrayBuffer): u32 {
  return imports.proxy_remove_header_map_value(MapType.ResponseHeaders, changetype<usize>(name), name.byteLength);
}

/** Adds `name: value` to the response headers. */
export function addResponseHeader(name: ArrayBuffer, value: ArrayBuffer): u32 {
  return imports.proxy_add_header_map_value(MapType.ResponseHeaders, changetype<usize>(name), name.byteLength,
    changetype<usize>(value), value.byteLength);
}

/**
 * Sends a local reply after the current callback returns (Envoy then runs this filter's own
 * response callbacks). `headers` is a pairs buffer (see request-view.ts `serializePairs`).
 * `grpcStatus` -1 = not a gRPC reply.
 */
export function sendLocalResponse(status: u32, details: string, body: ArrayBuffer, headers: ArrayBuffer, grpcStatus: i32): u32 {
  const d = String.UTF8.encode(details);
  return imports.proxy_send_local_response(status, changetype<usize>(d), d.byteLength, changetype<usize>(body), body.byteLength,
    changetype<usize>(headers), headers.byteLength, <u32>grpcStatus);
}

/** Resumes a request paused in `onRequestHeaders` (deferred until the current callback returns). */
export function continueRequest(): u32 {
  return imports.proxy_continue_stream(0);
}

/**
 * Makes `contextId` the context later host calls act on (a root resuming or answering one of its
 * paused streams from a root callback such as a tick or an http_call response).
 */
export function setEffectiveContext(contextId: u32): u32 {
  return imports.proxy_set_effective_context(contextId);
}

// ---- HTTP callouts -----------------------------------------------------------------------------

/** An `httpCall`'s outcome: the host status and, on Ok, the token its response will carry. */
export class HttpCall {
  status: u32 = 0;
  token: u32 = 0;
}

/**
 * Sends an HTTP request to the Envoy cluster `cluster`; `headers` is a pairs buffer holding the
 * pseudo-headers. The status and token land in `out`; the response arrives in `onHttpCallResponse`.
 */
export function httpCall(cluster: ArrayBuffer, headers: ArrayBuffer, body: ArrayBuffer, timeoutMs: u32, out: HttpCall): u32 {
  clearScratch();
  const status = imports.proxy_http_call(changetype<usize>(cluster), cluster.byteLength, changetype<usize>(headers),
    headers.byteLength, changetype<usize>(body), body.byteLength, 0, 0, timeoutMs, S_U32);
  out.status = status;
  out.token = status == HostStatus.Ok ? load<u32>(S_U32) : 0;
  return status;
}

/** One header value of a map (e.g. MapType.HttpCallResponseHeaders); "" when absent or empty. */
export function headerValue(map: MapType, name: ArrayBuffer): string {
  clearScratch();
  const status = imports.proxy_get_header_map_value(map, changetype<usize>(name), name.byteLength, S_PTR, S_SIZE);
  if (status != HostStatus.Ok) return "";
  const ptr = load<usize>(S_PTR);
  const len = load<u32>(S_SIZE);
  if (ptr == 0 || len == 0) return "";
  const value = String.UTF8.decodeUnsafe(ptr, len);
  free(ptr);
  return value;
}

// ---- route cache, foreign functions --------------------------------------------------------

const CLEAR_ROUTE_CACHE = String.UTF8.encode("clear_route_cache");
const NO_ARGS = new ArrayBuffer(0);
const EMPTY = new ArrayBuffer(0);

/** Calls a host foreign function; result bytes (if any) are discarded. Returns the status. */
export function callForeignFunction(name: ArrayBuffer, args: ArrayBuffer): u32 {
  clearScratch();
  const status = imports.proxy_call_foreign_function(changetype<usize>(name), name.byteLength,
    changetype<usize>(args), args.byteLength, S_PTR, S_SIZE);
  if (status == HostStatus.Ok) takeHostBuffer();
  return status;
}

/**
 * Asks Envoy to re-select the route for the current request. Current Envoy does not refresh
 * the route after header changes by itself (only Envoy before late 2024 did, docs/proxy-wasm-host.md §7.5).
 */
export function clearRouteCache(): u32 {
  return callForeignFunction(CLEAR_ROUTE_CACHE, NO_ARGS);
}

// ---- shared data with CAS -------------------------------------------------------------------

/** Result of `getSharedData`: status (Ok/NotFound), value and its CAS token. */
export class SharedData {
  status: u32 = 0;
  value: ArrayBuffer = new ArrayBuffer(0);
  cas: u32 = 0;
}

/** Reads `key` (UTF-8 bytes) into `out` (reused to avoid allocation); returns the status. */
export function getSharedData(key: ArrayBuffer, out: SharedData): u32 {
  return getSharedDataAt(changetype<usize>(key), <u32>key.byteLength, out);
}

/** `getSharedData` with the key as `keyLen` bytes at `keyPtr` (a key built in a reused buffer). */
export function getSharedDataAt(keyPtr: usize, keyLen: u32, out: SharedData): u32 {
  clearScratch();
  const status = imports.proxy_get_shared_data(keyPtr, keyLen, S_PTR, S_SIZE, S_U32);
  out.status = status;
  out.cas = load<u32>(S_U32);
  if (status == HostStatus.Ok) out.value = takeHostBuffer();
  else out.value = EMPTY;
  return status;
}

/**
 * Writes `key` if its CAS still equals `cas` (0 = unconditional). Returns Ok or CasMismatch.
 * A missing key is created whatever `cas` is (docs/proxy-wasm-host.md §4.8): to create race-free, write with a
 * non-zero cas no entry can carry (e.g. 0xffffffff) and re-read.
 */
export function setSharedData(key: ArrayBuffer, value: ArrayBuffer, cas: u32): u32 {
  return setSharedDataAt(changetype<usize>(key), <u32>key.byteLength, value, cas);
}

/** `setSharedData` with the key as `keyLen` bytes at `keyPtr`. */
export function setSharedDataAt(keyPtr: usize, keyLen: u32, value: ArrayBuffer, cas: u32): u32 {
  return imports.proxy_set_shared_data(keyPtr, keyLen, changetype<usize>(value), value.byteLength, cas);
}

// ---- metrics ---------------------------------------------------------------------------------

/** Defines a metric; returns its id, or 0 when the host refused. */
export function defineMetric(kind: MetricKind, name: string): u32 {
  const bytes = String.UTF8.encode(name);
  clearScratch();
  const status = imports.proxy_define_metric(kind, changetype<usize>(bytes), bytes.byteLength, S_U32);
  return status == HostStatus.Ok ? load<u32>(S_U32) : 0;
}

/** Adds `delta` (> 0 for counters) to a metric; id 0 is ignored. */
export function incrementMetric(id: u32, delta: i64): void {
  if (id != 0) imports.proxy_increment_metric(id, delta);
}

/** Sets a gauge / records a histogram value. */
export function recordMetric(id: u32, value: u64): void {
  if (id != 0) imports.proxy_record_metric(id, value);
}

/** Current value of a counter or gauge (0 when unknown). */
export function getMetric(id: u32): u64 {
  clearScratch();
  return imports.proxy_get_metric(id, S_U64) == HostStatus.Ok ? load<u64>(S_U64) : 0;
}

// ---- timers and memory -------------------------------------------------------------------------

export function setTickPeriodMilliseconds(ms: u32): void {
  imports.proxy_set_tick_period_milliseconds(ms);
}

/**
 * Frees reference cycles and objects parked in the runtime's "possible roots" buffer. The
 * AssemblyScript 0.17 refcounting runtime keeps every non-acyclic object whose count dropped
 * while shared until this runs, and the SDK never runs it: filters call it periodically.
 */
export function collectGarbage(): void {
  gc.collect();
}

/** This VM's linear memory in bytes (64 KiB pages). */
export function linearMemoryBytes(): u64 {
  return (<u64>memory.size()) << 16;
}

/** VMs of one vm_id that get a gauge of their own; later ones (config reloads) report to the shared gauge only. */
export const MAX_VM_GAUGES: u32 = 64;
/** CAS that no stored shared-data entry carries: creating a slot with it cannot overwrite another VM's write. */
export const CREATE_CAS: u32 = 0xffffffff;

/**
 * A number unique to this VM among the VMs sharing `key`'s shared data (one Envoy, one vm_id): 1, 2, …
 * in the order the VMs ask; 0 when the counter could not be updated (64 lost races).
 */
export function claimVmOrdinal(key: string): u32 {
  const k = String.UTF8.encode(key);
  const slot = new SharedData();
  for (let attempt = 0; attempt < 64; attempt++) {
    const found = getSharedData(k, slot) == HostStatus.Ok && slot.value.byteLength == 4;
    const next = (found ? load<u32>(changetype<usize>(slot.value)) : 0) + 1;
    const bytes = new ArrayBuffer(4);
    store<u32>(changetype<usize>(bytes), next);
    if (setSharedData(k, bytes, found ? slot.cas : CREATE_CAS) == HostStatus.Ok) return next;
  }
  return 0;
}

/**
 * The gauges of a filter's linear memory: `meshward_<filter>_memory_bytes` (every VM writes it: it holds the
 * value of the VM that reported last) and `meshward_<filter>_memory_bytes_vm_<n>`, this VM's own (n from
 * `claimVmOrdinal`, the first MAX_VM_GAUGES VMs). Envoy has no per-VM memory stat. A VM reports after
 * configuring, whenever `check` sees linear memory grew (`memory.size()`, no host call), and on `report`.
 */
export class MemoryGauge {
  id: u32 = 0;
  vmGauge: u32 = 0;
  /** Pages at the last report. */
  pages: i32 = 0;
  define(filter: string): void {
    if (this.id == 0) {
      const name = "meshward_" + filter + "_memory_bytes";
      this.id = defineMetric(MetricKind.Gauge, name);
      const ordinal = claimVmOrdinal("meshward." + filter + ".vm-ordinal");
      if (ordinal > 0 && ordinal <= MAX_VM_GAUGES) this.vmGauge = defineMetric(MetricKind.Gauge, name + "_vm_" + ordinal.toString());
    }
    this.report();
  }
  /** Reports when linear memory grew since the last report (memory never shrinks). */
  check(): void {
    if (memory.size() != this.pages) this.report();
  }
  report(): void {
    this.pages = memory.size();
    const bytes = linearMemoryBytes();
    recordMetric(this.id, bytes);
    recordMetric(this.vmGauge, bytes);
  }
}
// AssemblyScript 0.17 only emits the lazily compiled collector when it is referenced at top level.
gc.collect();
