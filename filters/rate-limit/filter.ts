// rate-limit host edge: reads the configuration once, and per request computes each matching
// limit's key, takes a token from the shared-data bucket (CAS) or the leased pool, pauses when a
// global pool is empty, and answers 429/503 or adds RateLimit headers. Arithmetic is in the
// pure modules (token-bucket.ts, lease-pool.ts); this file only talks to the host.
import { Context, FilterHeadersStatusValues, RootContext } from "@solo-io/proxy-runtime";
import * as imports from "@solo-io/proxy-runtime/imports";
import { free } from "@solo-io/proxy-runtime/malloc";
import {
  HostStatus, LogLevel, MetricKind, SharedData, addResponseHeader, collectGarbage, continueRequest, defineMetric,
  getProperty, getSharedData, incrementMetric, log, nowNanos, readBuffer, readPluginConfiguration, requestHeaderPairs,
  sendLocalResponse, setSharedData, setTickPeriodMilliseconds, vmEnvironment,
} from "../lib/host";
import { RequestView, serializePairs } from "../lib/request-view";
import { ConfigParser, FailureMode, KeyKind, Limit, RateLimitConfig } from "./config";
import { limitedBody, nearLimit, policyField, rateLimitField, unavailableBody } from "./headers";
import { addressIp, appendComponent } from "./key";
import { PoolOutcome, PoolState, applyFailure, applyGrant, secondsUntilRetry, spend } from "./lease-pool";
import { LEASE_PATH, leaseRequestBody, parseLeaseAnswer, wireKey } from "./lease-protocol";
import { keyFingerprint, slotOf } from "./slot";
import {
  BucketSpec, BucketState, remainingTokens, secondsUntilFull, secondsUntilToken, takeToken, windowSeconds,
} from "./token-bucket";

export const FILTER_NAME = "rate-limit";
const PREFIX = "rate-limit: ";
/** Streams between runs of the cycle collector (keeps linear memory flat, see lib/host.ts). */
const COLLECT_EVERY: u32 = 512;
/** CAS retries before giving up on one shared-data update (then the stricter answer is taken). */
const MAX_CAS_ATTEMPTS = 64;
/** CAS used to create a slot: no stored entry carries it, so two creators cannot both win. */
const CREATE_CAS: u32 = 0xffffffff;
const NS_PER_MS: i64 = 1000000;
const HTTP_CALL_RESPONSE_HEADERS = 6;
const HTTP_CALL_RESPONSE_BODY = 4;
const STATUS_HEADER = String.UTF8.encode(":status");
const RATELIMIT_POLICY = String.UTF8.encode("ratelimit-policy");
const RATELIMIT = String.UTF8.encode("ratelimit");

const enum Verdict { Pass = 0, Wait = 1, Reject = 2 }

// Per-VM scratch: callbacks in one VM never overlap.
const view = new RequestView();
const shared = new SharedData();
const bucket = new BucketState();
const pool = new PoolState();
const tokenScratch = new ArrayBuffer(8);
const NO_HEADERS = new ArrayBuffer(0);
let streams: u32 = 0;
let scratchApplies = new Array<bool>(0);
let scratchFingerprints = new Array<u64>(0);
let scratchSlots = new Array<u32>(0);
const NO_WIRE_KEYS = new Array<string>(0);

/** Result of the last local-bucket take. */
class Take {
  admitted: bool = false;
  remaining: i64 = 0;
  retryAfter: i64 = -1;
  reset: i64 = -1;
}
const take = new Take();

class LeaseCall {
  constructor(public limit: i32, public slot: u32, public fingerprint: u64, public want: i64) {}
}

class Metrics {
  allowed: u32 = 0;
  limited: u32 = 0;
  dryRunLimited: u32 = 0;
  leaseRequests: u32 = 0;
  leaseFailures: u32 = 0;
  poolWaits: u32 = 0;
  failureMode: u32 = 0;
  casRetries: u32 = 0;
  collisions: u32 = 0;

