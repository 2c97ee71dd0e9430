// rate-limit stream state machine: reads the configuration once; per request computes each
// matching limit's key, takes a token from the local bucket (local-bucket.ts) or the leased pool
// (lease-client.ts), pauses while a global pool waits on a lease, and answers 429/503 or adds
// RateLimit headers. Host calls go through lib/host.ts; arithmetic is in the pure modules.
import { Context, FilterHeadersStatusValues, RootContext } from "@solo-io/proxy-runtime";
import {
  LogLevel, MemoryGauge, addResponseHeader, collectGarbage, continueRequest, getProperty, incrementMetric, log, nowNanos,
  requestHeaderPairs, sendLocalResponse, setEffectiveContext, setTickPeriodMilliseconds,
  vmEnvironment,
} from "../lib/host";
import { configure } from "../lib/plugin";
import { RequestView, serializePairs } from "../lib/request-view";
import { ConfigParser, FailureMode, KeyKind, Limit, RateLimitConfig } from "./config";
import { limitedBody, nearLimit, policyField, rateLimitField, unavailableBody } from "./headers";
import { addressIp, appendComponent } from "./key";
import { LeaseClient } from "./lease-client";
import { PoolOutcome, secondsUntilRetry } from "./lease-pool";
import { wireKey } from "./lease-protocol";
import { LocalTake } from "./local-bucket";
import { Metrics } from "./metrics";
import { keyFingerprint, slotOf } from "./slot";
import { windowSeconds } from "./token-bucket";

export const FILTER_NAME = "rate-limit";
const PREFIX = "rate-limit: ";
/** Streams between runs of the cycle collector (keeps linear memory flat, see lib/host.ts). */
const COLLECT_EVERY: u32 = 512;
const NS_PER_MS: i64 = 1000000;
const RATELIMIT_POLICY = String.UTF8.encode("ratelimit-policy");
const RATELIMIT = String.UTF8.encode("ratelimit");
const NO_HEADERS = new ArrayBuffer(0);
/** meshward_rate_limit_memory_bytes: this VM's linear memory (lib/host.ts MemoryGauge). */
const memoryGauge = new MemoryGauge();
const NO_WIRE_KEYS = new Array<string>(0);

const enum Verdict { Pass = 0, Wait = 1, Reject = 2 }

export class RateLimitRoot extends RootContext {
  config: RateLimitConfig | null = null;
  metrics: Metrics = new Metrics();
  /** Streams of this VM paused on an empty global pool. */
  waiting: RateLimitStream[] = [];
  // Built in onConfigure, beside the configuration they serve.
  /** Local buckets (and failureMode local). */
  local: LocalTake | null = null;
  /** Leased pools (global limits only). */
  leases: LeaseClient | null = null;
  /** The request being decided (streams of one VM never run callbacks at the same time). */
  view: RequestView = new RequestView();
  streams: u32 = 0;
  // Key arrays reused by streams that decide within onRequestHeaders (no global limit).
  scratchApplies: bool[] = new Array<bool>(0);
  scratchFingerprints: u64[] = new Array<u64>(0);
  scratchSlots: u32[] = new Array<u32>(0);

  onConfigure(size: u32): bool {
    const config = configure<RateLimitConfig, ConfigParser>(new ConfigParser(), size, PREFIX);
    if (config === null) return false;
    this.metrics.define();
    memoryGauge.define("rate_limit");
    this.local = new LocalTake(this.metrics);
    if (config.hasGlobal) {
      setTickPeriodMilliseconds(tickPeriodMs(config.quotaTimeoutMs));
      this.leases = new LeaseClient(config, this.metrics, quotaAuthorization(config));
    }
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
    const leases = this.leases;
    if (this.config === null || leases === null) return;
    if (leases.receive(token, headers, bodySize)) this.resumeWaiting();
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
      setEffectiveContext(s.context_id);
      if (verdict == Verdict.Pass) {
        s.countAllowed();
        continueRequest();
      } else {
        s.reject();
      }
    }
  }
}

class RateLimitStream extends Context {
  /** Index of the next limit to evaluate (a paused stream resumes there). */
  next: i32 = 0;
  applies: bool[] = [];
  fingerprints: u64[] = [];
  slots: u32[] = [];
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
    if (++root.streams % COLLECT_EVERY == 0) collectGarbage();
    memoryGauge.check();
    // A limit keyed only on the client address needs no header map (one host call less per request).
    if (config.needsHeaders) root.view.reset(requestHeaderPairs());
    else root.view.reset(NO_HEADERS);
    this.computeKeys(root, config);
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

  // No onLog/onDone: index.ts does not export proxy_on_log/proxy_on_done, so Envoy never calls them.
  onDelete(): void {
    this.gone = true;
  }

  countAllowed(): void {
    incrementMetric(this.root.metrics.allowed, 1);
  }

  /** Which limits apply (match + every key component present), and their fingerprints and slots. */
  computeKeys(root: RateLimitRoot, config: RateLimitConfig): void {
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
      // Local limits decide within onRequestHeaders: reuse the root's scratch arrays.
      if (root.scratchApplies.length != n) {
        root.scratchApplies = new Array<bool>(n);
        root.scratchFingerprints = new Array<u64>(n);
        root.scratchSlots = new Array<u32>(n);
      }
      const applies = root.scratchApplies;
      for (let i = 0; i < n; i++) unchecked(applies[i] = false);
      this.applies = applies;
      this.fingerprints = root.scratchFingerprints;
      this.slots = root.scratchSlots;
    }
    const view = root.view;
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
      const leases = changetype<LeaseClient>(root.leases);
      let outcome = leases.spend(limit, fp, slot, nowMs);
      if (outcome == PoolOutcome.AdmitAndLease || outcome == PoolOutcome.WaitAndLease) {
        const sent = leases.send(limit, slot, fp, unchecked(this.wireKeys[i]), leases.pool.want);
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
        this.noteRemaining(i, leases.pool.tokens, -1);
      } else if (outcome == PoolOutcome.Over) {
        this.retryAfter = secondsUntilRetry(leases.pool, nowMs);
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
    const take = changetype<LocalTake>(root.local);
    take.run(limit, fp, slot, nowNs);
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

/** Tick period while streams may wait on a lease: a quarter of the lease timeout, 1–50 ms. */
function tickPeriodMs(timeoutMs: u32): u32 {
  const quarter = timeoutMs / 4;
  return quarter < 1 ? 1 : quarter > 50 ? 50 : quarter;
}

/**
 * `Bearer <token>` for lease calls from the VM environment variable `quota.tokenEnv`, or "" (none). A
 * missing secret is deployment state, not a syntax error: leases go out without it, the quota service
 * refuses them and failureMode decides, so the limiter stays on; the critical line says why.
 */
function quotaAuthorization(config: RateLimitConfig): string {
  if (config.quotaTokenEnv.length == 0) return "";
  const token = vmEnvironment(config.quotaTokenEnv);
  if (token === null || token.length == 0) {
    log(LogLevel.Critical, PREFIX + "quota.tokenEnv: VM environment variable '" + config.quotaTokenEnv + "' is not set; leases will be refused");
    return "";
  }
  return "Bearer " + token;
}
