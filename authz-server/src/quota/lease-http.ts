// `POST /v1/quota/lease`: reads a bounded JSON body, takes up to `want` tokens from the global bucket
// (debited at grant time) and answers JSON; maps each QuotaError to its HTTP status and JSON error body.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { QuotaCode } from "../error-codes.js";
import { LeaseRequestInvalid, LimitUnknown, QuotaError, QuotaStoreUnavailable } from "./errors.js";
import type { CallerCheck } from "./caller-auth.js";
import { maxLeaseOf } from "./contract.js";
import type { Grants } from "./grants.js";
import { MAX_LEASE_BODY_BYTES, parseLeaseRequest } from "./lease-request.js";
import type { LimitTable } from "./limits.js";
import type { QuotaMetrics } from "./metrics.js";
import { msUntilTokens } from "./token-bucket.js";

export const LEASE_PATH = "/v1/quota/lease";

/** 200 body of a lease. */
export interface LeaseResponse {
  /** Tokens granted (0 … want), already debited from the global bucket. */
  readonly granted: number;
  /** How long the caller may hold (spend) the granted tokens. */
  readonly expiresInMs: number;
  /** Milliseconds until the global bucket is full again; 0 when full, -1 when it never refills. */
  readonly resetInMs: number;
  /** Milliseconds until at least one token is available again; 0 now, -1 never. */
  readonly retryAfterMs: number;
}

export interface LeaseHttpDeps {
  readonly limits: () => LimitTable;
  readonly grants: Grants;
  readonly metrics: QuotaMetrics;
  readonly leaseTtlMs: number;
  /** Absent: open (no token configured). */
  readonly callers?: CallerCheck;
}

export function createLeaseHandler(deps: LeaseHttpDeps): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  return async (req, res) => {
    const path = (req.url ?? "").split("?", 1)[0]!;
    if (path !== "/v1/quota" && !path.startsWith("/v1/quota/")) return false;
    if (path !== LEASE_PATH) {
      sendError(res, 404, "ERR_QUOTA_ROUTE_UNKNOWN", `no quota route ${path}`);
      return true;
    }
    if (req.method !== "POST") {
      res.setHeader("allow", "POST");
      sendError(res, 405, "ERR_QUOTA_METHOD_NOT_ALLOWED", `${LEASE_PATH} accepts POST only`);
      return true;
    }
    if (deps.callers && !deps.callers(req.headers.authorization)) {
      deps.metrics.rejected.inc({ api: "http", reason: "unauthenticated" });
      res.setHeader("www-authenticate", 'Bearer realm="meshward-quota"');
      // The body is not read: close rather than drain it.
      if (!req.readableEnded) res.setHeader("connection", "close");
      sendError(res, 401, "ERR_QUOTA_UNAUTHENTICATED", "the lease API needs the quota bearer token");
      return true;
    }
    try {
      const body = await readBoundedBody(req, MAX_LEASE_BODY_BYTES);
      const lease = parseLeaseRequest(body);
      const spec = deps.limits().find(lease.domain, lease.limit);
      if (!spec) throw new LimitUnknown(lease.domain, lease.limit);
      // One call never takes more than the limit's maxLease, whatever it asks for.
      const out = await deps.grants.take("http", spec, lease.key, Math.min(lease.want, maxLeaseOf(spec)), "partial");
      const answer: LeaseResponse = {
        granted: out.granted,
        expiresInMs: deps.leaseTtlMs,
        resetInMs: out.resetInMs,
        retryAfterMs: msUntilTokens(1, out.tokens, spec.refillPerSecond),
      };
      sendJson(res, 200, answer);
    } catch (err) {
      if (!(err instanceof QuotaError)) throw err;
      if (err instanceof LeaseRequestInvalid) deps.metrics.rejected.inc({ api: "http", reason: "invalid" });
      if (err instanceof LimitUnknown) deps.metrics.rejected.inc({ api: "http", reason: "unknown_limit" });
      if (err instanceof LeaseRequestInvalid && err.field === "body" && req.readableEnded === false) res.setHeader("connection", "close");
      if (err instanceof QuotaStoreUnavailable) res.setHeader("retry-after", "1");
      sendError(res, err.httpStatus, err.code, err.message, err instanceof LeaseRequestInvalid ? err.field : undefined);
    }
    return true;
  };
}

/** The lease API's error body: `{"error": {"code", "message", "field"?}}`. */
function sendError(res: ServerResponse, status: number, code: QuotaCode, message: string, field?: string): void {
  sendJson(res, status, { error: { code, message, ...(field !== undefined ? { field } : {}) } });
}

/** Collects at most `limit` bytes; beyond that stops reading and rejects (the caller closes the connection). */
function readBoundedBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = (): LeaseRequestInvalid => new LeaseRequestInvalid("body", `the body exceeds ${limit} bytes`);
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) {
    req.pause();
    return Promise.reject(tooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.pause();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(new LeaseRequestInvalid("body", `the body could not be read: ${err.message}`));
    };
    const cleanup = (): void => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store", "content-length": Buffer.byteLength(text) });
  res.end(text);
}
