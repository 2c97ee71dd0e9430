// The cache directive authz-server attaches to a cacheable decision: `<hex HMAC-SHA256>.<json>`.
// Verified (HMAC, nonce) and parsed here; pure. Format: README "The directive cannot be forged".
import { JsonKind, JsonParser, JsonValue } from "../lib/json";
import { serializePairs } from "../lib/request-view";
import { bytesEqual, hmacSha256, toHex } from "../lib/sha256";

export const MAX_DIRECTIVE_BYTES = 8192;

export class Directive {
  nonce: string = "";
  epoch: string = "";
  expiresAtMs: f64 = 0;
  ttlMs: f64 = 0;
  shape: string[] = [];
  /** authz-server's limits.maxHeaders and maxHeaderBytes (a bigger request is answered 431 there). */
  maxHeaders: i64 = 0;
  maxHeaderBytes: i64 = 0;
  allow: bool = false;
  status: u32 = 0;
  headerNames: string[] = [];
  headerValues: string[] = [];
  remove: string[] = [];
  responseNames: string[] = [];
  responseValues: string[] = [];
  body: string = "";
  // UTF-8 forms for the hit path, filled once by encode() (when the entry is first served).
  removeBytes: ArrayBuffer[] = [];
  headerNameBytes: ArrayBuffer[] = [];
  headerValueBytes: ArrayBuffer[] = [];
  responseNameBytes: ArrayBuffer[] = [];
  responseValueBytes: ArrayBuffer[] = [];
  /** A denial's local reply: its headers in the pairs format and its body. */
  denialHeaderPairs: ArrayBuffer = new ArrayBuffer(0);
  denialBody: ArrayBuffer = new ArrayBuffer(0);
  /** Dynamic metadata headers learned from Envoy on the miss (metadata.ts), replayed on a hit. */
  metadataNames: ArrayBuffer[] = [];
  metadataValues: ArrayBuffer[] = [];

  encode(): void {
    for (let i = 0; i < this.remove.length; i++) this.removeBytes.push(String.UTF8.encode(this.remove[i]));
    for (let i = 0; i < this.headerNames.length; i++) {
      this.headerNameBytes.push(String.UTF8.encode(this.headerNames[i]));
      this.headerValueBytes.push(String.UTF8.encode(this.headerValues[i]));
    }
    for (let i = 0; i < this.responseNames.length; i++) {
      this.responseNameBytes.push(String.UTF8.encode(this.responseNames[i]));
      this.responseValueBytes.push(String.UTF8.encode(this.responseValues[i]));
    }
    if (!this.allow) {
      this.denialHeaderPairs = serializePairs(this.headerNames, this.headerValues);
      this.denialBody = String.UTF8.encode(this.body);
    }
  }
}

/** Why the last verify/parse failed (for the log; never contains the directive). */
export let directiveError: string = "";

/** Checks the MAC of `value` with `secret` and returns the JSON text, or null. */
export function verifyDirective(value: string, secret: ArrayBuffer): string | null {
  if (value.length > MAX_DIRECTIVE_BYTES || value.length < 66 || value.charCodeAt(64) != 0x2e) {
    directiveError = "malformed";
    return null;
  }
  const json = value.substring(65);
  const bytes = String.UTF8.encode(json);
  const mac = String.UTF8.encode(toHex(hmacSha256(secret, changetype<usize>(bytes), <usize>bytes.byteLength)));
  const given = String.UTF8.encode(value.substring(0, 64));
  if (given.byteLength != 64 || !bytesEqual(changetype<usize>(mac), changetype<usize>(given), 64)) {
    directiveError = "bad MAC";
    return null;
  }
  return json;
}

function strings(v: JsonValue | null, out: string[]): bool {
  if (v === null) return true;
  if (v.kind != JsonKind.Array) return false;
  for (let i = 0; i < v.items.length; i++) {
    if (v.items[i].kind != JsonKind.String) return false;
    out.push(v.items[i].str);
  }
  return true;
}

function pairs(v: JsonValue | null, names: string[], values: string[]): bool {
  if (v === null) return true;
  if (v.kind != JsonKind.Array) return false;
  for (let i = 0; i < v.items.length; i++) {
    const p = v.items[i];
    if (p.kind != JsonKind.Array || p.items.length != 2 || p.items[0].kind != JsonKind.String || p.items[1].kind != JsonKind.String) return false;
    names.push(p.items[0].str);
    values.push(p.items[1].str);
  }
  return true;
}

function str(o: JsonValue, key: string): string | null {
  const v = o.get(key);
  if (v === null || v.kind != JsonKind.String) return null;
  return v.str;
}

function num(o: JsonValue, key: string): f64 {
  const v = o.get(key);
  if (v === null || v.kind != JsonKind.Number) return -1;
  return v.num;
}

/** Parses verified directive JSON; null (with `directiveError`) when it is not a v1 directive. */
export function parseDirective(json: string): Directive | null {
  const root = new JsonParser().parse(json);
  if (root === null || root.kind != JsonKind.Object || num(root, "v") != 1) {
    directiveError = "not a v1 directive";
    return null;
  }
  const d = new Directive();
  const n = str(root, "n");
  const e = str(root, "e");
  const kind = str(root, "d");
  if (n === null || e === null || kind === null || (kind != "allow" && kind != "deny")) {
    directiveError = "missing n, e or d";
    return null;
  }
  d.nonce = n;
  d.epoch = e;
  d.allow = kind == "allow";
  d.expiresAtMs = num(root, "x");
  d.ttlMs = num(root, "t");
  const status = num(root, "s");
  if (d.expiresAtMs <= 0 || d.ttlMs <= 0 || status < 200 || status > 599) {
    directiveError = "bad x, t or s";
    return null;
  }
  d.status = <u32>status;
  const l = root.get("l");
  if (l === null || l.kind != JsonKind.Array || l.items.length != 2 || l.items[0].kind != JsonKind.Number || l.items[1].kind != JsonKind.Number ||
    l.items[0].num < 1 || l.items[1].num < 1) {
    directiveError = "bad l";
    return null;
  }
  d.maxHeaders = <i64>l.items[0].num;
  d.maxHeaderBytes = <i64>l.items[1].num;
  if (!strings(root.get("k"), d.shape) || !strings(root.get("r"), d.remove) || !pairs(root.get("h"), d.headerNames, d.headerValues) ||
    !pairs(root.get("rh"), d.responseNames, d.responseValues)) {
    directiveError = "bad k, r, h or rh";
    return null;
  }
  const b = root.get("b");
  if (b !== null) {
    if (b.kind != JsonKind.String) {
      directiveError = "bad b";
      return null;
    }
    d.body = b.str;
  }
  return d;
}