  define(): void {
    this.allowed = defineMetric(MetricKind.Counter, "meshward_rate_limit_allowed_total");
    this.limited = defineMetric(MetricKind.Counter, "meshward_rate_limit_limited_total");
    this.dryRunLimited = defineMetric(MetricKind.Counter, "meshward_rate_limit_dry_run_limited_total");
    this.leaseRequests = defineMetric(MetricKind.Counter, "meshward_rate_limit_lease_requests_total");
    this.leaseFailures = defineMetric(MetricKind.Counter, "meshward_rate_limit_lease_failures_total");
    this.poolWaits = defineMetric(MetricKind.Counter, "meshward_rate_limit_pool_exhaustion_waits_total");
    this.failureMode = defineMetric(MetricKind.Counter, "meshward_rate_limit_failure_mode_total");
    this.casRetries = defineMetric(MetricKind.Counter, "meshward_rate_limit_cas_retries_total");
    this.collisions = defineMetric(MetricKind.Counter, "meshward_rate_limit_slot_collisions_total");
  }
}

export class RateLimitRoot extends RootContext {
  config: RateLimitConfig | null = null;
  metrics: Metrics = new Metrics();
  /** Streams of this VM paused on an empty global pool. */
  waiting: RateLimitStream[] = [];
  leases: Map<u32, LeaseCall> = new Map();
  /** `Bearer <token>` for lease calls, from the VM environment (quota.tokenEnv); "" = none. */
  quotaAuthorization: string = "";

  onConfigure(size: u32): bool {
    const parser = new ConfigParser();
    const config = parser.parse(readPluginConfiguration(size));
    if (config === null) {
      log(LogLevel.Critical, PREFIX + "invalid configuration: " + changetype<string>(parser.error));
      return false;
    }
    this.metrics.define();
    if (config.quotaTokenEnv.length > 0) {
      const token = vmEnvironment(config.quotaTokenEnv);
      // A missing secret is deployment state, not a syntax error: leases go out unauthenticated, the
      // quota service refuses them, and failureMode decides (the limiter stays on).
      if (token === null || token.length == 0) {
        log(LogLevel.Critical, PREFIX + "quota.tokenEnv: VM environment variable '" + config.quotaTokenEnv + "' is not set; leases will be refused");
      } else {
        this.quotaAuthorization = "Bearer " + token;
      }
    }
    if (config.hasGlobal) setTickPeriodMilliseconds(tickPeriodMs(config.quotaTimeoutMs));
    this.config = config;
    let mode = "enforce";
    if (config.dryRun) mode = "dry run";
    log(LogLevel.Info, PREFIX + "configured " + config.limits.length.toString() + " limits for domain '" + config.domain +
      "' (" + mode + ")");
    return true;
  }

  createContext(context_id: u32): Context {
    return new RateLimitStream(context_id, this);
  }

  onTick(): void {
    if (this.waiting.length > 0) this.resumeWaiting();
  }

  onHttpCallResponse(token: u32, headers: u32, bodySize: u32, _trailers: u32): void {
    const config = this.config;
    if (config === null || !this.leases.has(token)) return;
    const call = this.leases.get(token);
    this.leases.delete(token);
    const limit = config.limits[call.limit];
    let problem: string | null = "no response (reset)";
    let granted: i64 = 0;
    let expiresInMs: i64 = 0;
    let retryHintMs: i64 = -1;
    if (headers > 0) {
      const status = httpCallStatus();
      if (status != "200") {
        problem = "status " + status;
      } else {
        const answer = parseLeaseAnswer(String.UTF8.decode(readBuffer(HTTP_CALL_RESPONSE_BODY, 0, bodySize)));
        problem = answer.error;
        granted = answer.granted;
        expiresInMs = answer.expiresInMs;
        retryHintMs = answer.retryHintMs;
      }
    }
    const nowMs = <i64>nowNanos() / NS_PER_MS;
    if (problem === null) {
      updatePool(this, limit, call.slot, call.fingerprint, true, granted, call.want, expiresInMs, retryHintMs, nowMs);
    } else {
      incrementMetric(this.metrics.leaseFailures, 1);
      log(LogLevel.Warn, PREFIX + "lease for limit '" + limit.name + "' failed: " + changetype<string>(problem));
      updatePool(this, limit, call.slot, call.fingerprint, false, 0, 0, 0, 0, nowMs);
    }
    this.resumeWaiting();
  }

