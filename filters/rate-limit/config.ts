// rate-limit plugin configuration: parsed and validated once in onConfigure into an immutable
// runtime object (compiled matchers, bucket and lease parameters). Errors name the JSON path.
// Pure.
import { ConfigReader } from "../lib/config-reader";
import { JsonParser, JsonValue, childPath, indexPath } from "../lib/json";
import { RequestMatch, isToken, parseRequestMatch } from "../lib/request-match";
import { keyScope } from "./key";
import { LeaseSpec } from "./lease-pool";
import { BucketSpec, MAX_TOKENS, MILLI } from "./token-bucket";

export const enum KeyKind { RemoteAddress = 0, Path = 1, Header = 2, Cookie = 3, Constant = 4 }
export const enum FailureMode { Allow = 0, Deny = 1, Local = 2 }

export const DEFAULT_MAX_KEYS: u32 = 65536;
export const MAX_MAX_KEYS: u32 = 1048576;
const MAX_KEY_PARTS = 8;
const MAX_NAME_LENGTH = 64;

/** One component of a limit's key. */
export class KeyPart {
  /** Header name as lower-case UTF-8 bytes (Header only). */
  nameBytes: ArrayBuffer;

  constructor(public kind: KeyKind, public name: string) {
    this.nameBytes = String.UTF8.encode(name);
  }
}

export class Limit {
  match: RequestMatch = new RequestMatch();
  key: KeyPart[] = [];
  bucket: BucketSpec = new BucketSpec(0, 0);
  /** Non-null for a global (leased) limit. */
  lease: LeaseSpec | null = null;
  /** Key scope (domain and limit name) every key of this limit starts with. */
  scope: string = "";
  /** Shared-data key prefix of this limit's local bucket slots. */
  bucketPrefix: string = "";
  /** Shared-data key prefix of this limit's lease pool slots. */
  poolPrefix: string = "";

  constructor(public index: i32, public name: string, public capacity: i64, public refillPerSecond: f64) {}

  get isGlobal(): bool {
    return this.lease !== null;
  }
}

export class RateLimitConfig {
  domain: string = "";
  dryRun: bool = false;
  failureMode: FailureMode = FailureMode.Allow;
  responseHeaders: bool = false;
  quotaCluster: string = "";
  quotaAuthority: string = "";
  quotaTimeoutMs: u32 = 200;
  /** VM environment variable holding the quota bearer token ("" = send none). */
  quotaTokenEnv: string = "";
  maxKeysPerLimit: u32 = DEFAULT_MAX_KEYS;
  limits: Limit[] = [];
  hasGlobal: bool = false;
  /** Some limit reads request headers (a match condition, or a header/cookie/path key part). */
  needsHeaders: bool = false;
}

const ROOT_KEYS: string[] = ["domain", "enforcement", "failureMode", "responseHeaders", "quota", "limits", "maxKeysPerLimit"];
const QUOTA_KEYS: string[] = ["cluster", "authority", "timeoutMs", "tokenEnv"];
const LIMIT_KEYS: string[] = ["name", "match", "key", "capacity", "refillPerSecond", "global"];
const GLOBAL_KEYS: string[] = ["lease", "minLease"];
const KEY_PART_KEYS: string[] = ["source", "header", "cookie", "constant"];

/** Parses and validates; on failure returns null and sets `error` to "<json path>: <problem>". */
export class ConfigParser {
  error: string | null = null;

  parse(text: string): RateLimitConfig | null {
    const parser = new JsonParser();
    const root = parser.parse(text);
    if (root === null) {
      this.error = parser.error;
      return null;
    }
    const r = new ConfigReader();
    const config = readConfig(r, root);
    if (!r.ok) {
      this.error = r.error;
      return null;
    }
    return config;
  }
}

function readConfig(r: ConfigReader, value: JsonValue): RateLimitConfig {
  const c = new RateLimitConfig();
  const root = r.object(value, "", ROOT_KEYS);
  if (root === null) return c;
  c.domain = r.nonEmptyString(root, "", "domain", true);
  if (r.ok && !isName(c.domain)) r.fail("domain", "use letters, digits, '.', '_' or '-' (at most 64)");
  const enforcement = r.string(root, "", "enforcement", false, "enforce");
  if (r.ok && enforcement != "enforce" && enforcement != "dryRun") r.fail("enforcement", "expected 'enforce' or 'dryRun'");
  c.dryRun = enforcement == "dryRun";
  const failure = r.string(root, "", "failureMode", false, "allow");
  if (failure == "allow") c.failureMode = FailureMode.Allow;
  else if (failure == "deny") c.failureMode = FailureMode.Deny;
  else if (failure == "local") c.failureMode = FailureMode.Local;
  else if (r.ok) r.fail("failureMode", "expected 'allow', 'deny' or 'local'");
  c.responseHeaders = r.bool(root, "", "responseHeaders", false, false);
  c.maxKeysPerLimit = <u32>r.number(root, "", "maxKeysPerLimit", false, <f64>DEFAULT_MAX_KEYS, 1, <f64>MAX_MAX_KEYS, true);
  if (!r.ok) return c;

  const items = r.array(root, "", "limits", true);
  if (r.ok && items.length == 0) r.fail("limits", "must not be empty");
  for (let i = 0; i < items.length && r.ok; i++) {
    const limit = readLimit(r, items[i], indexPath("limits", i), i, c.domain);
    if (!r.ok) break;
    for (let j = 0; j < c.limits.length; j++) {
      if (c.limits[j].name == limit.name) {
        r.fail(childPath(indexPath("limits", i), "name"), "duplicate limit name '" + limit.name + "'");
        break;
      }
    }
    if (limit.isGlobal) c.hasGlobal = true;
    if (readsHeaders(limit)) c.needsHeaders = true;
    c.limits.push(limit);
  }
  if (!r.ok) return c;

  const quota = root.get("quota");
  if (quota === null) {
    if (c.hasGlobal) r.fail("quota", "required when a limit has 'global'");
    return c;
  }
  const q = r.object(quota, "quota", QUOTA_KEYS);
  if (q === null) return c;
  c.quotaCluster = r.nonEmptyString(q, "quota", "cluster", true);
  c.quotaAuthority = r.nonEmptyString(q, "quota", "authority", true);
  c.quotaTimeoutMs = <u32>r.number(q, "quota", "timeoutMs", false, 200, 1, 60000, true);
  c.quotaTokenEnv = r.nonEmptyString(q, "quota", "tokenEnv", false);
  const ttl = <i64>c.quotaTimeoutMs + (c.quotaTimeoutMs < 100 ? 100 : <i64>c.quotaTimeoutMs);
  for (let i = 0; i < c.limits.length; i++) {
    const lease = c.limits[i].lease;
    if (lease !== null) lease.inflightTtlMs = ttl;
  }
  return c;
}

