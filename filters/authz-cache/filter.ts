// authz-cache host edge: polls the epoch, looks a request up in the shared-data slots and on a hit
// applies the cached answer and marks the request so that Envoy skips ext_authz; on a miss it learns
// from authz-server's signed directive on the response. Key, directive and config logic are pure modules.
import { Context, FilterHeadersStatusValues, RootContext } from "@solo-io/proxy-runtime";
import {
  BufferKind, HostStatus, HttpCall, LogLevel, MapType, SharedData, addResponseHeader, collectGarbage, getProperty,
  getSharedData, getSharedDataAt, headerValue, httpCall, incrementMetric, log, nowNanos, randomSeed, readBuffer,
  removeRequestHeader, removeResponseHeader, replaceRequestHeader, requestHeaderPairs, sendLocalResponse, setSharedData,
  setSharedDataAt, setTickPeriodMilliseconds,
} from "../lib/host";
import { configure, defineMetrics } from "../lib/plugin";
import { RequestView, serializePairs } from "../lib/request-view";
import { addressIp } from "../rate-limit/key";
import { CacheConfig, ConfigParser } from "./config";
import { Directive, directiveError, parseDirective, verifyDirective } from "./directive";
import { Shape, cacheKeyInto, keyFields, parseShape, parseShapeText, shapeEpochId } from "./key";
import { KeyMaterial, LocalEntry, LocalTable } from "./local";
import { metadataHeaders } from "./metadata";

export const FILTER_NAME = "authz-cache";
const PREFIX = "authz-cache: ";
/** Epoch, its confirmation time and the shapes of that epoch: one key, one read per request. */
const STATE_KEY = String.UTF8.encode("mw-authz-cache/state");
const SLOT_PREFIX = "mw-authz-cache/slot/";
const SLOT_PREFIX_BYTES = SLOT_PREFIX.length;
/** The slot key of the current lookup, written in place (prefix + up to 10 digits). */
const SLOT_KEY = new ArrayBuffer(SLOT_PREFIX_BYTES + 10);
memory.copy(changetype<usize>(SLOT_KEY), changetype<usize>(String.UTF8.encode(SLOT_PREFIX)), <usize>SLOT_PREFIX_BYTES);
const DIRECTIVE = String.UTF8.encode("x-meshward-cache");
const NONCE = String.UTF8.encode("x-meshward-cache-nonce");
const METADATA = ["metadata"];
const MAX_SHAPES = 8;
const MAX_EPOCH_BYTES = 128;
const CREATE_CAS: u32 = 0xffffffff;
const MAX_CAS_ATTEMPTS = 16;
const NS_PER_MS: i64 = 1000000;
const STATUS_HEADER = String.UTF8.encode(":status");
const ENTRY_HEADER_BYTES = 40; // 32-byte key + f64 expiry
const COLLECT_EVERY: u32 = 512;
const HEX = "0123456789abcdef";
/** Name and value bytes of the nonce header a miss adds: "x-meshward-cache-nonce" + 32 hex digits. */
const NONCE_BYTES: i32 = 22 + 32;

const enum State { None = 0, Miss = 1, HitAllow = 2, HitDeny = 3 }

// Per-VM scratch: callbacks in one VM never overlap.
const view = new RequestView();
const shared = new SharedData();
const call = new HttpCall();
const NO_BODY = new ArrayBuffer(0);
/** The key of the current lookup or store. */
const KEY = new ArrayBuffer(32);
let streams: u32 = 0;

/** Metric ids, in the order of COUNTERS then GAUGES (lib/plugin.ts defineMetrics). */
const enum M { Hits = 0, Misses, Stores, Evictions, Invalidations, Rejected, Stale, Entries }
const COUNTERS = ["hits", "misses", "stores", "evictions", "invalidations", "rejected", "stale"];
const GAUGES = ["entries"];
let metricIds = new StaticArray<u32>(0);

function count(m: M): void {
  if (<i32>m < metricIds.length) incrementMetric(unchecked(metricIds[<i32>m]), 1);
}