  /** Re-evaluates every paused stream of this VM; resumes or answers those that are decided. */
  resumeWaiting(): void {
    const list = this.waiting;
    this.waiting = [];
    const nowNs = <i64>nowNanos();
    for (let i = 0; i < list.length; i++) {
      const s = list[i];
      if (s.gone) continue;
      const verdict = s.evaluate(nowNs);
      if (verdict == Verdict.Wait) {
        this.waiting.push(s);
        continue;
      }
      imports.proxy_set_effective_context(s.context_id);
      if (verdict == Verdict.Pass) {
        s.countAllowed();
        continueRequest();
      } else {
        s.reject();
      }
    }
  }

  /** Sends a lease request for the key whose pool state is in `pool`. False when it could not be sent. */
  sendLease(limit: Limit, slot: u32, fingerprint: u64, key: string, want: i64): bool {
    const config = changetype<RateLimitConfig>(this.config);
    const body = String.UTF8.encode(leaseRequestBody(config.domain, limit.name, key, want));
    const headers = this.quotaAuthorization.length > 0
      ? serializePairs([":method", ":path", ":authority", "content-type", "authorization"],
        ["POST", LEASE_PATH, config.quotaAuthority, "application/json", this.quotaAuthorization])
      : serializePairs([":method", ":path", ":authority", "content-type"],
        ["POST", LEASE_PATH, config.quotaAuthority, "application/json"]);
    const cluster = String.UTF8.encode(config.quotaCluster);
    const tokenPtr = changetype<usize>(tokenScratch);
    store<u32>(tokenPtr, 0);
    incrementMetric(this.metrics.leaseRequests, 1);
    const status = imports.proxy_http_call(changetype<usize>(cluster), cluster.byteLength, changetype<usize>(headers),
      headers.byteLength, changetype<usize>(body), body.byteLength, 0, 0, config.quotaTimeoutMs, tokenPtr);
    if (status != HostStatus.Ok) {
      incrementMetric(this.metrics.leaseFailures, 1);
      log(LogLevel.Warn, PREFIX + "lease for limit '" + limit.name + "' not sent: http_call status " + status.toString());
      updatePool(this, limit, slot, fingerprint, false, 0, 0, 0, 0, <i64>nowNanos() / NS_PER_MS);
      return false;
    }
    this.leases.set(load<u32>(tokenPtr), new LeaseCall(limit.index, slot, fingerprint, want));
    return true;
  }
}

class RateLimitStream extends Context {
  /** Index of the next limit to evaluate (a paused stream resumes there). */
  next: i32 = 0;
  applies: bool[] = scratchApplies;
  fingerprints: u64[] = scratchFingerprints;
  slots: u32[] = scratchSlots;
  /** Keys as sent to the quota service (global limits only). */
  wireKeys: string[] = NO_WIRE_KEYS;
  anyApplied: bool = false;
  waitDeadlineMs: i64 = 0;
  gone: bool = false;
  rejected: bool = false;
  rejectStatus: u32 = 0;
  rejectLimit: i32 = -1;
  retryAfter: i64 = -1;
  /** The applied limit with the least remaining quota, for near-limit response headers. */
  hdrLimit: i32 = -1;
  hdrRemaining: i64 = 0;
  hdrReset: i64 = -1;

  get root(): RateLimitRoot {
    return changetype<RateLimitRoot>(this.root_context);
  }

  onRequestHeaders(_headers: u32, _endOfStream: bool): FilterHeadersStatusValues {
    const root = this.root;
    const config = root.config;
    if (config === null) return FilterHeadersStatusValues.Continue;
    if (++streams % COLLECT_EVERY == 0) collectGarbage();
    // A limit keyed only on the client address needs no header map (one host call less per request).
    if (config.needsHeaders) view.reset(requestHeaderPairs());
    else view.reset(NO_HEADERS);
    this.computeKeys(config);
    if (!this.anyApplied) return FilterHeadersStatusValues.Continue;
    const verdict = this.evaluate(<i64>nowNanos());
    if (verdict == Verdict.Wait) {
      root.waiting.push(this);
      return FilterHeadersStatusValues.StopIteration;
    }
    if (verdict == Verdict.Reject) {
      this.reject();
      return FilterHeadersStatusValues.StopIteration;
    }
    this.countAllowed();
    return FilterHeadersStatusValues.Continue;
  }

