// The path rule: the policy judges only paths that every upstream reads the same way. A path that a
// decoder or resolver could turn into another path (dot segments, `//`, `\`, `;` parameters, escaped
// unreserved characters, escaped `/` `\` `%` `;`, control bytes, bad escapes, escaped bytes that are
// not well-formed UTF-8) is not canonical and denied.

/** Why `path` (without query) is not canonical, or undefined when it is. "" (no path) and "*" are canonical. */
export function nonCanonicalPath(path: string): string | undefined {
  if (path === "" || path === "*") return undefined;
  if (path.charCodeAt(0) !== 0x2f) return "does not start with /";
  let segmentStart = 1;
  for (let i = 1; i <= path.length; i++) {
    const c = i < path.length ? path.charCodeAt(i) : 0x2f;
    if (c === 0x2f) {
      const n = i - segmentStart;
      if ((n === 1 || n === 2) && path.charCodeAt(segmentStart) === 0x2e && (n === 1 || path.charCodeAt(segmentStart + 1) === 0x2e)) {
        return `dot segment "${path.slice(segmentStart, i)}"`;
      }
      // Only the last segment may be empty (a trailing slash); `//` is an empty segment inside.
      if (n === 0 && i < path.length) return "empty segment (//)";
      segmentStart = i + 1;
    } else if (c === 0x5c) return "backslash";
    else if (c === 0x3b) return "path parameter (;)";
    else if (c < 0x20 || c === 0x7f) return "control character";
    else if (c === 0x25) {
      const byte = escapedByte(path, i);
      if (byte < 0) return "malformed percent-escape";
      if (isUnreserved(byte)) return `escaped unreserved character (${path.slice(i, i + 3)})`;
      if (byte === 0x2f || byte === 0x5c || byte === 0x25 || byte === 0x3b) return `escaped delimiter (${path.slice(i, i + 3)})`;
      if (byte < 0x20 || byte === 0x7f) return `escaped control character (${path.slice(i, i + 3)})`;
      if (byte >= 0x80) {
        // Escaped bytes must form well-formed UTF-8: an overlong `%c0%af` is `/` to a lenient decoder.
        const end = utf8SequenceEnd(path, i);
        if (end < 0) return `escaped bytes that are not well-formed UTF-8 (${path.slice(i, i + 12)})`;
        i = end - 1;
        continue;
      }
      i += 2;
    }
  }
  return undefined;
}

/** RFC 3986 §2.3: ALPHA / DIGIT / "-" / "." / "_" / "~" (a canonical path never escapes them). */
function isUnreserved(b: number): boolean {
  return (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e;
}

/** The byte of the escape `%XX` at `at`, or -1 when there is none (or it is malformed). */
function escapedByte(path: string, at: number): number {
  if (path.charCodeAt(at) !== 0x25) return -1;
  const hi = hexValue(path.charCodeAt(at + 1));
  const lo = hexValue(path.charCodeAt(at + 2));
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * Where the UTF-8 sequence of escapes starting at `at` (a lead byte ≥ 0x80) ends, or -1 when it is not
 * well-formed (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF).
 */
function utf8SequenceEnd(path: string, at: number): number {
  const b0 = escapedByte(path, at);
  let n: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) n = 1;
  else if (b0 >= 0xe0 && b0 <= 0xef) {
    n = 2;
    if (b0 === 0xe0) lo = 0xa0;
    if (b0 === 0xed) hi = 0x9f;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    n = 3;
    if (b0 === 0xf0) lo = 0x90;
    if (b0 === 0xf4) hi = 0x8f;
  } else return -1;
  let pos = at + 3;
  for (let k = 0; k < n; k++) {
    const b = escapedByte(path, pos);
    if (b < (k === 0 ? lo : 0x80) || b > (k === 0 ? hi : 0xbf)) return -1;
    pos += 3;
  }
  return pos;
}
