// Unit-test entry (asconfig target "lib-test"): exposes the pure lib modules to mocha through
// @assemblyscript/loader. Never shipped in a filter; must not import host.ts.
import { ConfigReader } from "./config-reader";
import { cookieValue } from "./cookies";
import { stableHash, stableHashBytes } from "./hash";
import { JsonKind, JsonParser, JsonValue } from "./json";
import { PathMatchKind, PathMatcher, globProblem, stripQuery } from "./path-match";
import { percentDecode, queryParam } from "./query";
import { Xorshift64 } from "./random";
import { parseRequestMatch } from "./request-match";
import { RequestView, serializePairs } from "./request-view";
import { STRING_MATCH_KEYS, StringMatchKind, StringMatcher } from "./string-match";
import { WeightedChoice } from "./weighted";

/** Parses JSON and re-serializes it canonically (or returns "error: <message>"). */
export function jsonRoundTrip(text: string): string {
  const parser = new JsonParser();
  const v = parser.parse(text);
  if (v === null) return "error: " + parser.error!;
  return serialize(v);
}

function serialize(v: JsonValue): string {
  switch (v.kind) {
    case JsonKind.Null: return "null";
    case JsonKind.Bool: return v.bool ? "true" : "false";
    case JsonKind.Number: return v.num.toString();
    case JsonKind.String: return quote(v.str);
    case JsonKind.Array: {
      const parts = new Array<string>();
      for (let i = 0; i < v.items.length; i++) parts.push(serialize(v.items[i]));
      return "[" + parts.join(",") + "]";
    }
    default: {
      const parts = new Array<string>();
      for (let i = 0; i < v.keys.length; i++) parts.push(quote(v.keys[i]) + ":" + serialize(v.values[i]));
      return "{" + parts.join(",") + "}";
    }
  }
}

function quote(s: string): string {
  let out = "\"";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x22 || c == 0x5c) out += "\\" + String.fromCharCode(c);
    else if (c < 0x20 || c > 0x7e) out += "\\u" + hex4(c);
    else out += String.fromCharCode(c);
  }
  return out + "\"";
}

function hex4(c: i32): string {
  const digits = "0123456789abcdef";
  return digits.charAt((c >> 12) & 15) + digits.charAt((c >> 8) & 15) + digits.charAt((c >> 4) & 15) + digits.charAt(c & 15);
}

/** kind: "exact" | "prefix" | "glob". */
export function pathMatches(kind: string, pattern: string, target: string): bool {
  const k = kind == "exact" ? PathMatchKind.Exact : kind == "prefix" ? PathMatchKind.Prefix : PathMatchKind.Glob;
  return new PathMatcher(k, pattern).matches(stripQuery(target));
}

export function checkGlob(pattern: string): string {
  const p = globProblem(pattern);
  if (p === null) return "";
  return p;
}

/**
 * kind: one of STRING_MATCH_KEYS; `present` false means the item is missing. Checks the string
 * and the in-place byte matcher agree: returns 0/1, or 2 when they disagree.
 */
export function stringMatches(kind: string, operand: string, actual: string, present: bool): i32 {
  const m = new StringMatcher(<StringMatchKind>STRING_MATCH_KEYS.indexOf(kind), operand);
  if (!present) return m.matches(null) ? 1 : 0;
  const bytes = String.UTF8.encode(actual);
  const viaBytes = m.matchesBytes(changetype<usize>(bytes), bytes.byteLength);
  const viaString = m.matches(actual);
  if (viaBytes != viaString) return 2;
  return viaString ? 1 : 0;
}

export function query(target: string, name: string): string | null {
  return queryParam(target, name);
}

export function decode(s: string): string {
  return percentDecode(s);
}

export function cookie(header: string, name: string): string | null {
  return cookieValue(header, name);
}

export function hashString(s: string): u64 {
  return stableHash(s);
}

export function hashUtf8(s: string): u64 {
  const bytes = String.UTF8.encode(s);
  return stableHashBytes(changetype<usize>(bytes), bytes.byteLength);
}