function readLimit(r: ConfigReader, value: JsonValue, path: string, index: i32, domain: string): Limit {
  const obj = r.object(value, path, LIMIT_KEYS);
  if (obj === null) return new Limit(index, "", 0, 0);
  const name = r.nonEmptyString(obj, path, "name", true);
  if (r.ok && !isName(name)) r.fail(childPath(path, "name"), "use letters, digits, '.', '_' or '-' (at most 64)");
  const capacity = <i64>r.number(obj, path, "capacity", true, 0, 1, <f64>MAX_TOKENS, true);
  const refill = r.number(obj, path, "refillPerSecond", true, 0, 0, <f64>MAX_TOKENS, false);
  const limit = new Limit(index, name, capacity, refill);
  if (!r.ok) return limit;
  const refillMilli = Math.round(refill * <f64>MILLI);
  if (Math.abs(refill * <f64>MILLI - refillMilli) > 1e-6) {
    r.fail(childPath(path, "refillPerSecond"), "at most 3 decimal places");
    return limit;
  }
  limit.bucket = new BucketSpec(capacity * MILLI, <i64>refillMilli);
  limit.match = parseRequestMatch(r, obj.get("match"), childPath(path, "match"));
  if (!r.ok) return limit;

  const parts = r.array(obj, path, "key", true);
  const keyPath = childPath(path, "key");
  if (r.ok && parts.length == 0) r.fail(keyPath, "must not be empty");
  if (r.ok && parts.length > MAX_KEY_PARTS) r.fail(keyPath, "at most " + MAX_KEY_PARTS.toString() + " components");
  for (let i = 0; i < parts.length && r.ok; i++) {
    const part = readKeyPart(r, parts[i], indexPath(keyPath, i));
    if (part !== null) limit.key.push(part);
  }

  const global = obj.get("global");
  if (global !== null && r.ok) {
    const gpath = childPath(path, "global");
    const g = r.object(global, gpath, GLOBAL_KEYS);
    if (g === null) return limit;
    const lease = <i64>r.number(g, gpath, "lease", true, 1, 1, <f64>MAX_TOKENS, true);
    const minLease = <i64>r.number(g, gpath, "minLease", false, 1, 1, <f64>MAX_TOKENS, true);
    if (r.ok && minLease > lease) r.fail(childPath(gpath, "minLease"), "must not exceed lease (" + lease.toString() + ")");
    limit.lease = new LeaseSpec(lease, minLease, 0);
  }
  limit.scope = keyScope(domain, name);
  limit.bucketPrefix = "meshward.rate-limit.bucket." + domain + "." + name + ".";
  limit.poolPrefix = "meshward.rate-limit.pool." + domain + "." + name + ".";
  return limit;
}

function readKeyPart(r: ConfigReader, value: JsonValue, path: string): KeyPart | null {
  const obj = r.object(value, path, KEY_PART_KEYS);
  if (obj === null) return null;
  const which = r.oneOf(obj, path, KEY_PART_KEYS);
  if (!r.ok) return null;
  const v = r.nonEmptyString(obj, path, which, true);
  if (!r.ok) return null;
  const p = childPath(path, which);
  if (which == "source") {
    if (v == "remote_address") return new KeyPart(KeyKind.RemoteAddress, v);
    if (v == "path") return new KeyPart(KeyKind.Path, v);
    r.fail(p, "expected 'remote_address' or 'path'");
    return null;
  }
  if (which == "header") {
    if (!isToken(v)) {
      r.fail(p, "not a valid header name");
      return null;
    }
    return new KeyPart(KeyKind.Header, v.toLowerCase());
  }
  if (which == "cookie") return new KeyPart(KeyKind.Cookie, v);
  return new KeyPart(KeyKind.Constant, v);
}

function readsHeaders(limit: Limit): bool {
  const m = limit.match;
  if (m.path !== null || m.methods.length > 0 || m.headers.length > 0 || m.query.length > 0 || m.cookies.length > 0) return true;
  for (let i = 0; i < limit.key.length; i++) {
    const kind = limit.key[i].kind;
    if (kind == KeyKind.Header || kind == KeyKind.Cookie || kind == KeyKind.Path) return true;
  }
  return false;
}

/** Names used in shared-data keys, metric-free log lines and header tokens: [A-Za-z0-9._-]{1,64}. */
function isName(s: string): bool {
  if (s.length == 0 || s.length > MAX_NAME_LENGTH) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) ||
      c == 0x2e || c == 0x5f || c == 0x2d;
    if (!ok) return false;
  }
  return true;
}