/**
 * Hits not yet added to the counter. A hit is the hot path and every host call costs about a µs
 * there, so hits are counted HIT_BATCH at a time and on every tick: the counter lags by at most
 * `pollMs` or HIT_BATCH − 1 hits.
 */
let pendingHits: i64 = 0;
const HIT_BATCH: i64 = 64;

function countHit(): void {
  if (++pendingHits >= HIT_BATCH) flushHits();
}

function flushHits(): void {
  if (pendingHits == 0 || <i32>M.Hits >= metricIds.length) return;
  incrementMetric(unchecked(metricIds[<i32>M.Hits]), pendingHits);
  pendingHits = 0;
}

/**
 * This VM's copy of the entries it served, found by the request's key material without SHA-256
 * (local.ts): a decision is valid for its key until it expires whatever happens to the shared slot
 * later (the epoch is in the key), so a repeat on this worker reads no shared data, parses nothing
 * and hashes no digest. Bounded: LOCAL_SIZE entries.
 */
let local: LocalTable | null = null;
const material = new KeyMaterial();

/**
 * The cache state shared by every worker, under one key read once per request:
 * `<epoch>\n<confirmedAtMs>\n<shape>\n<shape>…` (the shapes learned in that epoch). Parsed once per CAS value.
 */
class StateView {
  cas: u32 = 0;
  valid: bool = false;
  epoch: string = "";
  confirmedAtMs: i64 = 0;
  shapes: Shape[] = [];
}
const state = new StateView();

/**
 * Reads the published state into this VM's view (one shared-data read); null when there is none yet.
 * Requests use the view as it stands and re-read only on a miss; each worker's own poll and tick
 * refresh it, so the view is never older than that worker's last poll (README "Invalidation").
 */
function readState(): StateView | null {
  if (getSharedData(STATE_KEY, shared) != HostStatus.Ok) return null;
  if (shared.cas != state.cas || !state.valid) {
    const lines = String.UTF8.decode(shared.value).split("\n");
    state.cas = shared.cas;
    state.valid = lines.length >= 2 && lines[0].length > 0;
    if (!state.valid) return null;
    const epoch = lines[0];
    const old = state.shapes;
    const shapes = new Array<Shape>(0);
    for (let i = 2; i < lines.length && shapes.length < MAX_SHAPES; i++) {
      // A shape parsed before keeps its precomputed key prefix.
      let s: Shape | null = null;
      for (let j = 0; j < old.length; j++) if (old[j].text == lines[i]) s = old[j];
      if (s === null) s = parseShapeText(lines[i]);
      if (s !== null) shapes.push(s);
    }
    state.epoch = epoch;
    state.confirmedAtMs = <i64>parseInt(lines[1]);
    state.shapes = shapes;
  }
  return state;
}

/**
 * Rewrites the shared state with CAS: `update` gets the current lines (empty when there are none)
 * and returns the new text, or null to leave it as it is.
 */
function updateState(update: (lines: string[]) => string | null): void {
  for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
    let cas = CREATE_CAS;
    let lines = new Array<string>(0);
    if (getSharedData(STATE_KEY, shared) == HostStatus.Ok) {
      cas = shared.cas;
      lines = String.UTF8.decode(shared.value).split("\n");
    }
    const next = update(lines);
    if (next === null) return;
    if (setSharedData(STATE_KEY, String.UTF8.encode(next), cas) == HostStatus.Ok) return;
  }
}

/** Adds a shape to the list of the current epoch (a state of another epoch is left alone). */
function addShape(epoch: string, shape: string): void {
  pendingEpoch = epoch;
  pendingShape = shape;
  updateState((lines: string[]): string | null => {
    if (lines.length < 2 || lines[0] != pendingEpoch || lines.length - 2 >= MAX_SHAPES) return null;
    for (let i = 2; i < lines.length; i++) if (lines[i] == pendingShape) return null;
    return lines.join("\n") + "\n" + pendingShape;
  });
}
// Closures cannot capture locals in AssemblyScript 0.17: the arguments of the update in progress.
let pendingEpoch = "";
let pendingShape = "";
let pendingSentAtMs: i64 = 0;
let pendingChanged = false;

