// Envoy-facing views of a token bucket: the RateLimitResponse unit that best describes a refill rate,
// and the IETF httpapi RateLimit-Policy / RateLimit (structured fields) and Retry-After headers.

export type RateLimitUnit = "SECOND" | "MINUTE" | "HOUR" | "DAY";

const UNITS: readonly (readonly [RateLimitUnit, number])[] = [
  ["SECOND", 1],
  ["MINUTE", 60],
  ["HOUR", 3600],
  ["DAY", 86400],
];

/**
 * The smallest unit in which `refillPerSecond` is a whole number of requests within 1%
 * (100/s → 100 per SECOND, 0.5/s → 30 per MINUTE); rates below 1/day round up to 1 per DAY.
 * A bucket that never refills reports its capacity per DAY.
 */
export function unitForRate(refillPerSecond: number, capacity: number): { requestsPerUnit: number; unit: RateLimitUnit } {
  if (refillPerSecond <= 0) return { requestsPerUnit: capacity, unit: "DAY" };
  for (const [unit, seconds] of UNITS) {
    const n = refillPerSecond * seconds;
    const whole = Math.round(n);
    if (whole >= 1 && Math.abs(n - whole) / n < 0.01) return { requestsPerUnit: Math.min(whole, 0xffffffff), unit };
  }
  return { requestsPerUnit: Math.min(Math.max(1, Math.round(refillPerSecond * 86400)), 0xffffffff), unit: "DAY" };
}

export interface LimitView {
  readonly name: string;
  readonly capacity: number;
  readonly refillPerSecond: number;
  readonly remaining: number;
  /** Milliseconds until full; -1 never. */
  readonly resetInMs: number;
}

/** `RateLimit-Policy: "name";q=capacity;w=seconds-to-refill-fully` and `RateLimit: "name";r=remaining;t=seconds-to-full`. */
export function rateLimitHeaders(views: readonly LimitView[], retryAfterMs: number | undefined): { key: string; value: string }[] {
  if (views.length === 0) return [];
  const policy = views.map((v) => {
    const w = v.refillPerSecond > 0 ? `;w=${Math.max(1, Math.ceil(v.capacity / v.refillPerSecond))}` : "";
    return `${sfString(v.name)};q=${v.capacity}${w}`;
  });
  const state = views.map((v) => `${sfString(v.name)};r=${v.remaining}${v.resetInMs >= 0 ? `;t=${Math.ceil(v.resetInMs / 1000)}` : ""}`);
  const headers = [
    { key: "ratelimit-policy", value: policy.join(", ") },
    { key: "ratelimit", value: state.join(", ") },
  ];
  if (retryAfterMs !== undefined && retryAfterMs >= 0) headers.push({ key: "retry-after", value: String(Math.max(1, Math.ceil(retryAfterMs / 1000))) });
  return headers;
}

/** RFC 8941 sf-string: printable ASCII with `"` and `\` escaped; other characters become `?`. */
function sfString(s: string): string {
  return `"${s.replace(/[^\x20-\x7e]/g, "?").replace(/["\\]/g, (c) => `\\${c}`)}"`;
}
