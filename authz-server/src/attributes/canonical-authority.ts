// The host rule: host-scoped rules see one spelling of each authority. Lower-case, one trailing dot
// dropped, the port kept apart; userinfo, extra colons, bad ports and odd characters are refused.

export type AuthorityResult = { readonly host: string } | { readonly problem: string };

const LABELS = /^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/;
const IPV6 = /^\[[0-9a-f:.]+\]$/;

// Consecutive Checks mostly carry the same authority: remember the last answer.
let lastRaw = "";
let lastResult: AuthorityResult = { host: "" };

/** `Internal.Example.com.:443` → `internal.example.com:443`; "" stays "" (no authority). */
export function canonicalAuthority(raw: string): AuthorityResult {
  if (raw !== lastRaw) {
    lastResult = canonicalAuthorityUncached(raw);
    lastRaw = raw;
  }
  return lastResult;
}

function canonicalAuthorityUncached(raw: string): AuthorityResult {
  if (raw === "") return { host: "" };
  const a = raw.toLowerCase();
  if (a.includes("@")) return { problem: "userinfo in the authority" };
  let name: string;
  let port = "";
  if (a.startsWith("[")) {
    const end = a.indexOf("]");
    if (end < 0) return { problem: "unterminated IPv6 literal" };
    name = a.slice(0, end + 1);
    const rest = a.slice(end + 1);
    if (rest !== "" && !rest.startsWith(":")) return { problem: "junk after the IPv6 literal" };
    port = rest.slice(1);
    if (rest !== "" && port === "") return { problem: "empty port" };
    if (!IPV6.test(name)) return { problem: "malformed IPv6 literal" };
  } else {
    const colon = a.indexOf(":");
    if (colon >= 0 && a.indexOf(":", colon + 1) >= 0) return { problem: "more than one ':' in the authority" };
    name = colon < 0 ? a : a.slice(0, colon);
    if (colon >= 0) {
      port = a.slice(colon + 1);
      if (port === "") return { problem: "empty port" };
    }
    if (name.endsWith(".")) name = name.slice(0, -1);
    if (!LABELS.test(name)) return { problem: "malformed host name" };
  }
  if (port !== "" && !(/^[0-9]{1,5}$/.test(port) && Number(port) <= 65535)) return { problem: "malformed port" };
  return { host: port === "" ? name : `${name}:${port}` };
}
