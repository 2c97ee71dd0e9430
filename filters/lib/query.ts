// Query-string parsing: look up one parameter of a request target ("/p?a=1&b=2"). Names and
// values are percent-decoded ("+" is a space); the first occurrence wins; "?flag" has value "". Pure.

/** The decoded value of parameter `name` in the query of `target`, or null when absent. */
export function queryParam(target: string, name: string): string | null {
  let start = target.indexOf("?");
  if (start < 0) return null;
  start++;
  let end = target.indexOf("#", start);
  if (end < 0) end = target.length;
  while (start < end) {
    let amp = target.indexOf("&", start);
    if (amp < 0 || amp > end) amp = end;
    let eq = target.indexOf("=", start);
    if (eq < 0 || eq > amp) eq = -1;
    const nameEnd = eq < 0 ? amp : eq;
    if (nameEnd > start && componentEquals(target, start, nameEnd, name)) {
      if (eq < 0) return "";
      return percentDecode(target.substring(eq + 1, amp));
    }
    start = amp + 1;
  }
  return null;
}

function componentEquals(s: string, start: i32, end: i32, name: string): bool {
  const raw = s.substring(start, end);
  return needsDecoding(raw) ? percentDecode(raw) == name : raw == name;
}

function needsDecoding(s: string): bool {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x25 || c == 0x2b) return true;
  }
  return false;
}

/** Decodes %XX escapes (as UTF-8) and "+" as space; malformed escapes are kept verbatim. */
export function percentDecode(s: string): string {
  if (!needsDecoding(s)) return s;
  const bytes = new Uint8Array(s.length * 3);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x2b) {
      bytes[n++] = 0x20;
      continue;
    }
    if (c == 0x25 && i + 2 < s.length && hexValue(s.charCodeAt(i + 1)) >= 0 && hexValue(s.charCodeAt(i + 2)) >= 0) {
      bytes[n++] = <u8>((hexValue(s.charCodeAt(i + 1)) << 4) | hexValue(s.charCodeAt(i + 2)));
      i += 2;
      continue;
    }
    if (c < 0x80) {
      bytes[n++] = <u8>c;
    } else {
      const encoded = Uint8Array.wrap(String.UTF8.encode(s.charAt(i)));
      for (let j = 0; j < encoded.length; j++) bytes[n++] = encoded[j];
    }
  }
  return String.UTF8.decodeUnsafe(bytes.dataStart, n);
}

function hexValue(c: i32): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}
