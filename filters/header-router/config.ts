// header-router configuration: parsed and validated once in onConfigure into an immutable
// RouterConfig (compiled matchers, UTF-8 header names, weighted choices). Pure.
import { ConfigReader } from "../lib/config-reader";
import { JsonKind, JsonParser, JsonValue, childPath, indexPath, kindName } from "../lib/json";
import { RequestMatch, isToken, parseRequestMatch } from "../lib/request-match";
import { WeightedChoice } from "../lib/weighted";

export const enum StickyKind { None = 0, Header = 1, Cookie = 2 }

/** A route name as written into the route header. */
export class Target {
  bytes: ArrayBuffer;
  /** Metric id of meshward_header_router_target_<route>_requests_total (set by the filter). */
  metric: u32 = 0;
  constructor(public route: string, public weight: u64) {
    this.bytes = String.UTF8.encode(route);
  }
}

export class Rule {
  match: RequestMatch = new RequestMatch();
  /** One target for `route`, several for `split`. */
  targets: Target[] = [];
  isSplit: bool = false;
  choice: WeightedChoice = new WeightedChoice();
  stickyKind: StickyKind = StickyKind.None;
  stickyName: string = "";
  stickyNameBytes: ArrayBuffer = new ArrayBuffer(0);
  /** Metric id of meshward_header_router_rule_<name>_requests_total (set by the filter). */
  metric: u32 = 0;
  constructor(public name: string) {}
}

export class HeaderValue {
  nameBytes: ArrayBuffer;
  valueBytes: ArrayBuffer;
  constructor(public name: string, public value: string) {
    this.nameBytes = String.UTF8.encode(name);
    this.valueBytes = String.UTF8.encode(value);
  }
}

export class RouterConfig {
  routeHeader: string = "";
  routeHeaderBytes: ArrayBuffer = new ArrayBuffer(0);
  rules: Rule[] = [];
  /** Route when no rule matches; null = remove any client-sent route header. */
  defaultTarget: Target | null = null;
  headersToAdd: HeaderValue[] = [];
  headersToRemove: ArrayBuffer[] = [];
  headersToRemoveNames: string[] = [];
}

/** Either a config or the first problem ("rules[2].match.path.prefix: expected a string"). */
export class ConfigResult {
  config: RouterConfig | null = null;
  error: string | null = null;
}

const TOP_KEYS: string[] = ["routeHeader", "rules", "default", "requestHeadersToAdd", "requestHeadersToRemove"];
const RULE_KEYS: string[] = ["name", "match", "route", "split"];
const SPLIT_KEYS: string[] = ["stickyOn", "targets"];
const STICKY_KEYS: string[] = ["header", "cookie"];
const TARGET_KEYS: string[] = ["route", "weight"];
const HEADER_VALUE_KEYS: string[] = ["name", "value"];
export const MAX_RULES = 1000;
export const MAX_TARGETS = 100;
export const MAX_WEIGHT: f64 = 1000000;

export function parseRouterConfig(text: string): ConfigResult {
  const result = new ConfigResult();
  const parser = new JsonParser();
  const json = parser.parse(text);
  if (json === null) {
    result.error = parser.error;
    return result;
  }
  const r = new ConfigReader();
  const config = readConfig(r, json);
  if (r.ok) result.config = config;
  else result.error = r.error;
  return result;
}

function readConfig(r: ConfigReader, json: JsonValue): RouterConfig {
  const c = new RouterConfig();
  const top = r.object(json, "", TOP_KEYS);
  if (top === null) return c;
  c.routeHeader = headerName(r, top, "", "routeHeader", true);
  c.routeHeaderBytes = String.UTF8.encode(c.routeHeader);
  if (!r.ok) return c;

  const rules = r.array(top, "", "rules", false);
  if (rules.length > MAX_RULES) r.fail("rules", "at most " + MAX_RULES.toString() + " rules");
  const names = new Array<string>();
  for (let i = 0; i < rules.length && r.ok; i++) {
    const rule = readRule(r, rules[i], indexPath("rules", i));
    if (!r.ok) break;
    if (names.includes(rule.name)) {
      r.fail(childPath(indexPath("rules", i), "name"), "duplicate rule name '" + rule.name + "'");
      break;
    }
    names.push(rule.name);
    c.rules.push(rule);
  }
  if (!r.ok) return c;

  if (top.has("default")) {
    const route = routeName(r, top, "", "default");
    if (r.ok) c.defaultTarget = new Target(route, 1);
  }
  if (!r.ok) return c;

  const adds = r.array(top, "", "requestHeadersToAdd", false);
  for (let i = 0; i < adds.length && r.ok; i++) {
    const p = indexPath("requestHeadersToAdd", i);
    const obj = r.object(adds[i], p, HEADER_VALUE_KEYS);
    if (obj === null) break;
    const name = headerName(r, obj, p, "name", true);
    const value = r.string(obj, p, "value", true);
    if (r.ok && !isHeaderValue(value)) r.fail(childPath(p, "value"), "not a valid header value");
    if (r.ok && name == c.routeHeader) r.fail(childPath(p, "name"), "must not be the routeHeader");
    if (r.ok) c.headersToAdd.push(new HeaderValue(name, value));
  }
  const removes = r.array(top, "", "requestHeadersToRemove", false);
  for (let i = 0; i < removes.length && r.ok; i++) {
    const p = indexPath("requestHeadersToRemove", i);
    const v = removes[i];
    if (v.kind != JsonKind.String) {
      r.fail(p, "expected a string, got " + kindName(v.kind));
      break;
    }
    if (!isHeaderNameString(v.str)) {
      r.fail(p, "not a valid header name");
      break;
    }
    const name = v.str.toLowerCase();
    if (name == c.routeHeader) {
      r.fail(p, "must not be the routeHeader");
      break;
    }
    c.headersToRemove.push(String.UTF8.encode(name));
    c.headersToRemoveNames.push(name);
  }
  return c;
}

