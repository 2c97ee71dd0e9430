// Strict JSON reader for plugin configuration (RFC 8259: no comments, no trailing commas,
// no duplicate keys). Pure: parseJson(text) gives a JsonValue tree or an error naming the JSON path.

export const enum JsonKind { Null = 0, Bool = 1, Number = 2, String = 3, Array = 4, Object = 5 }

const MAX_DEPTH = 64;
/** Configuration larger than this is refused (plugin configs are small; bounds parser memory). */
export const MAX_JSON_BYTES = 1 << 20;

/** One JSON value; which fields are meaningful depends on `kind`. Object keys keep document order. */
export class JsonValue {
  kind: JsonKind = JsonKind.Null;
  bool: bool = false;
  num: f64 = 0;
  str: string = "";
  items: JsonValue[] = [];
  keys: string[] = [];
  values: JsonValue[] = [];

  /** The member named `key` of an object, or null when absent (or this is not an object). */
  get(key: string): JsonValue | null {
    for (let i = 0; i < this.keys.length; i++) {
      if (this.keys[i] == key) return this.values[i];
    }
    return null;
  }

  has(key: string): bool {
    for (let i = 0; i < this.keys.length; i++) {
      if (this.keys[i] == key) return true;
    }
    return false;
  }
}

/** Human name of a kind, for messages ("expected a string, got a number"). */
export function kindName(kind: JsonKind): string {
  switch (kind) {
    case JsonKind.Null: return "null";
    case JsonKind.Bool: return "a boolean";
    case JsonKind.Number: return "a number";
    case JsonKind.String: return "a string";
    case JsonKind.Array: return "an array";
    default: return "an object";
  }
}

/** Joins a JSON path and an object key: ("rules[2]", "match") → "rules[2].match"; ("", "rules") → "rules". */
export function childPath(path: string, key: string): string {
  if (path.length == 0) return key;
  return path + "." + key;
}

/** Joins a JSON path and an array index: ("rules", 2) → "rules[2]". */
export function indexPath(path: string, index: i32): string {
  return path + "[" + index.toString() + "]";
}

/** Parses `text`; on failure returns null and sets `error` to "<json path>: <problem> at offset N". */
export class JsonParser {
  error: string | null = null;
  private text: string = "";
  private pos: i32 = 0;

  parse(text: string): JsonValue | null {
    this.text = text;
    this.pos = 0;
    this.error = null;
    if (text.length > MAX_JSON_BYTES) {
      this.error = "configuration is larger than " + MAX_JSON_BYTES.toString() + " bytes";
      return null;
    }
    this.skipSpace();
    if (this.pos >= text.length) {
      this.error = "configuration is empty (expected a JSON object)";
      return null;
    }
    const value = this.value("", 0);
    if (value === null) return null;
    this.skipSpace();
    if (this.pos < text.length) {
      this.fail("", "unexpected trailing characters");
      return null;
    }
    return value;
  }

  private fail(path: string, problem: string): void {
    if (this.error !== null) return;
    if (path.length == 0) this.error = "(root): " + problem + " at offset " + this.pos.toString();
    else this.error = path + ": " + problem + " at offset " + this.pos.toString();
  }

  private skipSpace(): void {
    const text = this.text;
    while (this.pos < text.length) {
      const c = text.charCodeAt(this.pos);
      if (c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d) this.pos++;
      else break;
    }
  }

  private value(path: string, depth: i32): JsonValue | null {
    if (depth > MAX_DEPTH) {
      this.fail(path, "nesting deeper than " + MAX_DEPTH.toString());
      return null;
    }
    this.skipSpace();
    if (this.pos >= this.text.length) {
      this.fail(path, "unexpected end of input");
      return null;
    }
    const c = this.text.charCodeAt(this.pos);
    if (c == 0x7b) return this.object(path, depth);
    if (c == 0x5b) return this.array(path, depth);
    if (c == 0x22) {
      const s = this.string(path);
      if (s === null) return null;
      const v = new JsonValue();
      v.kind = JsonKind.String;
      v.str = s;
      return v;
    }
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return this.number(path);
    if (this.literal("true")) return boolValue(true);
    if (this.literal("false")) return boolValue(false);
    if (this.literal("null")) return new JsonValue();
    this.fail(path, "unexpected character '" + String.fromCharCode(c) + "'");
    return null;
  }

  private literal(word: string): bool {
    const end = this.pos + word.length;
    if (end > this.text.length) return false;
    if (this.text.substring(this.pos, end) != word) return false;
    this.pos = end;
    return true;
  }

