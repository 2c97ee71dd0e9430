// The quota service's lease API as the filter speaks it (docs/lease-api.md):
// POST /v1/quota/lease {"domain","limit","key","want"} → 200 {"granted","expiresInMs","resetInMs"}.
// Pure: request body encoding and strict reading of the answer.
import { JsonKind, JsonParser, JsonValue } from "../lib/json";

export const LEASE_PATH = "/v1/quota/lease";

/** The key sent to the quota service: one component as is; several joined by '|' with '%' and '|' escaped. */
export function wireKey(components: string[]): string {
  if (components.length == 1) return components[0];
  let s = "";
  for (let i = 0; i < components.length; i++) {
    if (i > 0) s += "|";
    s += components[i].replaceAll("%", "%25").replaceAll("|", "%7C");
  }
  return s;
}

export function leaseRequestBody(domain: string, limit: string, key: string, want: i64): string {
  return "{\"domain\":" + jsonString(domain) + ",\"limit\":" + jsonString(limit) + ",\"key\":" + jsonString(key) +
    ",\"want\":" + want.toString() + "}";
}

/** A JSON string literal for `s`. */
export function jsonString(s: string): string {
  let out = "\"";
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c != 0x22 && c != 0x5c) continue;
    out += s.substring(start, i);
    if (c == 0x22) out += "\\\"";
    else if (c == 0x5c) out += "\\\\";
    else if (c == 0x0a) out += "\\n";
    else out += "\\u00" + hex2(c);
    start = i + 1;
  }
  return out + s.substring(start) + "\"";
}

function hex2(c: i32): string {
  const digits = "0123456789abcdef";
  return digits.charAt((c >> 4) & 0xf) + digits.charAt(c & 0xf);
}

/** A parsed lease answer; `error` is non-null when the body is not a valid grant. */
export class LeaseAnswer {
  granted: i64 = 0;
  expiresInMs: i64 = 0;
  /** Milliseconds until the global bucket is full again; -1 = never refills. */
  resetInMs: i64 = 0;
  /** Milliseconds until one token is available (optional member `retryAfterMs`); -1 never, -2 absent. */
  retryAfterMs: i64 = -2;
  error: string | null = null;

  /** How long to wait before asking again after an empty grant (-1: unknown or never). */
  get retryHintMs(): i64 {
    if (this.retryAfterMs >= 0) return this.retryAfterMs;
    if (this.retryAfterMs == -1) return -1;
    return this.resetInMs;
  }
}

/**
 * Reads a 200 answer body. Extra members are ignored; `granted` and `expiresInMs` must be
 * non-negative integers, `resetInMs` (and `retryAfterMs` when present) integers ≥ -1.
 */
export function parseLeaseAnswer(body: string): LeaseAnswer {
  const a = new LeaseAnswer();
  const parser = new JsonParser();
  const v = parser.parse(body);
  if (v === null) {
    a.error = "malformed JSON";
    return a;
  }
  if (v.kind != JsonKind.Object) {
    a.error = "expected a JSON object";
    return a;
  }
  a.granted = field(v, "granted", 0, a);
  a.expiresInMs = field(v, "expiresInMs", 0, a);
  a.resetInMs = field(v, "resetInMs", -1, a);
  if (v.has("retryAfterMs")) a.retryAfterMs = field(v, "retryAfterMs", -1, a);
  return a;
}

function field(obj: JsonValue, name: string, min: f64, a: LeaseAnswer): i64 {
  const v = obj.get(name);
  if (v === null || v.kind != JsonKind.Number || v.num < min || v.num > 9.0e15 || Math.floor(v.num) != v.num) {
    if (a.error === null) {
      let what = "a non-negative integer";
      if (min < 0) what = "an integer ≥ -1";
      a.error = "'" + name + "' must be " + what;
    }
    return 0;
  }
  return <i64>v.num;
}