function localTable(): LocalTable {
  let t = local;
  if (t === null) {
    t = new LocalTable(randomSeed());
    local = t;
  }
  return t;
}

function nowMs(): i64 {
  return <i64>nowNanos() / NS_PER_MS;
}

function slotOf(key: ArrayBuffer, slots: u32): u32 {
  return <u32>(load<u64>(changetype<usize>(key)) % <u64>slots);
}

/** Writes the shared-data key of `slot` into SLOT_KEY (reused, no allocation); returns its length. */
function slotKey(slot: u32): u32 {
  const p = changetype<usize>(SLOT_KEY);
  let digits: u32 = 1;
  for (let v = slot; v >= 10; v /= 10) digits++;
  let n = slot;
  for (let i = <i32>digits - 1; i >= 0; i--) {
    store<u8>(p + <usize>SLOT_PREFIX_BYTES + <usize>i, <u8>(0x30 + n % 10));
    n /= 10;
  }
  return <u32>SLOT_PREFIX_BYTES + digits;
}

function randomHex128(): string {
  let s = "";
  for (let j = 0; j < 2; j++) {
    const v = randomSeed();
    for (let i = 0; i < 16; i++) s += HEX.charAt(<i32>((v >> (<u64>(60 - 4 * i))) & 15));
  }
  return s;
}

function sourceIp(): string {
  const a = getProperty(["source", "address"]);
  if (a === null) return "";
  const ip = addressIp(String.UTF8.decode(a));
  if (ip === null) return "";
  return ip;
}

/**
 * Parses a stored entry's payload: the directive JSON, then the metadata headers as line pairs (name,
 * value). Names are the configuration's own buffers (compared by identity on a hit); others are dropped.
 */
function parseEntry(config: CacheConfig, ptr: usize, len: usize): Directive | null {
  const text = String.UTF8.decodeUnsafe(ptr, len);
  const nl = text.indexOf("\n");
  if (nl < 0) return parseDirective(text);
  const d = parseDirective(text.substring(0, nl));
  if (d === null) return null;
  const lines = text.substring(nl + 1).split("\n");
  const names = config.metadataHeaderBytes;
  for (let i = 0; i + 1 < lines.length; i += 2) {
    for (let k = 0; k < names.length; k++) {
      if (String.UTF8.decode(names[k]) != lines[i]) continue;
      d.metadataNames.push(names[k]);
      d.metadataValues.push(String.UTF8.encode(lines[i + 1]));
    }
  }
  return d;
}

export class AuthzCacheRoot extends RootContext {
  config: CacheConfig | null = null;
  pollInFlight: bool = false;
  pollToken: u32 = 0;
  pollSentAtMs: i64 = 0;
  /** The epoch poll's request headers and cluster, built once per configuration. */
  pollHeaders: ArrayBuffer = new ArrayBuffer(0);
  pollCluster: ArrayBuffer = new ArrayBuffer(0);

  onConfigure(size: u32): bool {
    const config = configure<CacheConfig, ConfigParser>(new ConfigParser(), size, PREFIX);
    if (config === null) return false;
    metricIds = defineMetrics("meshward_authz_cache_", COUNTERS, GAUGES);
    this.config = config;
    this.pollHeaders = serializePairs([":method", ":path", ":authority"], ["GET", config.epochPath, config.epochAuthority]);
    this.pollCluster = String.UTF8.encode(config.epochCluster);
    setTickPeriodMilliseconds(config.pollMs);
    return true;
  }

  createContext(context_id: u32): Context {
    return new AuthzCacheStream(context_id, this);
  }

  onTick(): void {
    flushHits();
    const config = this.config;
    if (config === null) return;
    readState();
    const now = nowMs();
    // A lost answer must not stop polling: give up on it after the staleness bound.
    if (this.pollInFlight && now - this.pollSentAtMs < config.maxStalenessMs) return;
    const timeout = <u32>min<i64>(config.maxStalenessMs, 1000);
    if (httpCall(this.pollCluster, this.pollHeaders, NO_BODY, timeout, call) != HostStatus.Ok) {
      log(LogLevel.Warn, PREFIX + "epoch poll not sent: http_call status " + call.status.toString());
      return;
    }
    this.pollInFlight = true;
    this.pollToken = call.token;
    this.pollSentAtMs = now;
  }

