// Compiled request conditions ("match" blocks) shared by the filters: path, methods, headers,
// query parameters and cookies; all present conditions must hold. Parsing reports the JSON path
// of the first wrong field. Pure.
import { ConfigReader } from "./config-reader";
import { JsonKind, JsonValue, childPath, indexPath, kindName } from "./json";
import { PATH_MATCH_KEYS, PathMatchKind, PathMatcher, globProblem } from "./path-match";
import { RequestView } from "./request-view";
import { STRING_MATCH_KEYS, StringMatchKind, StringMatcher } from "./string-match";

/** A condition on one named item (header, query parameter or cookie). */
export class ItemCondition {
  /** For headers: the lower-cased name's UTF-8 bytes. */
  nameBytes: ArrayBuffer;

  constructor(public name: string, public matcher: StringMatcher) {
    this.nameBytes = String.UTF8.encode(name);
  }
}

export class RequestMatch {
  path: PathMatcher | null = null;
  /** Upper-case method names; empty = any method. */
  methods: string[] = [];
  headers: ItemCondition[] = [];
  query: ItemCondition[] = [];
  cookies: ItemCondition[] = [];

  matches(req: RequestView): bool {
    const path = this.path;
    if (path !== null && !path.matches(req.path())) return false;
    if (this.methods.length > 0 && !this.methods.includes(req.method())) return false;
    const headers = this.headers;
    for (let i = 0; i < headers.length; i++) {
      const c = unchecked(headers[i]);
      if (req.find(c.nameBytes)) {
        if (!c.matcher.matchesBytes(req.foundPtr, req.foundLen)) return false;
      } else if (!c.matcher.matches(null)) return false;
    }
    const query = this.query;
    for (let i = 0; i < query.length; i++) {
      const c = unchecked(query[i]);
      if (!c.matcher.matches(req.query(c.name))) return false;
    }
    const cookies = this.cookies;
    for (let i = 0; i < cookies.length; i++) {
      const c = unchecked(cookies[i]);
      if (!c.matcher.matches(req.cookie(c.name))) return false;
    }
    return true;
  }
}

export const MATCH_KEYS: string[] = ["path", "methods", "headers", "query", "cookies"];

/** Parses a "match" object (null/absent = match everything). */
export function parseRequestMatch(r: ConfigReader, value: JsonValue | null, path: string): RequestMatch {
  const m = new RequestMatch();
  const obj = r.object(value, path, MATCH_KEYS);
  if (obj === null) return m;
  const p = obj.get("path");
  if (p !== null) m.path = parsePathMatcher(r, p, childPath(path, "path"));
  const methods = r.stringArray(obj, path, "methods", false);
  for (let i = 0; i < methods.length; i++) {
    const method = methods[i];
    if (!isToken(method)) {
      r.fail(indexPath(childPath(path, "methods"), i), "not a valid HTTP method");
      return m;
    }
    m.methods.push(method.toUpperCase());
  }
  m.headers = parseConditions(r, obj, path, "headers", true);
  m.query = parseConditions(r, obj, path, "query", false);
  m.cookies = parseConditions(r, obj, path, "cookies", false);
  return m;
}

/** Parses { "exact" | "prefix" | "glob": "/…" }. */
export function parsePathMatcher(r: ConfigReader, value: JsonValue, path: string): PathMatcher | null {
  const obj = r.object(value, path, PATH_MATCH_KEYS);
  if (obj === null) return null;
  const key = r.oneOf(obj, path, PATH_MATCH_KEYS);
  if (!r.ok) return null;
  const pattern = r.string(obj, path, key, true);
  if (!r.ok) return null;
  const kind = <PathMatchKind>PATH_MATCH_KEYS.indexOf(key);
  if (kind == PathMatchKind.Glob) {
    const problem = globProblem(pattern);
    if (problem !== null) {
      r.fail(childPath(path, key), problem);
      return null;
    }
  } else if (!pattern.startsWith("/")) {
    r.fail(childPath(path, key), "must start with '/'");
    return null;
  }
  return new PathMatcher(kind, pattern);
}

/** Parses an array of { "name", one of exact/prefix/suffix/contains (string), present/absent (bool) }. */
export function parseConditions(r: ConfigReader, obj: JsonValue, path: string, key: string, lowerCaseNames: bool): ItemCondition[] {
  const out = new Array<ItemCondition>();
  const items = r.array(obj, path, key, false);
  const listPath = childPath(path, key);
  for (let i = 0; i < items.length && r.ok; i++) {
    const c = parseCondition(r, items[i], indexPath(listPath, i), lowerCaseNames);
    if (c !== null) out.push(c);
  }
  return out;
}

const CONDITION_KEYS: string[] = ["name", "exact", "prefix", "suffix", "contains", "present", "absent"];

export function parseCondition(r: ConfigReader, value: JsonValue, path: string, lowerCaseName: bool): ItemCondition | null {
  const obj = r.object(value, path, CONDITION_KEYS);
  if (obj === null) return null;
  let name = r.nonEmptyString(obj, path, "name", true);
  const key = r.oneOf(obj, path, STRING_MATCH_KEYS);
  if (!r.ok) return null;
  let kind = <StringMatchKind>STRING_MATCH_KEYS.indexOf(key);
  let operand = "";
  const v = obj.get(key)!;
  if (kind == StringMatchKind.Present || kind == StringMatchKind.Absent) {
    if (v.kind != JsonKind.Bool) {
      r.fail(childPath(path, key), "expected a boolean, got " + kindName(v.kind));
      return null;
    }
    // "present": false is "absent": true and vice versa.
    if (!v.bool) kind = kind == StringMatchKind.Present ? StringMatchKind.Absent : StringMatchKind.Present;
  } else {
    if (v.kind != JsonKind.String) {
      r.fail(childPath(path, key), "expected a string, got " + kindName(v.kind));
      return null;
    }
    operand = v.str;
  }
  if (lowerCaseName) {
    const plain = name.startsWith(":") ? name.substring(1) : name;
    if (!isToken(plain)) {
      r.fail(childPath(path, "name"), "not a valid header name");
      return null;
    }
    name = name.toLowerCase();
  }
  return new ItemCondition(name, new StringMatcher(kind, operand));
}

/** RFC 9110 token characters only (method names, header names). */
export function isToken(s: string): bool {
  if (s.length == 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) ||
      c == 0x21 || c == 0x23 || c == 0x24 || c == 0x25 || c == 0x26 || c == 0x27 || c == 0x2a ||
      c == 0x2b || c == 0x2d || c == 0x2e || c == 0x5e || c == 0x5f || c == 0x60 || c == 0x7c || c == 0x7e;
    if (!ok) return false;
  }
  return true;
}
