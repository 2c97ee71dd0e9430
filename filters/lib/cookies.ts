// Cookie header parsing (RFC 6265 "name=value; name2=value2"): look up one cookie by name.
// Surrounding double quotes of a value are removed; the first occurrence wins. Pure.

/** The value of cookie `name` in one Cookie header value, or null when absent. */
export function cookieValue(header: string, name: string): string | null {
  let start = 0;
  const len = header.length;
  while (start < len) {
    let semi = header.indexOf(";", start);
    if (semi < 0) semi = len;
    let a = start;
    while (a < semi && isSpace(header.charCodeAt(a))) a++;
    const eq = header.indexOf("=", a);
    if (eq >= 0 && eq < semi) {
      let nameEnd = eq;
      while (nameEnd > a && isSpace(header.charCodeAt(nameEnd - 1))) nameEnd--;
      if (nameEnd - a == name.length && header.substring(a, nameEnd) == name) {
        let vs = eq + 1;
        let ve = semi;
        while (vs < ve && isSpace(header.charCodeAt(vs))) vs++;
        while (ve > vs && isSpace(header.charCodeAt(ve - 1))) ve--;
        if (ve - vs >= 2 && header.charCodeAt(vs) == 0x22 && header.charCodeAt(ve - 1) == 0x22) {
          vs++;
          ve--;
        }
        return header.substring(vs, ve);
      }
    }
    start = semi + 1;
  }
  return null;
}

function isSpace(c: i32): bool {
  return c == 0x20 || c == 0x09;
}
