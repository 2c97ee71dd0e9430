// Rate-limit response fields: IETF httpapi RateLimit-Policy / RateLimit in the structured-field
// form of draft-ietf-httpapi-ratelimit-headers-10/11 (`"name";q=100;w=2`, `"name";r=0;t=1`),
// Retry-After and the JSON body of a 429. Pure; limit names are [A-Za-z0-9._-] so need no escaping.

/** `"name";q=<capacity>;w=<window s>` (w omitted when the limit never refills). */
export function policyField(name: string, quota: i64, windowSeconds: i64): string {
  let s = "\"" + name + "\";q=" + quota.toString();
  if (windowSeconds >= 0) s += ";w=" + windowSeconds.toString();
  return s;
}

/** `"name";r=<remaining>;t=<reset s>` (t omitted when unknown or never). */
export function rateLimitField(name: string, remaining: i64, resetSeconds: i64): string {
  let s = "\"" + name + "\";r=" + remaining.toString();
  if (resetSeconds >= 0) s += ";t=" + resetSeconds.toString();
  return s;
}

/** The 429 body. */
export function limitedBody(name: string, retryAfterSeconds: i64): string {
  let s = "{\"error\":\"rate_limited\",\"limit\":\"" + name + "\"";
  if (retryAfterSeconds >= 0) s += ",\"retryAfterSeconds\":" + retryAfterSeconds.toString();
  return s + "}";
}

/** The 503 body when a global limit's lease cannot be had and failureMode is deny. */
export function unavailableBody(name: string): string {
  return "{\"error\":\"rate_limiter_unavailable\",\"limit\":\"" + name + "\"}";
}

/** "Near the limit": at most a tenth of the capacity left. */
export function nearLimit(remaining: i64, capacity: i64): bool {
  return remaining * 10 <= capacity;
}