  private object(path: string, depth: i32): JsonValue | null {
    const v = new JsonValue();
    v.kind = JsonKind.Object;
    this.pos++; // {
    this.skipSpace();
    if (this.peek() == 0x7d) {
      this.pos++;
      return v;
    }
    while (true) {
      this.skipSpace();
      if (this.peek() != 0x22) {
        this.fail(path, "expected a string key");
        return null;
      }
      const key = this.string(path);
      if (key === null) return null;
      const keyPath = childPath(path, key);
      if (v.has(key)) {
        this.fail(keyPath, "duplicate key");
        return null;
      }
      this.skipSpace();
      if (this.peek() != 0x3a) {
        this.fail(keyPath, "expected ':'");
        return null;
      }
      this.pos++;
      const member = this.value(keyPath, depth + 1);
      if (member === null) return null;
      v.keys.push(key);
      v.values.push(member);
      this.skipSpace();
      const c = this.peek();
      if (c == 0x2c) {
        this.pos++;
        continue;
      }
      if (c == 0x7d) {
        this.pos++;
        return v;
      }
      this.fail(path, "expected ',' or '}'");
      return null;
    }
  }

  private array(path: string, depth: i32): JsonValue | null {
    const v = new JsonValue();
    v.kind = JsonKind.Array;
    this.pos++; // [
    this.skipSpace();
    if (this.peek() == 0x5d) {
      this.pos++;
      return v;
    }
    while (true) {
      const item = this.value(indexPath(path, v.items.length), depth + 1);
      if (item === null) return null;
      v.items.push(item);
      this.skipSpace();
      const c = this.peek();
      if (c == 0x2c) {
        this.pos++;
        continue;
      }
      if (c == 0x5d) {
        this.pos++;
        return v;
      }
      this.fail(path, "expected ',' or ']'");
      return null;
    }
  }

  private peek(): i32 {
    return this.pos < this.text.length ? this.text.charCodeAt(this.pos) : -1;
  }

  private string(path: string): string | null {
    const text = this.text;
    this.pos++; // opening quote
    let out = "";
    let runStart = this.pos;
    while (true) {
      if (this.pos >= text.length) {
        this.fail(path, "unterminated string");
        return null;
      }
      const c = text.charCodeAt(this.pos);
      if (c == 0x22) {
        out += text.substring(runStart, this.pos);
        this.pos++;
        return out;
      }
      if (c < 0x20) {
        this.fail(path, "control character in string");
        return null;
      }
      if (c != 0x5c) {
        this.pos++;
        continue;
      }
      out += text.substring(runStart, this.pos);
      this.pos++;
      if (this.pos >= text.length) {
        this.fail(path, "unterminated string");
        return null;
      }
      const e = text.charCodeAt(this.pos);
      this.pos++;
      if (e == 0x22) out += "\"";
      else if (e == 0x5c) out += "\\";
      else if (e == 0x2f) out += "/";
      else if (e == 0x62) out += "\b";
      else if (e == 0x66) out += "\f";
      else if (e == 0x6e) out += "\n";
      else if (e == 0x72) out += "\r";
      else if (e == 0x74) out += "\t";
      else if (e == 0x75) {
        const unit = this.hex4();
        if (unit < 0) {
          this.fail(path, "invalid \\u escape");
          return null;
        }
        out += String.fromCharCode(unit);
      } else {
        this.pos--;
        this.fail(path, "invalid escape '\\" + String.fromCharCode(e) + "'");
        return null;
      }
      runStart = this.pos;
    }
  }

  private hex4(): i32 {
    if (this.pos + 4 > this.text.length) return -1;
    let unit = 0;
    for (let i = 0; i < 4; i++) {
      const c = this.text.charCodeAt(this.pos + i);
      let d: i32;
      if (c >= 0x30 && c <= 0x39) d = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) d = c - 0x61 + 10;
      else if (c >= 0x41 && c <= 0x46) d = c - 0x41 + 10;
      else return -1;
      unit = (unit << 4) | d;
    }
    this.pos += 4;
    return unit;
  }

  private number(path: string): JsonValue | null {
    const text = this.text;
    const start = this.pos;
    if (this.peek() == 0x2d) this.pos++;
    const first = this.peek();
    if (first == 0x30) {
      this.pos++;
    } else if (first >= 0x31 && first <= 0x39) {
      while (isDigit(this.peek())) this.pos++;
    } else {
      this.fail(path, "invalid number");
      return null;
    }
    if (this.peek() == 0x2e) {
      this.pos++;
      if (!isDigit(this.peek())) {
        this.fail(path, "invalid number");
        return null;
      }
      while (isDigit(this.peek())) this.pos++;
    }
    const e = this.peek();
    if (e == 0x65 || e == 0x45) {
      this.pos++;
      const sign = this.peek();
      if (sign == 0x2b || sign == 0x2d) this.pos++;
      if (!isDigit(this.peek())) {
        this.fail(path, "invalid number");
        return null;
      }
      while (isDigit(this.peek())) this.pos++;
    }
    const v = new JsonValue();
    v.kind = JsonKind.Number;
    v.num = parseFloat(text.substring(start, this.pos));
    return v;
  }
}

function isDigit(c: i32): bool {
  return c >= 0x30 && c <= 0x39;
}

function boolValue(b: bool): JsonValue {
  const v = new JsonValue();
  v.kind = JsonKind.Bool;
  v.bool = b;
  return v;
}
