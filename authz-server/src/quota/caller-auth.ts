// Who may take quota: with a shared bearer token configured, the lease API and the RateLimitService
// answer only callers that present it (the rate-limit filter, Envoy's ratelimit filter); compared in
// constant time. Without one they are open, and the server says so at startup.
import { createHash, timingSafeEqual } from "node:crypto";

export const MIN_QUOTA_TOKEN_LENGTH = 16;

/** A check of an `authorization` header value, or undefined when no token is configured (open). */
export type CallerCheck = (authorization: string | undefined) => boolean;

export function createCallerCheck(token: string | undefined): CallerCheck | undefined {
  if (token === undefined) return undefined;
  if (token.length < MIN_QUOTA_TOKEN_LENGTH) throw new Error(`the quota token must be at least ${MIN_QUOTA_TOKEN_LENGTH} characters`);
  const want = createHash("sha256").update(token).digest();
  return (authorization) => {
    const m = /^Bearer (.+)$/i.exec(authorization ?? "");
    if (!m) return false;
    return timingSafeEqual(createHash("sha256").update(m[1]!.trim()).digest(), want);
  };
}