  onResponseHeaders(_headers: u32, _endOfStream: bool): FilterHeadersStatusValues {
    const config = this.root.config;
    if (config === null || !config.responseHeaders || this.rejected || this.hdrLimit < 0) {
      return FilterHeadersStatusValues.Continue;
    }
    const limit = config.limits[this.hdrLimit];
    if (nearLimit(this.hdrRemaining, limit.capacity)) {
      addResponseHeader(RATELIMIT_POLICY, String.UTF8.encode(policyField(limit.name, limit.capacity, windowSeconds(limit.bucket))));
      addResponseHeader(RATELIMIT, String.UTF8.encode(rateLimitField(limit.name, this.hdrRemaining, this.hdrReset)));
    }
    return FilterHeadersStatusValues.Continue;
  }

  // The SDK's defaults log a debug line built by string concatenation on every stream.
  onLog(): void {}
  onDone(): bool {
    return true;
  }
  onDelete(): void {
    this.gone = true;
  }

  countAllowed(): void {
    incrementMetric(this.root.metrics.allowed, 1);
  }

  /** Which limits apply (match + every key component present), and their fingerprints and slots. */
  computeKeys(config: RateLimitConfig): void {
    const n = config.limits.length;
    if (config.hasGlobal) {
      // A stream that may pause keeps its own keys until it resumes.
      this.applies = new Array<bool>(n);
      this.fingerprints = new Array<u64>(n);
      this.slots = new Array<u32>(n);
      const wire = new Array<string>();
      for (let i = 0; i < n; i++) wire.push("");
      this.wireKeys = wire;
    } else {
      // Local limits decide within onRequestHeaders: reuse the VM's scratch arrays.
      if (scratchApplies.length != n) {
        scratchApplies = new Array<bool>(n);
        scratchFingerprints = new Array<u64>(n);
        scratchSlots = new Array<u32>(n);
      }
      for (let i = 0; i < n; i++) unchecked(scratchApplies[i] = false);
      this.applies = scratchApplies;
      this.fingerprints = scratchFingerprints;
      this.slots = scratchSlots;
    }
    let address: string | null = null;
    let addressRead = false;
    for (let i = 0; i < n; i++) {
      const limit = unchecked(config.limits[i]);
      if (!limit.match.matches(view)) continue;
      let scoped = limit.scope;
      let components: string[] | null = null;
      if (limit.isGlobal) components = new Array<string>();
      let complete = true;
      for (let j = 0; j < limit.key.length && complete; j++) {
        const part = unchecked(limit.key[j]);
        let value: string | null = null;
        if (part.kind == KeyKind.RemoteAddress) {
          if (!addressRead) {
            addressRead = true;
            const raw = getProperty(["source", "address"]);
            if (raw !== null) address = addressIp(String.UTF8.decode(raw));
          }
          value = address;
        } else if (part.kind == KeyKind.Header) {
          value = view.header(part.nameBytes);
        } else if (part.kind == KeyKind.Cookie) {
          value = view.cookie(part.name);
        } else if (part.kind == KeyKind.Path) {
          value = view.path();
        } else {
          value = part.name;
        }
        if (value === null) {
          complete = false;
        } else {
          const v = changetype<string>(value);
          scoped = appendComponent(scoped, v);
          if (components !== null) components.push(v);
        }
      }
      if (!complete) continue;
      const fp = keyFingerprint(scoped);
      unchecked(this.applies[i] = true);
      unchecked(this.fingerprints[i] = fp);
      unchecked(this.slots[i] = slotOf(fp, config.maxKeysPerLimit));
      if (components !== null) unchecked(this.wireKeys[i] = wireKey(components));
      this.anyApplied = true;
    }
  }

