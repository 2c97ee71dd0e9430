// Path globs compiled once: `*` matches exactly one non-empty segment (or part of one), `**` zero or
// more whole segments. Matching is O(path × pattern) (greedy with backtracking only to the last `**`,
// as in filters/lib/path-match.ts): attacker-chosen paths cannot trigger regex backtracking blow-ups.

export type PathMatcher = (path: string) => boolean;

type SegmentMatcher = "**" | ((segment: string) => boolean);

export function compilePathGlob(glob: string): PathMatcher {
  if (!glob.includes("*")) return (path) => path === glob;
  const segments: SegmentMatcher[] = glob.split("/").slice(1).map(compileSegment);
  const prefix = glob.slice(0, glob.indexOf("*"));
  const literalPrefix = prefix.endsWith("/") && segments.length > 0 && glob.slice(prefix.length).startsWith("**") ? prefix.slice(0, -1) : prefix;
  return (path) => {
    if (!path.startsWith(literalPrefix)) return false;
    if (path === "") return matchSegments(segments, []);
    return path.startsWith("/") && matchSegments(segments, segmentsOf(path));
  };
}

// One request's path is tried against many globs in a row (evaluation is synchronous): split it once.
let lastPath = "";
let lastSegments: readonly string[] = [];

function segmentsOf(path: string): readonly string[] {
  if (path !== lastPath) {
    lastSegments = path.split("/").slice(1);
    lastPath = path;
  }
  return lastSegments;
}

function compileSegment(seg: string): SegmentMatcher {
  if (seg === "**") return "**";
  if (seg === "*") return (s) => s.length > 0;
  if (!seg.includes("*")) return (s) => s === seg;
  const parts = seg.split("*");
  return (s) => wildcardMatch(parts, s);
}

/** Segment list matching; `**` consumes zero or more segments. */
function matchSegments(pattern: readonly SegmentMatcher[], path: readonly string[]): boolean {
  let pi = 0;
  let si = 0;
  let starPi = -1;
  let starSi = 0;
  while (si < path.length) {
    const m = pattern[pi];
    if (m === "**") {
      starPi = pi++;
      starSi = si;
      continue;
    }
    if (m !== undefined && m(path[si]!)) {
      pi++;
      si++;
      continue;
    }
    if (starPi < 0) return false;
    pi = starPi + 1;
    si = ++starSi;
  }
  while (pattern[pi] === "**") pi++;
  return pi === pattern.length;
}

/** `parts` = the segment pattern split on `*`; each `*` matches any run of characters within the segment. */
function wildcardMatch(parts: readonly string[], s: string): boolean {
  const first = parts[0]!;
  const last = parts[parts.length - 1]!;
  if (s.length < first.length + last.length || !s.startsWith(first) || !s.endsWith(last)) return false;
  let pos = first.length;
  const end = s.length - last.length;
  for (let i = 1; i < parts.length - 1; i++) {
    const at = s.indexOf(parts[i]!, pos);
    if (at < 0 || at + parts[i]!.length > end) return false;
    pos = at + parts[i]!.length;
  }
  return true;
}
