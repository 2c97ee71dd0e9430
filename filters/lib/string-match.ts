// String matchers shared by header, query-parameter and cookie conditions:
// exact / prefix / suffix / contains / present / absent. Pure.

export const enum StringMatchKind { Exact = 0, Prefix = 1, Suffix = 2, Contains = 3, Present = 4, Absent = 5 }

/** The JSON keys naming each kind, in `StringMatchKind` order. */
export const STRING_MATCH_KEYS: string[] = ["exact", "prefix", "suffix", "contains", "present", "absent"];

export class StringMatcher {
  /** `value` as UTF-8, for matching header bytes in place. */
  private bytes: ArrayBuffer;

  constructor(public kind: StringMatchKind, public value: string) {
    this.bytes = String.UTF8.encode(value);
  }

  /** Like `matches` on the UTF-8 bytes [ptr, ptr+len) of a present value (no decoding). */
  matchesBytes(ptr: usize, len: usize): bool {
    const kind = this.kind;
    if (kind == StringMatchKind.Present) return true;
    if (kind == StringMatchKind.Absent) return false;
    const op = changetype<usize>(this.bytes);
    const n = <usize>this.bytes.byteLength;
    if (kind == StringMatchKind.Exact) return len == n && memory.compare(ptr, op, n) == 0;
    if (n > len) return false;
    if (kind == StringMatchKind.Prefix) return memory.compare(ptr, op, n) == 0;
    if (kind == StringMatchKind.Suffix) return memory.compare(ptr + len - n, op, n) == 0;
    for (let i: usize = 0; i + n <= len; i++) {
      if (memory.compare(ptr + i, op, n) == 0) return true;
    }
    return false;
  }

  /** `actual` is the value found in the request, or null when the item is missing. */
  matches(actual: string | null): bool {
    if (this.kind == StringMatchKind.Absent) return actual === null;
    if (actual === null) return false;
    const a: string = actual;
    switch (this.kind) {
      case StringMatchKind.Exact: return a == this.value;
      case StringMatchKind.Prefix: return a.startsWith(this.value);
      case StringMatchKind.Suffix: return a.endsWith(this.value);
      case StringMatchKind.Contains: return a.includes(this.value);
      default: return true; // Present
    }
  }
}
