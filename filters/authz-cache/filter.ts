// authz-cache host edge: polls the epoch, looks a request up in the shared-data slots and on a hit
// applies the cached answer and marks the request so that Envoy skips ext_authz; on a miss it learns
// from authz-server's signed directive on the response. Key, directive and config logic are pure modules.
import { Context, FilterHeadersStatusValues, RootContext } from "@solo-io/proxy-runtime";
import {
  BufferKind, HostStatus, HttpCall, LogLevel, MapType, MetricKind, SharedData, addResponseHeader, collectGarbage,
  defineMetric, getProperty, getSharedData, headerValue, httpCall, incrementMetric, log, nowNanos, randomSeed, readBuffer,
  readPluginConfiguration, removeRequestHeader, removeResponseHeader, replaceRequestHeader, requestHeaderPairs,
  sendLocalResponse, setSharedData, setTickPeriodMilliseconds,
} from "../lib/host";
import { RequestView, serializePairs } from "../lib/request-view";
import { addressIp } from "../rate-limit/key";
import { CacheConfig, ConfigParser } from "./config";
import { Directive, directiveError, parseDirective, verifyDirective } from "./directive";
import { Shape, cacheKey, parseShape, parseShapeText } from "./key";

export const FILTER_NAME = "authz-cache";
const PREFIX = "authz-cache: ";
const EPOCH_KEY = String.UTF8.encode("mw-authz-cache/epoch");
const SHAPES_KEY = String.UTF8.encode("mw-authz-cache/shapes");
const SLOT_PREFIX = "mw-authz-cache/slot/";
const DIRECTIVE = String.UTF8.encode("x-meshward-cache");
const NONCE = String.UTF8.encode("x-meshward-cache-nonce");
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
let streams: u32 = 0;

class Metrics {
  hits: u32 = 0;
  misses: u32 = 0;
  stores: u32 = 0;
  evictions: u32 = 0;
  invalidations: u32 = 0;
  rejected: u32 = 0;
  stale: u32 = 0;
  entries: u32 = 0;

  define(): void {
    this.hits = defineMetric(MetricKind.Counter, "meshward_authz_cache_hits");
    this.misses = defineMetric(MetricKind.Counter, "meshward_authz_cache_misses");
    this.stores = defineMetric(MetricKind.Counter, "meshward_authz_cache_stores");
    this.evictions = defineMetric(MetricKind.Counter, "meshward_authz_cache_evictions");
    this.invalidations = defineMetric(MetricKind.Counter, "meshward_authz_cache_invalidations");
    this.rejected = defineMetric(MetricKind.Counter, "meshward_authz_cache_rejected");
    this.stale = defineMetric(MetricKind.Counter, "meshward_authz_cache_stale");
    this.entries = defineMetric(MetricKind.Gauge, "meshward_authz_cache_entries");
  }
}

/** The epoch as last published in shared data, parsed once per CAS value. */
class EpochView {
  cas: u32 = 0;
  epoch: string = "";
  confirmedAtMs: i64 = 0;
}

class ShapesView {
  cas: u32 = 0;
  epoch: string = "";
  shapes: Shape[] = [];
}

/** A parsed entry, reused while its slot keeps the same CAS (skips the JSON parse on a hit). */
class ParsedEntry {
  constructor(public cas: u32, public directive: Directive) {}
}
const parsedBySlot = new Map<u32, ParsedEntry>();
const MAX_PARSED = 1024;

const epochView = new EpochView();
const shapesView = new ShapesView();

function readEpoch(): bool {
  if (getSharedData(EPOCH_KEY, shared) != HostStatus.Ok) return false;
  if (shared.cas != epochView.cas || epochView.epoch.length == 0) {
    const text = String.UTF8.decode(shared.value);
    const nl = text.indexOf("\n");
    if (nl <= 0) return false;
    epochView.epoch = text.substring(0, nl);
    epochView.confirmedAtMs = <i64>parseInt(text.substring(nl + 1));
    epochView.cas = shared.cas;
  }
  return true;
}

function readShapes(epoch: string): Shape[] {
  if (getSharedData(SHAPES_KEY, shared) != HostStatus.Ok) return [];
  if (shared.cas != shapesView.cas) {
    const lines = String.UTF8.decode(shared.value).split("\n");
    shapesView.epoch = lines[0];
    const shapes = new Array<Shape>(0);
    for (let i = 1; i < lines.length && shapes.length < MAX_SHAPES; i++) {
      const s = parseShapeText(lines[i]);
      if (s !== null) shapes.push(s);
    }
    shapesView.shapes = shapes;
    shapesView.cas = shared.cas;
  }
  if (shapesView.epoch != epoch) return [];
  return shapesView.shapes;
}

/** Adds a shape to the list of the current epoch (a list of another epoch is replaced). */
function addShape(epoch: string, shape: string): void {
  for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
    let cas = CREATE_CAS;
    let next = epoch + "\n" + shape;
    if (getSharedData(SHAPES_KEY, shared) == HostStatus.Ok) {
      cas = shared.cas;
      const lines = String.UTF8.decode(shared.value).split("\n");
      if (lines[0] == epoch) {
        for (let i = 1; i < lines.length; i++) if (lines[i] == shape) return;
        if (lines.length - 1 >= MAX_SHAPES) return;
        next = lines.join("\n") + "\n" + shape;
      }
    }
    if (setSharedData(SHAPES_KEY, String.UTF8.encode(next), cas) == HostStatus.Ok) return;
  }
}

