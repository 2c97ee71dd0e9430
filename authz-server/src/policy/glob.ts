// Path globs compiled once: `*` matches exactly one non-empty segment (or part of one), `**` zero or
// more whole segments. Literal globs compare by equality; others check their literal prefix first.

export type PathMatcher = (path: string) => boolean;

export function compilePathGlob(glob: string): PathMatcher {
  if (!glob.includes("*")) return (path) => path === glob;
  const segments = glob.split("/").slice(1);
  let re = "^";
  segments.forEach((seg, i) => {
    const last = i === segments.length - 1;
    if (seg === "**") {
      // zero or more segments: "/a/**" matches "/a", "/a/", "/a/b/c"
      re += last ? "(?:/.*)?" : "(?:/[^/]*)*?";
    } else if (seg === "*") {
      re += "/[^/]+";
    } else {
      re += "/" + seg.split("*").map(escapeRegExp).join("[^/]*");
    }
  });
  const regex = new RegExp(re + "$");
  const prefix = glob.slice(0, glob.indexOf("*"));
  const literalPrefix = prefix.endsWith("/") && segments.length > 0 && glob.slice(prefix.length).startsWith("**") ? prefix.slice(0, -1) : prefix;
  return (path) => path.startsWith(literalPrefix) && regex.test(path);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