/** Sticky bucket of each key "prefix<i>" for i in [0, n) over comma-separated weights; returns counts per target. */
export function stickyCounts(weights: string, prefix: string, n: i32): Int32Array {
  const choice = weightedChoice(weights);
  const counts = new Int32Array(choice.length);
  for (let i = 0; i < n; i++) {
    const k = choice.pick(stableHash(prefix + i.toString()));
    counts[k] = counts[k] + 1;
  }
  return counts;
}

export function pick(weights: string, point: u64): i32 {
  return weightedChoice(weights).pick(point);
}

function weightedChoice(weights: string): WeightedChoice {
  const choice = new WeightedChoice();
  const parts = weights.split(",");
  for (let i = 0; i < parts.length; i++) choice.add(<u64>parseInt(parts[i]));
  return choice;
}

/** Counts per target for `n` PRNG draws from `seed` over comma-separated weights. */
export function randomCounts(weights: string, seed: u32, n: i32): Int32Array {
  const choice = weightedChoice(weights);
  const rng = new Xorshift64(<u64>seed);
  const counts = new Int32Array(choice.length);
  for (let i = 0; i < n; i++) {
    // AssemblyScript 0.17 evaluates the index of `a[f()]++` twice: pick once.
    const k = choice.pick(rng.next());
    counts[k] = counts[k] + 1;
  }
  return counts;
}

/**
 * Compiles a "match" JSON object and applies it to a request given as "name: value" lines
 * (pseudo-headers included). Returns "match", "no match" or "error: <json path>: <problem>".
 */
export function requestMatches(matchJson: string, headerLines: string): string {
  const parser = new JsonParser();
  const json = parser.parse(matchJson);
  if (json === null) return "error: " + parser.error!;
  const r = new ConfigReader();
  const m = parseRequestMatch(r, json, "match");
  if (!r.ok) return "error: " + r.error!;
  const view = new RequestView();
  view.reset(pairsFromLines(headerLines));
  return m.matches(view) ? "match" : "no match";
}

/** Looks up one header in a request given as lines; "(absent)" when missing. */
export function headerOf(headerLines: string, name: string): string {
  const view = new RequestView();
  view.reset(pairsFromLines(headerLines));
  const v = view.header(String.UTF8.encode(name));
  if (v === null) return "(absent)";
  return v!;
}

/** Number of headers a raw pairs buffer yields (malformed buffers yield 0). */
export function pairsCount(bytes: Uint8Array): i32 {
  const copy = new ArrayBuffer(bytes.length);
  memory.copy(changetype<usize>(copy), bytes.dataStart, bytes.length);
  const view = new RequestView();
  view.reset(copy);
  return view.size;
}

function pairsFromLines(lines: string): ArrayBuffer {
  const names = new Array<string>();
  const values = new Array<string>();
  const parts = lines.split("\n");
  for (let i = 0; i < parts.length; i++) {
    const line = parts[i];
    if (line.length == 0) continue;
    const colon = line.indexOf(": ", 1);
    names.push(line.substring(0, colon));
    values.push(line.substring(colon + 2));
  }
  return serializePairs(names, values);
}

export const Uint8Array_ID = idof<Uint8Array>();

/** ConfigReader messages for typed fields: reads `key` of the object as `type` ("string", "bool", "int", "array"). */
export function readField(json: string, key: string, type: string): string {
  const parser = new JsonParser();
  const v = parser.parse(json);
  if (v === null) return "error: " + parser.error!;
  const r = new ConfigReader();
  const obj = r.object(v, "cfg", [key]);
  if (obj === null) return "error: " + r.error!;
  let out = "";
  if (type == "string") out = r.nonEmptyString(obj, "cfg", key, true);
  else if (type == "bool") out = r.bool(obj, "cfg", key, true) ? "true" : "false";
  else if (type == "int") out = (<i64>r.number(obj, "cfg", key, true, 0, 1, 100, true)).toString();
  else if (type == "array") out = r.stringArray(obj, "cfg", key, true).join("|");
  if (r.ok) return out;
  return "error: " + r.error!;
}