  /** Evaluates the applicable limits from `next` on. */
  evaluate(nowNs: i64): Verdict {
    const root = this.root;
    const config = changetype<RateLimitConfig>(root.config);
    const nowMs = nowNs / NS_PER_MS;
    for (let i = this.next; i < config.limits.length; i++) {
      if (!unchecked(this.applies[i])) continue;
      const limit = unchecked(config.limits[i]);
      const fp = unchecked(this.fingerprints[i]);
      const slot = unchecked(this.slots[i]);
      if (!limit.isGlobal) {
        if (!this.local(root, limit, fp, slot, nowNs) && this.overLimit(config, limit, 429)) return Verdict.Reject;
        continue;
      }
      let outcome = spendPool(root, limit, fp, slot, nowMs);
      if (outcome == PoolOutcome.AdmitAndLease || outcome == PoolOutcome.WaitAndLease) {
        const sent = root.sendLease(limit, slot, fp, unchecked(this.wireKeys[i]), pool.want);
        if (outcome == PoolOutcome.WaitAndLease) outcome = sent ? PoolOutcome.Wait : PoolOutcome.Unavailable;
      }
      if (outcome == PoolOutcome.Wait) {
        if (this.waitDeadlineMs == 0) {
          this.waitDeadlineMs = nowMs + <i64>config.quotaTimeoutMs;
          incrementMetric(root.metrics.poolWaits, 1);
        }
        if (nowMs < this.waitDeadlineMs) {
          this.next = i;
          return Verdict.Wait;
        }
        outcome = PoolOutcome.Unavailable;
      }
      this.waitDeadlineMs = 0;
      if (outcome == PoolOutcome.Admit || outcome == PoolOutcome.AdmitAndLease) {
        this.noteRemaining(i, pool.tokens, -1);
      } else if (outcome == PoolOutcome.Over) {
        this.retryAfter = secondsUntilRetry(pool, nowMs);
        this.noteRemaining(i, 0, this.retryAfter);
        if (this.overLimit(config, limit, 429)) return Verdict.Reject;
      } else if (this.failureMode(root, config, limit, fp, slot, nowNs)) {
        return Verdict.Reject;
      }
    }
    this.next = config.limits.length;
    return Verdict.Pass;
  }

  /** Takes a token from the limit's local bucket; records Retry-After and header values. */
  local(root: RateLimitRoot, limit: Limit, fp: u64, slot: u32, nowNs: i64): bool {
    takeLocal(root, limit, fp, slot, nowNs);
    this.retryAfter = take.retryAfter;
    this.noteRemaining(limit.index, take.remaining, take.admitted ? take.reset : take.retryAfter);
    return take.admitted;
  }

  /** No lease could be had: applies failureMode. True when the request is to be rejected. */
  failureMode(root: RateLimitRoot, config: RateLimitConfig, limit: Limit, fp: u64, slot: u32, nowNs: i64): bool {
    incrementMetric(root.metrics.failureMode, 1);
    if (config.failureMode == FailureMode.Allow) return false;
    if (config.failureMode == FailureMode.Deny) return this.overLimit(config, limit, 503);
    return !this.local(root, limit, fp, slot, nowNs) && this.overLimit(config, limit, 429);
  }

  /** A limit refused the request: true to reject, false in dry run (counted and logged instead). */
  overLimit(config: RateLimitConfig, limit: Limit, status: u32): bool {
    if (config.dryRun) {
      incrementMetric(this.root.metrics.dryRunLimited, 1);
      log(LogLevel.Info, PREFIX + "dry run: limit '" + limit.name + "' would answer " + status.toString());
      return false;
    }
    this.rejectStatus = status;
    this.rejectLimit = limit.index;
    return true;
  }

  noteRemaining(index: i32, remaining: i64, reset: i64): void {
    if (this.hdrLimit < 0 || remaining < this.hdrRemaining) {
      this.hdrLimit = index;
      this.hdrRemaining = remaining;
      this.hdrReset = reset;
    }
  }

  /** Sends the 429 (over limit) or 503 (limiter unavailable) local reply. */
  reject(): void {
    this.rejected = true;
    const root = this.root;
    const config = changetype<RateLimitConfig>(root.config);
    const limit = config.limits[this.rejectLimit];
    if (this.rejectStatus == 503) {
      sendLocalResponse(503, "meshward_rate_limiter_unavailable", String.UTF8.encode(unavailableBody(limit.name)),
        serializePairs(["x-meshward-reason", "content-type"], ["rate_limiter_unavailable", "application/json"]), -1);
      return;
    }
    incrementMetric(root.metrics.limited, 1);
    const names = new Array<string>();
    const values = new Array<string>();
    if (this.retryAfter >= 0) {
      names.push("retry-after");
      values.push(this.retryAfter.toString());
    }
    names.push("ratelimit-policy");
    values.push(policyField(limit.name, limit.capacity, windowSeconds(limit.bucket)));
    names.push("ratelimit");
    values.push(rateLimitField(limit.name, 0, this.retryAfter));
    names.push("content-type");
    values.push("application/json");
    sendLocalResponse(429, "meshward_rate_limited", String.UTF8.encode(limitedBody(limit.name, this.retryAfter)),
      serializePairs(names, values), -1);
  }
}