  onHttpCallResponse(token: u32, headers: u32, bodySize: u32, _trailers: u32): void {
    if (!this.pollInFlight || token != this.pollToken) return;
    this.pollInFlight = false;
    if (headers == 0 || headerValue(MapType.HttpCallResponseHeaders, STATUS_HEADER) != "200" || bodySize == 0 || bodySize > <u32>MAX_EPOCH_BYTES) return;
    const epoch = String.UTF8.decode(readBuffer(BufferKind.HttpCallResponseBody, 0, bodySize));
    for (let i = 0; i < epoch.length; i++) {
      const c = epoch.charCodeAt(i);
      if (c <= 0x20 || c >= 0x7f) return;
    }
    publishEpoch(epoch, this.pollSentAtMs);
    readState();
  }
}

/**
 * Publishes `epoch` as confirmed at `sentAtMs` (when the poll was sent), unless a later poll already
 * did. The same epoch keeps its shapes; a new one starts with none (and counts an invalidation).
 */
function publishEpoch(epoch: string, sentAtMs: i64): void {
  pendingEpoch = epoch;
  pendingSentAtMs = sentAtMs;
  pendingChanged = false;
  updateState((lines: string[]): string | null => {
    pendingChanged = false; // this attempt's view (a CAS retry may see another worker's publish)
    const confirmed = pendingEpoch + "\n" + pendingSentAtMs.toString();
    if (lines.length < 2) return confirmed;
    if (<i64>parseInt(lines[1]) >= pendingSentAtMs) return null;
    if (lines[0] != pendingEpoch) {
      pendingChanged = true;
      return confirmed;
    }
    lines[1] = pendingSentAtMs.toString();
    return lines.join("\n");
  });
  if (pendingChanged) count(M.Invalidations);
}

class AuthzCacheStream extends Context {
  state: State = State.None;
  /** The request headers as they arrived (before ext_authz changed anything), kept on a miss. */
  original: ArrayBuffer = new ArrayBuffer(0);
  nonce: string = "";
  hit: Directive | null = null;

  get root(): AuthzCacheRoot {
    return changetype<AuthzCacheRoot>(this.root_context);
  }

  // The SDK's defaults build and log a debug line (three host calls) on every stream.
  onLog(): void {}
  onDone(): bool {
    return true;
  }
  onDelete(): void {}

  onRequestHeaders(_headers: u32, _endOfStream: bool): FilterHeadersStatusValues {
    const config = this.root.config;
    if (config === null) return FilterHeadersStatusValues.Continue;
    if (++streams % COLLECT_EVERY == 0) collectGarbage();
    const pairs = requestHeaderPairs();
    view.reset(pairs);
    // Nothing the client sends can mark a hit or carry a nonce.
    const skipName = config.skipHeaderBytes;
    if (view.find(skipName)) removeRequestHeader(skipName);
    if (view.find(NONCE)) removeRequestHeader(NONCE);

    const now = nowMs();
    // Header names and values bytes: the pairs buffer minus its table and NUL terminators.
    const pairsBytes = pairs.byteLength - 4 - 10 * view.size;
    let d: Directive | null = null;
    if (state.valid) d = this.lookup(config, state, now, pairsBytes);
    if (d === null) {
      // Shapes or entries another worker learned, or a newer confirmation: one read, then once more.
      const cas = state.cas;
      const valid = state.valid;
      const st = readState();
      if (st !== null && (st.cas != cas || !valid)) d = this.lookup(config, st, now, pairsBytes);
    }
    if (d !== null) return this.applyHit(config, d, skipName);
    if (state.valid && now - state.confirmedAtMs > config.maxStalenessMs) count(M.Stale);
    count(M.Misses);
    this.state = State.Miss;
    this.original = pairs;
    this.nonce = randomHex128();
    replaceRequestHeader(NONCE, String.UTF8.encode(this.nonce));
    return FilterHeadersStatusValues.Continue;
  }

