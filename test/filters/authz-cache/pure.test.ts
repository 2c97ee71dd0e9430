// Unit tests of the authz-cache filter's pure AssemblyScript modules (SHA-256, HMAC, the key, the
// directive, the configuration) through @assemblyscript/loader on the `authz-cache-test` target;
// directives are produced by authz-server's own code, so both sides of the contract are checked.
import { strict as assert } from "node:assert";
import { createHash, createHmac, randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { instantiateSync } from "@assemblyscript/loader";
import fc from "fast-check";
import protobuf from "protobufjs";

interface Exports {
  [key: string]: unknown;
  sha256Hex(s: number): number;
  hmacHex(k: number, s: number): number;
  keyHex(epoch: number, shape: number, headers: number, ip: number): number;
  localLookup(epoch: number, shape: number, a: number, b: number, ip: number): number;
  localFind(epoch: number, shape: number, b: number, ip: number): number;
  checkDirective(value: number, secret: number, nonce: number): number;
  summary(): number;
  configError(text: number): number;
  metadataText(hex: number, keys: number): number;
  __newString(s: string): number;
  __getString(p: number): string;
  __retain(p: number): number;
  __release(p: number): void;
}

const wasmUrl = new URL("../../../filters/build/authz-cache-test.wasm", import.meta.url);
if (!existsSync(wasmUrl)) throw new Error(`${wasmUrl.pathname} is missing: run \`node filters/build.mjs authz-cache-test\` (or npm run build)`);
const { exports: x } = instantiateSync<Exports>(readFileSync(wasmUrl), {});
const s = (v: string): number => x.__retain(x.__newString(v));
const str = (p: number): string => {
  const v = x.__getString(p);
  x.__release(p);
  return v;
};
const sha = (v: string) => str(x.sha256Hex(s(v)));
const hmac = (k: string, v: string) => str(x.hmacHex(s(k), s(v)));
const key = (epoch: string, shape: string, headers: [string, string][], ip = "") =>
  str(x.keyHex(s(epoch), s(shape), s(headers.map(([n, v]) => `${n}\n${v}`).join("\n")), s(ip)));
const lines = (headers: [string, string][]) => headers.map(([n, v]) => `${n}\n${v}`).join("\n");
// Each call under its own epoch unless one is given: entries of earlier calls (other epochs) never match.
let epochs = 0;
const localLookup = (shape: string, a: [string, string][], b: [string, string][], ip = "", epoch = `e${epochs++}`) =>
  str(x.localLookup(s(epoch), s(shape), s(lines(a)), s(lines(b)), s(ip)));
const localFind = (epoch: string, shape: string, b: [string, string][], ip = "") => str(x.localFind(s(epoch), s(shape), s(lines(b)), s(ip)));
const check = (value: string, secret: string, nonce: string) => str(x.checkDirective(s(value), s(secret), s(nonce)));

// envoy.config.core.v3.Metadata's filter_metadata (field 1) over google.protobuf.Struct, encoded by protobufjs.
const proto = protobuf.Root.fromJSON({ nested: protobuf.common.get("google/protobuf/struct.proto")!.nested! });
protobuf.parse(`syntax = "proto3"; message Metadata { map<string, google.protobuf.Struct> filter_metadata = 1; map<string, bytes> typed_filter_metadata = 2; }`, proto);
const MetadataType = proto.lookupType("Metadata");
const ValueType = proto.lookupType("google.protobuf.Value");
const encodeMetadata = (m: Record<string, unknown>) => Buffer.from(MetadataType.encode(MetadataType.fromObject(m)).finish()).toString("hex");
const metadataText = (hex: string, keys: string[]) => str(x.metadataText(s(hex), s(keys.join(","))));

describe("authz-cache pure modules (AssemblyScript)", () => {
  it("SHA-256 equals node:crypto on every length around the block boundaries and on random text", () => {
    for (let n = 0; n < 200; n++) {
      const v = "a".repeat(n);
      assert.equal(sha(v), createHash("sha256").update(v).digest("hex"), `length ${n}`);
    }
    fc.assert(fc.property(fc.string({ maxLength: 300, unit: "grapheme" }), (v) => sha(v) === createHash("sha256").update(v, "utf8").digest("hex")), { numRuns: 300 });
  });

  it("HMAC-SHA256 equals node:crypto, including keys longer than a block", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 100 }), fc.string({ maxLength: 200 }), (k, v) => hmac(k, v) === createHmac("sha256", k).update(v).digest("hex")),
      { numRuns: 300 },
    );
  });

  const req = (extra: [string, string][] = []): [string, string][] => [[":method", "GET"], [":scheme", "http"], [":authority", "api"], [":path", "/a?x=1"], ["authorization", "Bearer t"], ...extra];

  it("keys on exactly the shape: unreferenced headers and the query do not change the key, referenced ones do", () => {
    const shape = "h:authorization,h:x-tenant";
    const base = key("e1", shape, req([["x-tenant", "acme"]]));
    assert.match(base, /^[0-9a-f]{64}$/);
    assert.equal(key("e1", shape, req([["x-tenant", "acme"], ["x-noise", "1"]])), base);
    assert.equal(key("e1", shape, [[":method", "GET"], [":scheme", "http"], [":authority", "api"], [":path", "/a?y=2"], ["authorization", "Bearer t"], ["x-tenant", "acme"]]), base, "query not in the shape");
    assert.notEqual(key("e1", `${shape},q`, req([["x-tenant", "acme"]])), key("e1", `${shape},q`, [[":method", "GET"], [":scheme", "http"], [":authority", "api"], [":path", "/a?y=2"], ["authorization", "Bearer t"], ["x-tenant", "acme"]]));
    assert.notEqual(key("e1", shape, req([["x-tenant", "other"]])), base);
    assert.notEqual(key("e1", shape, req()), base, "absent differs from present");
    assert.notEqual(key("e2", shape, req([["x-tenant", "acme"]])), base, "the epoch is in the key");
    assert.notEqual(key("e1", "h:authorization", req([["x-tenant", "acme"]])), base, "the shape is in the key");
    assert.notEqual(key("e1", "a,h:authorization", req(), "10.0.0.1"), key("e1", "a,h:authorization", req(), "10.0.0.2"));
    assert.equal(key("e1", "h:authorization", req(), "10.0.0.1"), key("e1", "h:authorization", req(), "10.0.0.2"), "the address only when keyed");
  });

  it("keys are injective over values: splits, repeats and empty values never collide", () => {
    const shape = "h:x-a,h:x-b";
    const variants: [string, string][][] = [
      [["x-a", "ab"]],
      [["x-a", "a"], ["x-a", "b"]],
      [["x-a", "a,b"]],
      [["x-a", "a"], ["x-b", "b"]],
      [["x-a", ""], ["x-b", "ab"]],
      [["x-a", ""]],
      [],
      [["x-b", ""]],
      [["x-a", "\u0000\u0000\u0000\u0001a"]],
      [["x-a", "a"], ["x-b", ""]],
    ];
    const keys = variants.map((v) => key("e", shape, req(v)));
    assert.equal(new Set(keys).size, keys.length);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom("x-a", "x-b"), fc.string({ maxLength: 6 })), { maxLength: 4 }), fc.array(fc.tuple(fc.constantFrom("x-a", "x-b"), fc.string({ maxLength: 6 })), { maxLength: 4 }), (p, q) => {
        const canon = (v: [string, string][]) => JSON.stringify([v.filter(([n]) => n === "x-a").map(([, b]) => b), v.filter(([n]) => n === "x-b").map(([, b]) => b)]);
        return (canon(p) === canon(q)) === (key("e", shape, req(p)) === key("e", shape, req(q)));
      }),
      { numRuns: 300 },
    );
  });

  it("finds a worker-local entry exactly when the SHA-256 keys are equal, whatever the lengths", () => {
    const shape = "a,h:authorization,h:x-a";
    const base: [string, string][] = [[":method", "GET"], [":scheme", "http"], [":authority", "api"], [":path", "/p?q=1"]];
    assert.equal(localLookup(shape, base, base), "hit");
    assert.equal(localLookup(shape, [...base, ["x-a", "1"]], [...base, ["x-a", "2"]]), "miss");
    assert.equal(localLookup(shape, [...base, ["x-unreferenced", "1"]], [...base, ["x-unreferenced", "2"]]), "hit");
    assert.equal(localLookup(shape, base, base, "10.0.0.1"), "hit");
    // A longer request in between leaves its bytes past the end of the shorter one's material.
    const short: [string, string][] = [...base, ["x-a", "s"]];
    assert.equal(localLookup(shape, short, short, "", "fixed"), "hit");
    assert.equal(localFind("fixed", shape, [...base, ["x-a", "a much longer value than the other one"]]), "miss");
    assert.equal(localFind("fixed", shape, short), "hit");
    assert.equal(localFind("another epoch", shape, short), "miss", "the epoch is part of the key");
    // Too long for the table (the filter then takes the SHA-256 path every time).
    assert.equal(localLookup(shape, [...base, ["authorization", "x".repeat(4096)]], base), "overflow");
    const value = fc.string({ maxLength: 21 });
    const request = fc.array(fc.tuple(fc.constantFrom("x-a", "authorization", ":path", "x-b"), value), { maxLength: 4 });
    fc.assert(
      fc.property(request, request, fc.constantFrom("", "10.0.0.1", "10.0.0.12"), (p, q, ip) => {
        const same = key("e", shape, p, ip) === key("e", shape, q, ip);
        return localLookup(shape, p, q, ip) === (same ? "hit" : "miss");
      }),
      { numRuns: 500 },
    );
  });

  it("refuses malformed, unsorted or duplicated shapes", () => {
    for (const bad of ["h:X-Upper", "h:", "z", "h:b,h:a", "q,q", "h:a b"]) assert.equal(key("e", bad, req()), "", bad);
  });

  it("accepts only a directive signed with the secret and bound to the stream's nonce", () => {
    const secret = "0123456789abcdef-secret";
    const nonce = randomBytes(16).toString("hex");
    const json = JSON.stringify({ v: 1, n: nonce, e: "b.0.0", x: Date.now() + 60_000, t: 60_000, k: ["h:authorization"], l: [200, 65536], d: "allow", s: 200, h: [["x-user-id", "alice"]], r: ["x-user-tier"], rh: [] });
    const mac = createHmac("sha256", secret).update(json).digest("hex");
    assert.equal(check(`${mac}.${json}`, secret, nonce), "");
    assert.equal(str(x.summary()), "allow 200 h:authorization x-user-id");
    assert.equal(check(`${mac}.${json}`, "another-secret-0123456", nonce), "bad MAC");
    assert.equal(check(`${mac}.${json.replace("alice", "mallo")}`, secret, nonce), "bad MAC");
    assert.equal(check(`${mac}.${json}`, secret, randomBytes(16).toString("hex")), "nonce");
    assert.equal(check(`${"0".repeat(64)}.${json}`, secret, nonce), "bad MAC");
    assert.equal(check("garbage", secret, nonce), "malformed");
    const noLimits = json.replace(',"l":[200,65536]', "");
    assert.notEqual(noLimits, json);
    assert.equal(check(`${createHmac("sha256", secret).update(noLimits).digest("hex")}.${noLimits}`, secret, nonce), "bad l");
    const v2 = JSON.stringify({ v: 2, n: nonce });
    assert.equal(check(`${createHmac("sha256", secret).update(v2).digest("hex")}.${v2}`, secret, nonce), "not a v1 directive");
  });

  it("validates the plugin configuration", () => {
    const ok = { secret: "s".repeat(16), skipToken: "t".repeat(16), epochCluster: "authz-http" };
    assert.equal(str(x.configError(s(JSON.stringify(ok)))), "");
    assert.match(str(x.configError(s(JSON.stringify({ ...ok, secret: "short" })))), /secret: must be at least 16/);
    assert.match(str(x.configError(s(JSON.stringify({ ...ok, skipToken: "short" })))), /skipToken/);
    assert.match(str(x.configError(s(JSON.stringify({ ...ok, bogus: 1 })))), /bogus/);
    assert.match(str(x.configError(s(JSON.stringify({ ...ok, pollMs: 2000, maxStalenessMs: 1000 })))), /pollMs/);
    assert.match(str(x.configError(s(JSON.stringify({ secret: ok.secret, skipToken: ok.skipToken })))), /epochCluster/);
    assert.equal(str(x.configError(s(JSON.stringify({ ...ok, metadataKeys: ["decisionId", "roles"] })))), "");
    assert.match(str(x.configError(s(JSON.stringify({ ...ok, metadataKeys: ["roles", "Roles"] })))), /metadataKeys\[1\]: repeats/);
    assert.match(str(x.configError(s(JSON.stringify({ ...ok, metadataKeys: ["bad key"] })))), /metadataKeys\[0\]/);
  });

  it("turns ext_authz's metadata into one base64 google.protobuf.Value header per configured key", () => {
    const fields = { subject: { stringValue: "alice" }, roles: { listValue: { values: [{ stringValue: "reader" }, { stringValue: "a,b" }] } }, n: { numberValue: 1.5 }, extra: { boolValue: true } };
    const hex = encodeMetadata({
      filterMetadata: { "other.ns": { fields: { subject: { stringValue: "not this one" } } }, "envoy.filters.http.ext_authz": { fields } },
      typedFilterMetadata: { x: Buffer.from([1, 2, 3]) },
    });
    const [pairs, unknown] = metadataText(hex, ["subject", "roles", "n", "peer"]).split("|");
    assert.equal(unknown, "unknown=1", "`extra` is not configured");
    const got = Object.fromEntries(pairs!.split(";").map((p) => p.split("=", 2) as [string, string]).map(([k, v]) => [k, v]));
    assert.deepEqual(Object.keys(got).sort(), ["x-md-n", "x-md-roles", "x-md-subject"]);
    for (const [key, header] of [["subject", "x-md-subject"], ["roles", "x-md-roles"], ["n", "x-md-n"]] as const) {
      const b64 = pairs!.split(";").find((p) => p.startsWith(`${header}=`))!.slice(header.length + 1);
      assert.equal(b64, Buffer.from(ValueType.encode(ValueType.fromObject(fields[key])).finish()).toString("base64"), key);
    }
    assert.equal(metadataText(encodeMetadata({}), ["subject"]), "|unknown=0");
    assert.equal(metadataText(hex.slice(0, hex.length - 6), ["subject"]), "null", "truncated bytes are refused");
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
      const r = metadataText(Buffer.from(b).toString("hex"), ["subject"]);
      return r === "null" || r.includes("|unknown=");
    }), { numRuns: 300 });
  });
});
