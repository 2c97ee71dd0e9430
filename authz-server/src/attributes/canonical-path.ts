// The path rule: the policy judges only paths that every upstream reads the same way. A path that a
// decoder or resolver could turn into another path (dot segments, `//`, `\`, `;` parameters, escaped
// unreserved characters, escaped `/` `\` `%` `;`, control bytes, bad escapes) is not canonical and denied.

/** Why `path` (without query) is not canonical, or undefined when it is. "" (no path) and "*" are canonical. */
export function nonCanonicalPath(path: string): string | undefined {
  if (path === "" || path === "*") return undefined;
  if (path.charCodeAt(0) !== 0x2f) return "does not start with /";
  let segmentStart = 1;
  for (let i = 1; i <= path.length; i++) {
    const c = i < path.length ? path.charCodeAt(i) : 0x2f;
    if (c === 0x2f) {
      const seg = path.slice(segmentStart, i);
      if (seg === "." || seg === "..") return `dot segment "${seg}"`;
      // Only the last segment may be empty (a trailing slash); `//` is an empty segment inside.
      if (seg === "" && i < path.length) return "empty segment (//)";
      segmentStart = i + 1;
    } else if (c === 0x5c) return "backslash";
    else if (c === 0x3b) return "path parameter (;)";
    else if (c < 0x20 || c === 0x7f) return "control character";
    else if (c === 0x25) {
      const byte = parseInt(path.slice(i + 1, i + 3), 16);
      if (!/^[0-9a-fA-F]{2}$/.test(path.slice(i + 1, i + 3))) return "malformed percent-escape";
      if (isUnreserved(byte)) return `escaped unreserved character (${path.slice(i, i + 3)})`;
      if (byte === 0x2f || byte === 0x5c || byte === 0x25 || byte === 0x3b) return `escaped delimiter (${path.slice(i, i + 3)})`;
      if (byte < 0x20 || byte === 0x7f) return `escaped control character (${path.slice(i, i + 3)})`;
      i += 2;
    }
  }
  return undefined;
}

/** RFC 3986 §2.3: ALPHA / DIGIT / "-" / "." / "_" / "~" (a canonical path never escapes them). */
function isUnreserved(b: number): boolean {
  return (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e;
}
