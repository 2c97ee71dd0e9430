// The quota service's error classes (codes from error-codes.ts): lease-http.ts maps each to an HTTP answer, rate-limit-service.ts to a gRPC status.
import { CodedError, type QuotaCode } from "../error-codes.js";

export abstract class QuotaError extends CodedError<QuotaCode> {
  abstract readonly httpStatus: number;
}

/** The request body is not a valid lease request; `field` names the offending member. */
export class LeaseRequestInvalid extends QuotaError {
  readonly httpStatus = 400;
  constructor(
    readonly field: string,
    message: string,
  ) {
    super("ERR_QUOTA_REQUEST_INVALID", message);
  }
}

/** No `spec.rateLimits` entry has this domain and name. */
export class LimitUnknown extends QuotaError {
  readonly httpStatus = 404;
  constructor(domain: string, limit: string) {
    super("ERR_QUOTA_LIMIT_UNKNOWN", `no rate limit '${limit}' in domain '${domain}'`);
  }
}

/** The bucket store (Redis) did not answer in time or is disconnected: not the client's fault. */
export class QuotaStoreUnavailable extends QuotaError {
  readonly httpStatus = 503;
  constructor(message: string, options?: { cause?: unknown }) {
    super("ERR_QUOTA_STORE_UNAVAILABLE", message, options);
  }
}

/** A ShouldRateLimit request beyond the accepted bounds (descriptor or entry counts): gRPC INVALID_ARGUMENT. */
export class RateLimitRequestInvalid extends QuotaError {
  readonly httpStatus = 400;
  constructor(message: string) {
    super("ERR_QUOTA_RLS_REQUEST_INVALID", message);
  }
}
