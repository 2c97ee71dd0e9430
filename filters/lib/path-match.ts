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

  /** `path` must already be stripped of its query (see `stripQuery`). */
  matches(path: string): bool {
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
