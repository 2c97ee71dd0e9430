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
  const text = bytes.toString("utf8");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw malformed(`${what} is not JSON`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw malformed(`${what} is not a JSON object`);
  if (hasDuplicateMember(text)) throw malformed(`${what} repeats a member name`);
  return value as Record<string, unknown>;
}

/**
 * True when some JSON object in `text` (already valid JSON) repeats a member name, compared after
 * unescaping ("a" and "\u0061" are the same name). RFC 7515 §4 lets recipients reject such JWSs; we do,
 * so that no other parser (a first-wins upstream) can read different claims than we verified.
 */
function hasDuplicateMember(text: string): boolean {
  const stack: (Set<string> | null)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      let j = i + 1;
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c ? 2 : 1;
      const members = stack[stack.length - 1];
      if (expectKey && members) {
        const raw = text.slice(i + 1, j);
        const name = raw.includes("\\") ? (JSON.parse(`"${raw}"`) as string) : raw;
        if (members.has(name)) return true;
        members.add(name);
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b) {
      stack.push(new Set());
      expectKey = true;
    } else if (c === 0x5b) {
      stack.push(null);
      expectKey = false;
    } else if (c === 0x7d || c === 0x5d) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c) {
      expectKey = stack.length > 0 && stack[stack.length - 1] !== null;
    }
  }
  return false;
}

/** Rejects padding, non-alphabet characters and non-zero trailing bits (non-canonical encodings). */
function decodeCanonical(part: string, what: string): Buffer {
  if (!B64URL.test(part) || part.length % 4 === 1) throw malformed(`${what} is not base64url`);
  const bytes = Buffer.from(part, "base64url");
  if (bytes.toString("base64url") !== part) throw malformed(`${what} is not canonical base64url`);
  return bytes;
}

function malformed(message: string): CredentialInvalid {
  return new CredentialInvalid("ERR_JWT_MALFORMED", message);
}
