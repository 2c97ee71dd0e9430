// Validation helpers for JSON plugin configuration: typed field access that records the first
// problem as "<json path>: <problem>" (e.g. "rules[2].match.path.prefix: expected a string").
// AssemblyScript 0.17 cannot catch exceptions, so errors are collected, not thrown.
import { JsonKind, JsonValue, childPath, indexPath, kindName } from "./json";

export class ConfigReader {
  /** The first problem found, or null while the configuration is valid so far. */
  error: string | null = null;

  get ok(): bool {
    return this.error === null;
  }

  /** Records a problem at `path` (only the first one is kept). */
  fail(path: string, problem: string): void {
    if (this.error !== null) return;
    if (path.length == 0) this.error = "(root): " + problem;
    else this.error = path + ": " + problem;
  }

  /** `value` must be an object whose keys are all in `allowed`; unknown keys are errors. */
  object(value: JsonValue | null, path: string, allowed: string[]): JsonValue | null {
    if (value === null) return null;
    if (value.kind != JsonKind.Object) {
      this.fail(path, "expected an object, got " + kindName(value.kind));
      return null;
    }
    for (let i = 0; i < value.keys.length; i++) {
      const key = value.keys[i];
      if (!allowed.includes(key)) {
        this.fail(childPath(path, key), "unknown key (allowed: " + allowed.join(", ") + ")");
        return null;
      }
    }
    return value;
  }

  /** Member `key` of `obj`; when `required` and absent, records "<path>.<key>: required". */
  member(obj: JsonValue, path: string, key: string, required: bool): JsonValue | null {
    const v = obj.get(key);
    if (v === null && required) this.fail(childPath(path, key), "required");
    return v;
  }

  /** A string member (absent → `fallback`, or an error when `required`). */
  string(obj: JsonValue, path: string, key: string, required: bool, fallback: string = ""): string {
    const v = this.member(obj, path, key, required);
    if (v === null) return fallback;
    if (v.kind != JsonKind.String) {
      this.fail(childPath(path, key), "expected a string, got " + kindName(v.kind));
      return fallback;
    }
    return v.str;
  }

  /** A non-empty string member. */
  nonEmptyString(obj: JsonValue, path: string, key: string, required: bool, fallback: string = ""): string {
    const v = obj.get(key);
    const s = this.string(obj, path, key, required, fallback);
    if (v !== null && this.ok && s.length == 0) this.fail(childPath(path, key), "must not be empty");
    return s;
  }

  /** A boolean member. */
  bool(obj: JsonValue, path: string, key: string, required: bool, fallback: bool = false): bool {
    const v = this.member(obj, path, key, required);
    if (v === null) return fallback;
    if (v.kind != JsonKind.Bool) {
      this.fail(childPath(path, key), "expected a boolean, got " + kindName(v.kind));
      return fallback;
    }
    return v.bool;
  }

  /** A number member within [min, max]; with `integer`, it must be whole. */
  number(obj: JsonValue, path: string, key: string, required: bool, fallback: f64, min: f64, max: f64, integer: bool): f64 {
    const v = this.member(obj, path, key, required);
    if (v === null) return fallback;
    const p = childPath(path, key);
    if (v.kind != JsonKind.Number) {
      this.fail(p, "expected a number, got " + kindName(v.kind));
      return fallback;
    }
    if (integer && Math.floor(v.num) != v.num) {
      this.fail(p, "expected an integer");
      return fallback;
    }
    if (v.num < min || v.num > max) {
      this.fail(p, "must be between " + formatNumber(min) + " and " + formatNumber(max));
      return fallback;
    }
    return v.num;
  }

  /** An array member (absent → empty array, or an error when `required`). */
  array(obj: JsonValue, path: string, key: string, required: bool): JsonValue[] {
    const v = this.member(obj, path, key, required);
    if (v === null) return [];
    if (v.kind != JsonKind.Array) {
      this.fail(childPath(path, key), "expected an array, got " + kindName(v.kind));
      return [];
    }
    return v.items;
  }

  /** An array of strings member. */
  stringArray(obj: JsonValue, path: string, key: string, required: bool): string[] {
    const items = this.array(obj, path, key, required);
    const out = new Array<string>();
    const p = childPath(path, key);
    for (let i = 0; i < items.length; i++) {
      if (items[i].kind != JsonKind.String) {
        this.fail(indexPath(p, i), "expected a string, got " + kindName(items[i].kind));
        return out;
      }
      out.push(items[i].str);
    }
    return out;
  }

  /** Exactly one of `keys` must be present in `obj`; returns it, or "" after recording an error. */
  oneOf(obj: JsonValue, path: string, keys: string[]): string {
    let found = "";
    for (let i = 0; i < keys.length; i++) {
      if (!obj.has(keys[i])) continue;
      if (found.length != 0) {
        this.fail(path, "'" + found + "' and '" + keys[i] + "' are mutually exclusive");
        return "";
      }
      found = keys[i];
    }
    if (found.length == 0) this.fail(path, "expected one of: " + keys.join(", "));
    return found;
  }
}

function formatNumber(n: f64): string {
  if (Math.floor(n) == n && Math.abs(n) < 9007199254740992) return (<i64>n).toString();
  return n.toString();
}