function readRule(r: ConfigReader, value: JsonValue, path: string): Rule {
  const obj = r.object(value, path, RULE_KEYS);
  if (obj === null) return new Rule("");
  const name = r.nonEmptyString(obj, path, "name", true);
  if (r.ok && !isMetricSafe(name)) r.fail(childPath(path, "name"), "may contain only letters, digits, '_' and '-'");
  const rule = new Rule(name);
  if (!r.ok) return rule;
  rule.match = parseRequestMatch(r, obj.get("match"), childPath(path, "match"));
  if (!r.ok) return rule;
  const action = r.oneOf(obj, path, ["route", "split"]);
  if (!r.ok) return rule;
  if (action == "route") {
    const route = routeName(r, obj, path, "route");
    rule.targets.push(new Target(route, 1));
    rule.choice.add(1);
    return rule;
  }
  rule.isSplit = true;
  const splitPath = childPath(path, "split");
  const split = r.object(obj.get("split"), splitPath, SPLIT_KEYS);
  if (split === null) return rule;
  const sticky = split.get("stickyOn");
  if (sticky !== null) {
    const stickyPath = childPath(splitPath, "stickyOn");
    const s = r.object(sticky, stickyPath, STICKY_KEYS);
    if (s === null) return rule;
    const kind = r.oneOf(s, stickyPath, STICKY_KEYS);
    if (!r.ok) return rule;
    if (kind == "header") {
      rule.stickyKind = StickyKind.Header;
      rule.stickyName = headerName(r, s, stickyPath, "header", true);
    } else {
      rule.stickyKind = StickyKind.Cookie;
      rule.stickyName = r.nonEmptyString(s, stickyPath, "cookie", true);
    }
    rule.stickyNameBytes = String.UTF8.encode(rule.stickyName);
    if (!r.ok) return rule;
  }
  const targets = r.array(split, splitPath, "targets", true);
  const targetsPath = childPath(splitPath, "targets");
  if (r.ok && targets.length == 0) r.fail(targetsPath, "must not be empty");
  if (r.ok && targets.length > MAX_TARGETS) r.fail(targetsPath, "at most " + MAX_TARGETS.toString() + " targets");
  for (let i = 0; i < targets.length && r.ok; i++) {
    const p = indexPath(targetsPath, i);
    const t = r.object(targets[i], p, TARGET_KEYS);
    if (t === null) break;
    const route = routeName(r, t, p, "route");
    const weight = r.number(t, p, "weight", true, 0, 1, MAX_WEIGHT, true);
    if (!r.ok) break;
    rule.targets.push(new Target(route, <u64>weight));
    rule.choice.add(<u64>weight);
  }
  return rule;
}

function routeName(r: ConfigReader, obj: JsonValue, path: string, key: string): string {
  const route = r.nonEmptyString(obj, path, key, true);
  if (r.ok && !isHeaderValue(route)) r.fail(childPath(path, key), "not a valid header value");
  return route;
}

function headerName(r: ConfigReader, obj: JsonValue, path: string, key: string, required: bool): string {
  const name = r.nonEmptyString(obj, path, key, required);
  if (r.ok && !isHeaderNameString(name)) r.fail(childPath(path, key), "not a valid header name");
  return name.toLowerCase();
}

/** A regular (non-pseudo) header name. */
function isHeaderNameString(s: string): bool {
  return isToken(s);
}

/** Visible ASCII and spaces only, no leading/trailing space: safe as a header value. */
function isHeaderValue(s: string): bool {
  if (s.length == 0) return true;
  if (s.charCodeAt(0) == 0x20 || s.charCodeAt(s.length - 1) == 0x20) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

function isMetricSafe(s: string): bool {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x5f || c == 0x2d;
    if (!ok) return false;
  }
  return true;
}