function nowMs(): i64 {
  return <i64>nowNanos() / NS_PER_MS;
}

function slotOf(key: ArrayBuffer, slots: u32): u32 {
  return <u32>(load<u64>(changetype<usize>(key)) % <u64>slots);
}

function slotKey(slot: u32): ArrayBuffer {
  return String.UTF8.encode(SLOT_PREFIX + slot.toString());
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

export class AuthzCacheRoot extends RootContext {
  config: CacheConfig | null = null;
  metrics: Metrics = new Metrics();
  pollInFlight: bool = false;
  pollToken: u32 = 0;
  pollSentAtMs: i64 = 0;

  onConfigure(size: u32): bool {
    const parser = new ConfigParser();
    const config = parser.parse(readPluginConfiguration(size));
    if (config === null) {
      log(LogLevel.Critical, PREFIX + "invalid configuration: " + changetype<string>(parser.error));
      return false;
    }
    this.metrics.define();
    this.config = config;
    setTickPeriodMilliseconds(config.pollMs);
    return true;
  }

  createContext(context_id: u32): Context {
    return new AuthzCacheStream(context_id, this);
  }

  onTick(): void {
    const config = this.config;
    if (config === null) return;
    const now = nowMs();
    // A lost answer must not stop polling: give up on it after the staleness bound.
    if (this.pollInFlight && now - this.pollSentAtMs < config.maxStalenessMs) return;
    const headers = serializePairs([":method", ":path", ":authority"], ["GET", config.epochPath, config.epochAuthority]);
    const cluster = String.UTF8.encode(config.epochCluster);
    const timeout = <u32>min<i64>(config.maxStalenessMs, 1000);
    if (httpCall(cluster, headers, NO_BODY, timeout, call) != HostStatus.Ok) {
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
    this.publishEpoch(epoch, this.pollSentAtMs);
  }

  /** Publishes `epoch` as confirmed at `sentAtMs` (when the poll was sent), unless a later poll already did. */
  publishEpoch(epoch: string, sentAtMs: i64): void {
    const value = String.UTF8.encode(epoch + "\n" + sentAtMs.toString());
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      let cas = CREATE_CAS;
      if (getSharedData(EPOCH_KEY, shared) == HostStatus.Ok) {
        cas = shared.cas;
        const text = String.UTF8.decode(shared.value);
        const nl = text.indexOf("\n");
        if (nl > 0) {
          if (<i64>parseInt(text.substring(nl + 1)) >= sentAtMs) return;
          if (text.substring(0, nl) != epoch) incrementMetric(this.metrics.invalidations, 1);
        }
      }
      if (setSharedData(EPOCH_KEY, value, cas) == HostStatus.Ok) return;
    }
  }
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

  onRequestHeaders(_headers: u32, _endOfStream: bool): FilterHeadersStatusValues {
    const root = this.root;
    const config = root.config;
    if (config === null) return FilterHeadersStatusValues.Continue;
    if (++streams % COLLECT_EVERY == 0) collectGarbage();
    const pairs = requestHeaderPairs();
    view.reset(pairs);
    // Nothing the client sends can mark a hit or carry a nonce.
    const skipName = config.skipHeaderBytes;
    if (view.find(skipName)) removeRequestHeader(skipName);
    if (view.find(NONCE)) removeRequestHeader(NONCE);

    const now = nowMs();
    if (readEpoch()) {
      if (now - epochView.confirmedAtMs <= config.maxStalenessMs) {
        // Header names and values bytes: the pairs buffer minus its table and NUL terminators.
        const d = this.lookup(config, epochView.epoch, now, pairs.byteLength - 4 - 10 * view.size);
        if (d !== null) return this.applyHit(config, d, skipName);
      } else {
        incrementMetric(root.metrics.stale, 1);
      }
    }
    incrementMetric(root.metrics.misses, 1);
    this.state = State.Miss;
    this.original = pairs;
    this.nonce = randomHex128();
    replaceRequestHeader(NONCE, String.UTF8.encode(this.nonce));
    return FilterHeadersStatusValues.Continue;
  }

  lookup(config: CacheConfig, epoch: string, now: i64, pairsBytes: i32): Directive | null {
    const shapes = readShapes(epoch);
    let ip = "";
    let ipRead = false;
    for (let i = 0; i < shapes.length; i++) {
      const shape = shapes[i];
      if (shape.address && !ipRead) {
        ip = sourceIp();
        ipRead = true;
      }
      const key = cacheKey(epoch, shape, view, ip);
      const slot = slotOf(key, config.slots);
      if (getSharedData(slotKey(slot), shared) != HostStatus.Ok) continue;
      const v = shared.value;
      if (v.byteLength <= ENTRY_HEADER_BYTES) continue;
      const p = changetype<usize>(v);
      if (memory.compare(p, changetype<usize>(key), 32) != 0) continue;
      if (<i64>load<f64>(p + 32) <= now) continue;
      let d: Directive | null = null;
      if (parsedBySlot.has(slot)) {
        const cached = parsedBySlot.get(slot);
        if (cached.cas == shared.cas) d = cached.directive;
      }
      if (d === null) {
        d = parseDirective(String.UTF8.decodeUnsafe(p + ENTRY_HEADER_BYTES, <usize>(v.byteLength - ENTRY_HEADER_BYTES)));
        if (d === null) continue;
        d.encode();
        if (parsedBySlot.size >= MAX_PARSED) parsedBySlot.clear();
        parsedBySlot.set(slot, new ParsedEntry(shared.cas, d));
      }
      // authz-server counts this request's headers with the nonce a miss adds; over its limits it
      // answers 431 whatever the key says, so such a request is never a hit.
      if (<i64>view.size + 1 > d.maxHeaders || <i64>pairsBytes + NONCE_BYTES > d.maxHeaderBytes) return null;
      return d;
    }
    return null;
  }

  applyHit(config: CacheConfig, d: Directive, skipName: ArrayBuffer): FilterHeadersStatusValues {
    incrementMetric(this.root.metrics.hits, 1);
    if (!d.allow) {
      this.state = State.HitDeny;
      sendLocalResponse(d.status, "meshward_authz_cache", String.UTF8.encode(d.body), serializePairs(d.headerNames, d.headerValues), -1);
      return FilterHeadersStatusValues.StopIteration;
    }
    this.state = State.HitAllow;
    this.hit = d;
    for (let i = 0; i < d.removeBytes.length; i++) removeRequestHeader(d.removeBytes[i]);
    for (let i = 0; i < d.headerNameBytes.length; i++) replaceRequestHeader(d.headerNameBytes[i], d.headerValueBytes[i]);
    replaceRequestHeader(skipName, config.skipTokenBytes);
    return FilterHeadersStatusValues.Continue;
  }

  onResponseHeaders(_headers: u32, _endOfStream: bool): FilterHeadersStatusValues {
    const config = this.root.config;
    if (config === null) return FilterHeadersStatusValues.Continue;
    // A directive never reaches the client, whoever set it.
    const value = headerValue(MapType.ResponseHeaders, DIRECTIVE);
    removeResponseHeader(DIRECTIVE);
    if (this.state == State.HitAllow) {
      const d = changetype<Directive>(this.hit);
      for (let i = 0; i < d.responseNameBytes.length; i++) addResponseHeader(d.responseNameBytes[i], d.responseValueBytes[i]);
    } else if (this.state == State.Miss && value.length > 0) {
      this.learn(config, value);
    }
    return FilterHeadersStatusValues.Continue;
  }

  learn(config: CacheConfig, value: string): void {
    const metrics = this.root.metrics;
    const json = verifyDirective(value, config.secret);
    let d: Directive | null = null;
    if (json !== null) d = parseDirective(json);
    if (d === null || d.nonce != this.nonce) {
      incrementMetric(metrics.rejected, 1);
      let why = directiveError;
      if (d !== null) why = "nonce of another stream";
      log(LogLevel.Warn, PREFIX + "directive rejected: " + why);
      return;
    }
    // Only entries of the epoch Envoy currently holds: an older one is already invalid, a newer one
    // will be learned again once the poll has seen it.
    if (!readEpoch() || d.epoch != epochView.epoch) return;
    const shape = parseShape(d.shape);
    if (shape === null) {
      incrementMetric(metrics.rejected, 1);
      return;
    }
    const now = nowMs();
    let expires = min<f64>(d.expiresAtMs, <f64>(now + <i64>d.ttlMs));
    expires = min<f64>(expires, <f64>(now + config.maxTtlMs));
    if (expires <= <f64>now) return;
    view.reset(this.original);
    let ip = "";
    if (shape.address) ip = sourceIp();
    const key = cacheKey(d.epoch, shape, view, ip);
    const jsonBytes = String.UTF8.encode(changetype<string>(json));
    const size = ENTRY_HEADER_BYTES + jsonBytes.byteLength;
    if (size > config.maxEntryBytes) return;
    const entry = new ArrayBuffer(size);
    const p = changetype<usize>(entry);
    memory.copy(p, changetype<usize>(key), 32);
    store<f64>(p + 32, expires);
    memory.copy(p + ENTRY_HEADER_BYTES, changetype<usize>(jsonBytes), jsonBytes.byteLength);
    addShape(d.epoch, shape.text);
    const slot = slotKey(slotOf(key, config.slots));
    if (getSharedData(slot, shared) == HostStatus.Ok) {
      const old = shared.value;
      if (old.byteLength > ENTRY_HEADER_BYTES && memory.compare(changetype<usize>(old), p, 32) != 0 &&
        <i64>load<f64>(changetype<usize>(old) + 32) > now) {
        incrementMetric(metrics.evictions, 1);
      }
    } else {
      incrementMetric(metrics.entries, 1);
    }
    setSharedData(slot, entry, 0);
    incrementMetric(metrics.stores, 1);
  }
}