  lookup(config: CacheConfig, st: StateView, now: i64, pairsBytes: i32): Directive | null {
    // Served only while the epoch was confirmed within the bound.
    if (now - st.confirmedAtMs > config.maxStalenessMs) return null;
    const shapes = st.shapes;
    let ip = "";
    let ipRead = false;
    const k = changetype<usize>(KEY);
    for (let i = 0; i < shapes.length; i++) {
      const shape = unchecked(shapes[i]);
      if (shape.address && !ipRead) {
        ip = sourceIp();
        ipRead = true;
      }
      // This worker's table first: the exact key material, no digest.
      material.reset();
      keyFields<KeyMaterial>(material, shape, view, ip);
      const id = shapeEpochId(shape, st.epoch);
      let slot: LocalEntry | null = null;
      let d: Directive | null = null;
      if (!material.overflow) {
        slot = localTable().slot(material, id);
        d = slot.match(material, id, now);
      }
      if (d === null) {
        cacheKeyInto(st.epoch, shape, view, ip, k);
        if (getSharedDataAt(changetype<usize>(SLOT_KEY), slotKey(slotOf(KEY, config.slots)), shared) != HostStatus.Ok) continue;
        const v = shared.value;
        if (v.byteLength <= ENTRY_HEADER_BYTES) continue;
        const p = changetype<usize>(v);
        if (memory.compare(p, k, 32) != 0) continue;
        const expires = load<f64>(p + 32);
        if (<i64>expires <= now) continue;
        d = parseEntry(config, p + ENTRY_HEADER_BYTES, <usize>(v.byteLength - ENTRY_HEADER_BYTES));
        if (d === null) continue;
        d.encode();
        if (slot !== null) slot.set(material, id, expires, d);
      }
      // authz-server counts this request's headers with the nonce a miss adds; over its limits it
      // answers 431 whatever the key says, so such a request is never a hit.
      const found = changetype<Directive>(d);
      if (<i64>view.size + 1 > found.maxHeaders || <i64>pairsBytes + NONCE_BYTES > found.maxHeaderBytes) return null;
      return found;
    }
    return null;
  }

  applyHit(config: CacheConfig, d: Directive, skipName: ArrayBuffer): FilterHeadersStatusValues {
    countHit();
    if (!d.allow) {
      this.state = State.HitDeny;
      sendLocalResponse(d.status, "meshward_authz_cache", d.denialBody, d.denialHeaderPairs, -1);
      return FilterHeadersStatusValues.StopIteration;
    }
    this.state = State.HitAllow;
    this.hit = d;
    // A header the client did not send needs no removal (the view holds this request's headers).
    for (let i = 0; i < d.removeBytes.length; i++) {
      const name = unchecked(d.removeBytes[i]);
      if (view.find(name)) removeRequestHeader(name);
    }
    for (let i = 0; i < d.headerNameBytes.length; i++) replaceRequestHeader(unchecked(d.headerNameBytes[i]), unchecked(d.headerValueBytes[i]));
    this.replayMetadata(config, d);
    replaceRequestHeader(skipName, config.skipTokenBytes);
    return FilterHeadersStatusValues.Continue;
  }

  /**
   * Sets the metadata headers header_to_metadata turns into ext_authz's metadata on a hit; a
   * client's copy of a configured header the entry does not set is removed (it would be replayed too).
   */
  replayMetadata(config: CacheConfig, d: Directive): void {
    const headers = config.metadataHeaderBytes;
    for (let i = 0; i < headers.length; i++) {
      const name = unchecked(headers[i]);
      let j = 0;
      while (j < d.metadataNames.length && unchecked(d.metadataNames[j]) !== name) j++;
      if (j < d.metadataNames.length) replaceRequestHeader(name, unchecked(d.metadataValues[j]));
      else if (view.find(name)) removeRequestHeader(name);
    }
  }

