// Path matchers: exact, prefix and segment globs ("*" = exactly one non-empty segment,
// "**" = zero or more segments). They see the path without its query string. Pure.

export const enum PathMatchKind { Exact = 0, Prefix = 1, Glob = 2 }

export const PATH_MATCH_KEYS: string[] = ["exact", "prefix", "glob"];

export class PathMatcher {
  /** Glob pattern split on "/" after the leading slash ("/a/*" → ["a", "*"]). */
  private segments: string[] = [];

  constructor(public kind: PathMatchKind, public pattern: string) {
    if (kind == PathMatchKind.Glob) this.segments = pattern.substring(1).split("/");
  }

  /**
   * `path` must already be stripped of its query (see `stripQuery`). A non-canonical path (see
   * `isCanonicalPath`) matches no path matcher: `/api/../admin` must not be routed as `/api/`.
   */
  matches(path: string): bool {
    if (!isCanonicalPath(path)) return false;
    if (this.kind == PathMatchKind.Exact) return path == this.pattern;
    if (this.kind == PathMatchKind.Prefix) return path.startsWith(this.pattern);
    return globMatch(this.segments, path);
  }
}

/**
 * Why a glob pattern is invalid, or null when it is valid: it must start with "/", and each
 * segment is "*", "**" or a literal without "*".
 */
export function globProblem(pattern: string): string | null {
  if (!pattern.startsWith("/")) return "must start with '/'";
  const segments = pattern.substring(1).split("/");
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i];
    if (s != "*" && s != "**" && s.includes("*")) return "segment '" + s + "': '*' and '**' must be whole segments";
  }
  return null;
}

/**
 * The path rule shared with authz-server (docs/security.md): canonical = starts with "/", no "." or
 * ".." segment, no empty segment except a trailing slash, no "\\", no ";", well-formed escapes only,
 * and never an escaped unreserved character, "/", "\\", "%", ";" or control byte.
 */
export function isCanonicalPath(path: string): bool {
  const len = path.length;
  if (len == 0 || path.charCodeAt(0) != 0x2f) return false;
  let segStart = 1;
  for (let i = 1; i <= len; i++) {
    const c = i < len ? path.charCodeAt(i) : 0x2f;
    if (c == 0x2f) {
      const n = i - segStart;
      if (n == 0 && i < len) return false;
      if (n == 1 && path.charCodeAt(segStart) == 0x2e) return false;
      if (n == 2 && path.charCodeAt(segStart) == 0x2e && path.charCodeAt(segStart + 1) == 0x2e) return false;
      segStart = i + 1;
    } else if (c == 0x5c || c == 0x3b || c < 0x20 || c == 0x7f) {
      return false;
    } else if (c == 0x25) {
      if (i + 2 >= len) return false;
      const hi = hexValue(path.charCodeAt(i + 1));
      const lo = hexValue(path.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) return false;
      const b = hi * 16 + lo;
      if (isUnreservedByte(b) || b == 0x2f || b == 0x5c || b == 0x25 || b == 0x3b || b < 0x20 || b == 0x7f) return false;
      if (b >= 0x80) {
        const end = utf8SequenceEnd(path, i);
        if (end < 0) return false;
        i = end - 1;
        continue;
      }
      i += 2;
    }
  }
  return true;
}

function escapedByte(path: string, at: i32): i32 {
  if (at + 2 >= path.length || path.charCodeAt(at) != 0x25) return -1;
  const hi = hexValue(path.charCodeAt(at + 1));
  const lo = hexValue(path.charCodeAt(at + 2));
  if (hi < 0 || lo < 0) return -1;
  return hi * 16 + lo;
}

/** End of the well-formed UTF-8 sequence of escapes starting at `at`, or -1 (no overlongs, surrogates, > U+10FFFF). */
function utf8SequenceEnd(path: string, at: i32): i32 {
  const b0 = escapedByte(path, at);
  let n = 0;
  let lo = 0x80;
  let hi = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    n = 1;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    n = 2;
    if (b0 == 0xe0) lo = 0xa0;
    if (b0 == 0xed) hi = 0x9f;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    n = 3;
    if (b0 == 0xf0) lo = 0x90;
    if (b0 == 0xf4) hi = 0x8f;
  } else {
    return -1;
  }
  let pos = at + 3;
  for (let k = 0; k < n; k++) {
    const b = escapedByte(path, pos);
    const min = k == 0 ? lo : 0x80;
    const max = k == 0 ? hi : 0xbf;
    if (b < min || b > max) return -1;
    pos += 3;
  }
  return pos;
}

function hexValue(c: i32): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

function isUnreservedByte(b: i32): bool {
  return (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b == 0x2d || b == 0x2e || b == 0x5f || b == 0x7e;
}

/** The path part of a request target: everything before the first "?" or "#". */
export function stripQuery(path: string): string {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c == 0x3f || c == 0x23) return path.substring(0, i);
  }
  return path;
}

/**
 * Segment wildcard matching in O(segments × pattern) time: the classic greedy algorithm that
 * backtracks only to the last "**", so attacker-chosen paths cannot cause exponential work.
 */
function globMatch(segments: string[], path: string): bool {
  if (path.length == 0 || path.charCodeAt(0) != 0x2f) return false;
  const len = path.length;
  const n = segments.length;
  let si = 0;
  let pos = 1; // start of the current path segment; len + 1 once all segments are consumed
  let starSi = -1;
  let starPos = 0;
  while (pos <= len) {
    if (si < n) {
      const seg = segments[si];
      if (seg == "**") {
        starSi = si;
        starPos = pos;
        si++;
        continue;
      }
      const end = segmentEnd(path, pos);
      if (segmentMatches(seg, path, pos, end)) {
        si++;
        pos = end + 1;
        continue;
      }
    }
    if (starSi < 0) return false;
    si = starSi + 1;
    starPos = segmentEnd(path, starPos) + 1;
    pos = starPos;
  }
  while (si < n && segments[si] == "**") si++;
  return si == n;
}

function segmentEnd(path: string, pos: i32): i32 {
  const slash = path.indexOf("/", pos);
  return slash < 0 ? path.length : slash;
}

function segmentMatches(seg: string, path: string, start: i32, end: i32): bool {
  const len = end - start;
  if (seg == "*") return len > 0;
  if (seg.length != len) return false;
  for (let i = 0; i < len; i++) {
    if (seg.charCodeAt(i) != path.charCodeAt(start + i)) return false;
  }
  return true;
}
