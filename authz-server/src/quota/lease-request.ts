// Parses and validates a `POST /v1/quota/lease` body; every rejection names the offending field.
import { LeaseRequestInvalid } from "./errors.js";

export interface LeaseRequest {
  readonly domain: string;
  readonly limit: string;
  readonly key: string;
  readonly want: number;
}

export const MAX_LEASE_BODY_BYTES = 8 * 1024;
export const MAX_WANT = 1_000_000;
const MAX_NAME_CHARS = 256;
const FIELDS = new Set(["domain", "limit", "key", "want"]);

export function parseLeaseRequest(body: Buffer): LeaseRequest {
  let value: unknown;
  try {
    value = JSON.parse(body.toString("utf8"));
  } catch {
    throw new LeaseRequestInvalid("body", "the body is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new LeaseRequestInvalid("body", "the body must be a JSON object");
  const obj = value as Record<string, unknown>;
  for (const k of Object.keys(obj)) if (!FIELDS.has(k)) throw new LeaseRequestInvalid(k, `unknown key '${k}'`);
  const name = (field: "domain" | "limit"): string => {
    const v = obj[field];
    if (typeof v !== "string" || v.length === 0 || v.length > MAX_NAME_CHARS) {
      throw new LeaseRequestInvalid(field, `${field} must be a non-empty string of at most ${MAX_NAME_CHARS} characters`);
    }
    return v;
  };
  const domain = name("domain");
  const limit = name("limit");
  if (typeof obj.key !== "string") throw new LeaseRequestInvalid("key", "key must be a string");
  const want = obj.want;
  if (typeof want !== "number" || !Number.isInteger(want) || want < 1 || want > MAX_WANT) {
    throw new LeaseRequestInvalid("want", `want must be an integer from 1 to ${MAX_WANT}`);
  }
  return { domain, limit, key: obj.key, want };
}