  onResponseHeaders(_headers: u32, _endOfStream: bool): FilterHeadersStatusValues {
    const config = this.root.config;
    if (config === null) return FilterHeadersStatusValues.Continue;
    // A directive never reaches the client, whoever set it. On a hit no genuine one exists, and the
    // route configuration's response_headers_to_remove strips an upstream's (README "Wiring").
    if (this.state == State.HitAllow) {
      const d = changetype<Directive>(this.hit);
      for (let i = 0; i < d.responseNameBytes.length; i++) addResponseHeader(unchecked(d.responseNameBytes[i]), unchecked(d.responseValueBytes[i]));
      return FilterHeadersStatusValues.Continue;
    }
    const value = headerValue(MapType.ResponseHeaders, DIRECTIVE);
    removeResponseHeader(DIRECTIVE);
    if (this.state == State.Miss && value.length > 0) this.learn(config, value);
    return FilterHeadersStatusValues.Continue;
  }

  learn(config: CacheConfig, value: string): void {
    const json = verifyDirective(value, config.secret);
    let d: Directive | null = null;
    if (json !== null) d = parseDirective(json);
    if (d === null || d.nonce != this.nonce) {
      count(M.Rejected);
      let why = directiveError;
      if (d !== null) why = "nonce of another stream";
      log(LogLevel.Warn, PREFIX + "directive rejected: " + why);
      return;
    }
    // Only entries of the epoch Envoy currently holds: an older one is already invalid, a newer one
    // will be learned again once the poll has seen it.
    const st = readState();
    if (st === null || d.epoch != st.epoch) return;
    const shape = parseShape(d.shape);
    if (shape === null) {
      count(M.Rejected);
      return;
    }
    const now = nowMs();
    let expires = min<f64>(d.expiresAtMs, <f64>(now + <i64>d.ttlMs));
    expires = min<f64>(expires, <f64>(now + config.maxTtlMs));
    if (expires <= <f64>now) return;
    view.reset(this.original);
    let ip = "";
    if (shape.address) ip = sourceIp();
    cacheKeyInto(d.epoch, shape, view, ip, changetype<usize>(KEY));
    const payload = String.UTF8.encode(changetype<string>(json) + this.metadataLines(config));
    const size = ENTRY_HEADER_BYTES + payload.byteLength;
    if (size > config.maxEntryBytes) return;
    const entry = new ArrayBuffer(size);
    const p = changetype<usize>(entry);
    memory.copy(p, changetype<usize>(KEY), 32);
    store<f64>(p + 32, expires);
    memory.copy(p + ENTRY_HEADER_BYTES, changetype<usize>(payload), payload.byteLength);
    addShape(d.epoch, shape.text);
    const slotLen = slotKey(slotOf(KEY, config.slots));
    const slotPtr = changetype<usize>(SLOT_KEY);
    if (getSharedDataAt(slotPtr, slotLen, shared) == HostStatus.Ok) {
      const old = shared.value;
      if (old.byteLength > ENTRY_HEADER_BYTES && memory.compare(changetype<usize>(old), p, 32) != 0 &&
        <i64>load<f64>(changetype<usize>(old) + 32) > now) {
        count(M.Evictions);
      }
    } else {
      count(M.Entries);
    }
    setSharedDataAt(slotPtr, slotLen, entry, 0);
    count(M.Stores);
  }

  /** "\n<header>\n<base64 value>" for each configured key ext_authz set on this stream ("" when off). */
  metadataLines(config: CacheConfig): string {
    if (config.metadataKeys.length == 0) return "";
    const raw = getProperty(METADATA);
    if (raw === null) return "";
    const md = metadataHeaders(raw, config.metadataNamespaceBytes, config.metadataKeyBytes, config.metadataHeaderBytes);
    if (md === null) {
      log(LogLevel.Warn, PREFIX + "dynamic metadata not replayable: malformed metadata property");
      return "";
    }
    if (md.unknown > 0) log(LogLevel.Debug, PREFIX + md.unknown.toString() + " metadata fields not in metadataKeys: not replayed on hits");
    let s = "";
    for (let i = 0; i < md.names.length; i++) s += "\n" + String.UTF8.decode(md.names[i]) + "\n" + String.UTF8.decode(md.values[i]);
    return s;
  }
}
