// Strict parsing of a compact JWS (RFC 7515 §7.1): exactly three parts, canonical unpadded base64url,
// JSON object header and payload. Signature verification is jwt.ts's job.
import { CredentialInvalid } from "../errors.js";

export interface CompactJws {
  readonly header: Readonly<Record<string, unknown>>;
  readonly payload: Readonly<Record<string, unknown>>;
  /** `BASE64URL(header) || '.' || BASE64URL(payload)`, the signed bytes. */
  readonly signingInput: string;
  readonly signature: Buffer;
}

const B64URL = /^[A-Za-z0-9_-]*$/;

export function looksLikeCompactJws(value: string): boolean {
  const first = value.indexOf(".");
  if (first <= 0) return false;
  const second = value.indexOf(".", first + 1);
  return second > first + 1 && value.indexOf(".", second + 1) < 0;
}

export function parseCompactJws(token: string): CompactJws {
  const parts = token.split(".");
  if (parts.length !== 3) throw malformed("a compact JWS has exactly three parts");
  const [h, p, s] = parts as [string, string, string];
  if (!h || !p) throw malformed("empty header or payload");
  const header = decodeJsonObject(h, "header");
  const payload = decodeJsonObject(p, "payload");
  return { header, payload, signingInput: token.slice(0, h.length + 1 + p.length), signature: decodeCanonical(s, "signature") };
}

function decodeJsonObject(part: string, what: string): Record<string, unknown> {
  const bytes = decodeCanonical(part, what);
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString("utf8"));
  } catch {
    throw malformed(`${what} is not JSON`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw malformed(`${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

/** Rejects padding, non-alphabet characters and non-zero trailing bits (non-canonical encodings). */
function decodeCanonical(part: string, what: string): Buffer {
  if (!B64URL.test(part) || part.length % 4 === 1) throw malformed(`${what} is not base64url`);
  const bytes = Buffer.from(part, "base64url");
  if (bytes.toString("base64url") !== part) throw malformed(`${what} is not canonical base64url`);
  return bytes;
}

function malformed(message: string): CredentialInvalid {
  return new CredentialInvalid("ERR_JWT_MALFORMED", "token_malformed", message);
}