/** Status of the http_call response being delivered, e.g. "200". */
function httpCallStatus(): string {
  const scratch = changetype<usize>(tokenScratch);
  store<u64>(scratch, 0);
  const status = imports.proxy_get_header_map_value(HTTP_CALL_RESPONSE_HEADERS, changetype<usize>(STATUS_HEADER),
    STATUS_HEADER.byteLength, scratch, scratch + 4);
  if (status != HostStatus.Ok) return "";
  const ptr = load<usize>(scratch);
  const len = load<u32>(scratch + 4);
  if (ptr == 0 || len == 0) return "";
  const value = String.UTF8.decodeUnsafe(ptr, len);
  free(ptr);
  return value;
}

/** Takes one token from the limit's bucket in slot `slot` (CAS loop); result in `take`. */
function takeLocal(root: RateLimitRoot, limit: Limit, fp: u64, slot: u32, nowNs: i64): void {
  const key = String.UTF8.encode(limit.bucketPrefix + slot.toString());
  const spec: BucketSpec = limit.bucket;
  for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
    let cas = CREATE_CAS;
    const status = getSharedData(key, shared);
    if (status == HostStatus.Ok && bucket.decode(shared.value)) {
      cas = shared.cas;
      if (bucket.fingerprint != fp) {
        incrementMetric(root.metrics.collisions, 1);
        bucket.fingerprint = fp;
      }
    } else {
      if (status == HostStatus.Ok) cas = shared.cas;
      bucket.reset(fp, spec, nowNs);
    }
    const admitted = takeToken(bucket, spec, nowNs);
    take.admitted = admitted;
    take.remaining = remainingTokens(bucket);
    take.retryAfter = admitted ? -1 : secondsUntilToken(bucket, spec);
    take.reset = secondsUntilFull(bucket, spec);
    if (!admitted) return;
    if (setSharedData(key, bucket.encode(), cas) == HostStatus.Ok) return;
    incrementMetric(root.metrics.casRetries, 1);
  }
  take.admitted = false;
  take.retryAfter = 1;
}

/** Spends from the key's lease pool (CAS loop); the state written is left in `pool`. */
function spendPool(root: RateLimitRoot, limit: Limit, fp: u64, slot: u32, nowMs: i64): PoolOutcome {
  const key = String.UTF8.encode(limit.poolPrefix + slot.toString());
  const spec = limit.lease!;
  for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
    let cas = CREATE_CAS;
    const status = getSharedData(key, shared);
    if (status == HostStatus.Ok) cas = shared.cas;
    if (status != HostStatus.Ok || !pool.decode(shared.value)) pool.fingerprint = 0;
    const outcome = spend(pool, fp, spec, nowMs);
    if (setSharedData(key, pool.encode(), cas) == HostStatus.Ok) return outcome;
    incrementMetric(root.metrics.casRetries, 1);
  }
  return PoolOutcome.Unavailable;
}

/** Applies a lease answer (`ok`) or failure to the key's pool (CAS loop). */
function updatePool(root: RateLimitRoot, limit: Limit, slot: u32, fp: u64, ok: bool, granted: i64, asked: i64,
  expiresInMs: i64, retryHintMs: i64, nowMs: i64): void {
  const key = String.UTF8.encode(limit.poolPrefix + slot.toString());
  for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
    if (getSharedData(key, shared) != HostStatus.Ok || !pool.decode(shared.value)) return;
    const owned = ok
      ? applyGrant(pool, fp, granted, asked, expiresInMs, retryHintMs, nowMs)
      : applyFailure(pool, fp, nowMs);
    if (!owned) return;
    if (setSharedData(key, pool.encode(), shared.cas) == HostStatus.Ok) return;
    incrementMetric(root.metrics.casRetries, 1);
  }
}

/** Tick period while streams may wait on a lease: a quarter of the lease timeout, 1–50 ms. */
function tickPeriodMs(timeoutMs: u32): u32 {
  const quarter = timeoutMs / 4;
  return quarter < 1 ? 1 : quarter > 50 ? 50 : quarter;
}
