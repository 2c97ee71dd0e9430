// Global limits' side of the host edge: spending from a key's leased pool in shared data, asking
// the quota service for a lease (proxy http_call) and applying its answer to the pool. The pool
// state machine is pure (lease-pool.ts); the wire format is in lease-protocol.ts.
import {
  BufferKind, HostStatus, HttpCall, LogLevel, MapType, headerValue, httpCall, incrementMetric, log, nowNanos,
  readBuffer,
} from "../lib/host";
import { serializePairs } from "../lib/request-view";
import { CasLoop } from "./cas-update";
import { Limit, RateLimitConfig } from "./config";
import { PoolOutcome, PoolState, applyFailure, applyGrant, spend } from "./lease-pool";
import { LEASE_PATH, leaseRequestBody, parseLeaseAnswer } from "./lease-protocol";
import { Metrics } from "./metrics";

const PREFIX = "rate-limit: ";
const NS_PER_MS: i64 = 1000000;
const STATUS_HEADER = String.UTF8.encode(":status");

/** A lease request in flight: which limit and key asked, and for how many tokens. */
class LeaseCall {
  constructor(public limit: i32, public slot: u32, public fingerprint: u64, public want: i64) {}
}

/** One per root context (per VM and plugin). Spends and answers decode into one pool scratch. */
export class LeaseClient {
  /** The pool state last read or written (after `spend`: tokens, want, backoff). */
  pool: PoolState = new PoolState();
  private cas: CasLoop = new CasLoop();
  private calls: Map<u32, LeaseCall> = new Map();
  private dispatched: HttpCall = new HttpCall();

  private config: RateLimitConfig;
  private metrics: Metrics;

  constructor(config: RateLimitConfig, metrics: Metrics) {
    this.config = config;
    this.metrics = metrics;
  }

  /** Spends from the pool of key `fp` of `limit` in slot `slot`. */
  spend(limit: Limit, fp: u64, slot: u32, nowMs: i64): PoolOutcome {
    const spec = limit.lease!;
    const pool = this.pool;
    const cas = this.cas;
    cas.begin(String.UTF8.encode(limit.poolPrefix + slot.toString()), this.metrics.casRetries);
    while (cas.read()) {
      if (!cas.found || !pool.decode(cas.value)) pool.fingerprint = 0;
      const outcome = spend(pool, fp, spec, nowMs);
      if (cas.write(pool.encode())) return outcome;
    }
    return PoolOutcome.Unavailable;
  }

  /** Sends a lease request for `want` tokens of `key`; false (and the pool marked failed) when it could not be sent. */
  send(limit: Limit, slot: u32, fp: u64, key: string, want: i64): bool {
    const config = this.config;
    const body = String.UTF8.encode(leaseRequestBody(config.domain, limit.name, key, want));
    const headers = serializePairs([":method", ":path", ":authority", "content-type"],
      ["POST", LEASE_PATH, config.quotaAuthority, "application/json"]);
    incrementMetric(this.metrics.leaseRequests, 1);
    const status = httpCall(String.UTF8.encode(config.quotaCluster), headers, body, config.quotaTimeoutMs, this.dispatched);
    if (status != HostStatus.Ok) {
      incrementMetric(this.metrics.leaseFailures, 1);
      log(LogLevel.Warn, PREFIX + "lease for limit '" + limit.name + "' not sent: http_call status " + status.toString());
      this.apply(limit, slot, fp, false, 0, 0, 0, 0, <i64>nowNanos() / NS_PER_MS);
      return false;
    }
    this.calls.set(this.dispatched.token, new LeaseCall(limit.index, slot, fp, want));
    return true;
  }

  /** Applies the response to call `token` (from onHttpCallResponse); false when the token is not ours. */
  receive(token: u32, headers: u32, bodySize: u32): bool {
    if (!this.calls.has(token)) return false;
    const call = this.calls.get(token);
    this.calls.delete(token);
    const limit = this.config.limits[call.limit];
    let problem: string | null = "no response (reset)";
    let granted: i64 = 0;
    let expiresInMs: i64 = 0;
    let retryHintMs: i64 = -1;
    if (headers > 0) {
      const status = headerValue(MapType.HttpCallResponseHeaders, STATUS_HEADER);
      if (status != "200") {
        problem = "status " + status;
      } else {
        const parsed = parseLeaseAnswer(String.UTF8.decode(readBuffer(BufferKind.HttpCallResponseBody, 0, bodySize)));
        problem = parsed.error;
        granted = parsed.granted;
        expiresInMs = parsed.expiresInMs;
        retryHintMs = parsed.retryHintMs;
      }
    }
    const nowMs = <i64>nowNanos() / NS_PER_MS;
    if (problem === null) {
      this.apply(limit, call.slot, call.fingerprint, true, granted, call.want, expiresInMs, retryHintMs, nowMs);
    } else {
      incrementMetric(this.metrics.leaseFailures, 1);
      log(LogLevel.Warn, PREFIX + "lease for limit '" + limit.name + "' failed: " + changetype<string>(problem));
      this.apply(limit, call.slot, call.fingerprint, false, 0, 0, 0, 0, nowMs);
    }
    return true;
  }

  /** Applies a lease answer (`ok`) or a failure to the pool of key `fp`, if that key still owns the slot. */
  private apply(limit: Limit, slot: u32, fp: u64, ok: bool, granted: i64, asked: i64, expiresInMs: i64, retryHintMs: i64,
    nowMs: i64): void {
    const pool = this.pool;
    const cas = this.cas;
    cas.begin(String.UTF8.encode(limit.poolPrefix + slot.toString()), this.metrics.casRetries);
    while (cas.read()) {
      if (!cas.found || !pool.decode(cas.value)) return;
      const owned = ok
        ? applyGrant(pool, fp, granted, asked, expiresInMs, retryHintMs, nowMs)
        : applyFailure(pool, fp, nowMs);
      if (!owned || cas.write(pool.encode())) return;
    }
  }
}
