// Hostile requests to Check over loopback gRPC against the real server: oversized, malformed and
// adversarial inputs each get a deny with a machine-readable reason, and the server keeps serving.
import assert from "node:assert/strict";
import { sign as cryptoSign } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { checkRequest, startHarness, testClock, type Harness } from "../../tools/testing/authz-harness.js";
import { startJwksServer, type JwksServer } from "../../tools/testing/jwks-server.js";
import { newKey, signJwt, type TestKey } from "../../tools/testing/tokens.js";
import { RawCheckClient, withRawBytes, type Answer } from "./helpers/raw-check.js";
import { jwtPolicy } from "../../tools/testing/policy.js";

const ISS = "https://idp.hardening.test/";
const NOW_S = 1_800_000_000;
const b64 = (v: unknown) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");

const policy = (jwksUrl: string) => jwtPolicy({ issuer: ISS, audiences: ["orders-api"], jwks: { uri: jwksUrl, cooldown: "10s" }, algorithms: ["RS256", "ES256"] }, `
  rules:
    - name: public
      match: { paths: ["/public/**"] }
      allow: anonymous
    - name: api
      match: { paths: ["/api/**"] }
      require: { user: true }
`);

describe("hardening: hostile requests to Check get a deny with a reason and never break the server", function () {
  this.timeout(30_000);
  let jwks: JwksServer;
  let h: Harness;
  let raw: RawCheckClient;
  let rsa: TestKey;
  let serial = 0;
  const claims = (extra: Record<string, unknown> = {}) => ({ iss: ISS, sub: "alice", aud: "orders-api", iat: NOW_S - 10, exp: NOW_S + 600, jti: `j${++serial}`, ...extra });
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

  before(async () => {
    rsa = newKey("RS256");
    jwks = await startJwksServer([rsa.jwk]);
    h = await startHarness(policy(jwks.url), { clock: testClock(NOW_S * 1000) });
    raw = new RawCheckClient(h.grpcPort);
  });
  after(async () => {
    if (latencies.length) console.log(`      hostile Checks: ${latencies.length}, slowest answer ${Math.max(...latencies).toFixed(0)} ms (client-side, incl. encoding)`);
    raw?.close();
    await h?.stop();
    await jwks?.stop();
  });

  /** The server still allows a freshly signed valid token (not from the verified-token cache). */
  async function assertStillServing(): Promise<void> {
    const ok = await raw.send(checkRequest({ path: "/api/orders", headers: bearer(signJwt(rsa, claims())) }));
    assert.equal(ok.allowed, true, `valid request after the hostile one: ${ok.reason}`);
  }

  function assertDenied(a: Answer, reasons: readonly string[]): void {
    assert.equal(a.allowed, false, "hostile request was allowed");
    assert.notEqual(a.grpcCode, 0, "denied answers carry a non-OK gRPC status");
    assert.ok(a.reason.length > 0, "deny carries a reason");
    assert.ok(reasons.includes(a.reason), `reason ${a.reason} not in [${reasons.join(", ")}]`);
    assert.ok(a.status >= 400 && a.status < 500, `client error status, got ${a.status}`);
  }

  const latencies: number[] = [];
  async function expectDeny(req: object | Buffer, reasons: readonly string[]): Promise<Answer> {
    const t = performance.now();
    const a = await raw.send(req);
    latencies.push(performance.now() - t);
    assertDenied(a, reasons);
    await assertStillServing();
    return a;
  }

  describe("size", () => {
    // A 1 MB token also breaks the 64 KiB header-bytes limit, which is checked first (431).
    it("denies a 1 MB JWT-shaped bearer token with 431 request_too_large", async () => {
      const token = `${b64({ alg: "RS256", kid: rsa.kid })}.${"A".repeat(1024 * 1024)}.sig`;
      const a = await expectDeny(checkRequest({ path: "/api/orders", headers: bearer(token) }), ["request_too_large"]);
      assert.equal(a.status, 431);
    });

    it("denies a 1 MB opaque bearer token with 431 request_too_large", async () => {
      const a = await expectDeny(checkRequest({ path: "/api/orders", headers: bearer("x".repeat(1024 * 1024)) }), ["request_too_large"]);
      assert.equal(a.status, 431);
    });

    it("denies a 40 KiB JWT (under the header limit, over the 16 KiB credential limit) with 401 token_too_large", async () => {
      const a = await expectDeny(checkRequest({ path: "/api/orders", headers: bearer(signJwt(rsa, claims({ pad: "p".repeat(40 * 1024) }))) }), ["token_too_large"]);
      assert.equal(a.status, 401);
    });

    it("denies a 40 KiB opaque bearer token with 401 token_too_large", async () => {
      const a = await expectDeny(checkRequest({ path: "/api/orders", headers: bearer("x".repeat(40 * 1024)) }), ["token_too_large"]);
      assert.equal(a.status, 401);
    });

    it("denies 10,000 headers (map form) with 431 request_too_large", async () => {
      const headers: Record<string, string> = {};
      for (let i = 0; i < 10_000; i++) headers[`x-h-${i}`] = "v";
      const a = await expectDeny(checkRequest({ path: "/public/x", headers }), ["request_too_large"]);
      assert.equal(a.status, 431);
    });

    it("denies 10,000 headers (header_map form with raw_value bytes) with 431 request_too_large", async () => {
      const req = checkRequest({ path: "/public/x" }) as any;
      const http = req.attributes.request.http;
      http.headerMap = { headers: Array.from({ length: 10_000 }, (_, i) => ({ key: `x-h-${i}`, rawValue: Buffer.from("v") })) };
      delete http.headers;
      const a = await expectDeny(req, ["request_too_large"]);
      assert.equal(a.status, 431);
    });

    it("denies one 1 MB header value with 431 request_too_large, even on an anonymous route", async () => {
      const a = await expectDeny(checkRequest({ path: "/public/x", headers: { "x-big": "b".repeat(1024 * 1024) } }), ["request_too_large"]);
      assert.equal(a.status, 431);
    });

    it("denies a 1 MB path on a protected route without crashing", async () => {
      await expectDeny(checkRequest({ path: `/api/${"p".repeat(1024 * 1024)}` }), ["request_too_large", "missing_credentials"]);
    });

    it("refuses a CheckRequest above gRPC's 4 MiB receive limit with RESOURCE_EXHAUSTED (Envoy then applies failure_mode_allow=false: 403) and keeps serving", async () => {
      const req = checkRequest({ path: "/api/orders", headers: { "x-pad": "z".repeat(5 * 1024 * 1024) } });
      await assert.rejects(raw.send(req), (err: grpc.ServiceError) => err.code === grpc.status.RESOURCE_EXHAUSTED);
      await assertStillServing();
    });
  });

  describe("wire: bytes that are not a CheckRequest", () => {
    const garbage: [string, () => Buffer][] = [
      ["random bytes", () => Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) & 255))],
      ["a truncated CheckRequest", () => raw.encode(checkRequest({ path: "/api/orders", headers: { authorization: "Bearer x" } })).subarray(0, 40)],
      ["a field with a length prefix beyond the message", () => Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01])],
      ["metadata_context with a google.protobuf.Value list nested 20,000 deep", () => deepMetadataRequest(20_000)],
      ["an empty message (no attributes at all)", () => Buffer.alloc(0)],
    ];
    for (const [what, bytes] of garbage) {
      it(`answers ${what} with a gRPC error or a deny, and keeps serving`, async () => {
        const outcome = await raw.send(bytes()).then(
          (a) => (a.allowed ? "allowed" : `deny:${a.reason}`),
          (err: grpc.ServiceError) => `grpc:${err.code}`,
        );
        console.log(`        → ${outcome}`);
        assert.ok(outcome !== "allowed", "garbage was allowed");
        assert.ok(outcome !== `grpc:${grpc.status.DEADLINE_EXCEEDED}`, "the server hung");
        await assertStillServing();
      });
    }
  });

  describe("bytes: invalid UTF-8 and NUL", () => {
    const MARK = "MARKERMARKERMARK"; // 16 bytes
    const junk = Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x28, 0x8c, 0xbc, 0x80, 0xed, 0xa0]);

    it("denies an authorization header whose bytes are invalid UTF-8 (string field on the wire)", async () => {
      const bytes = withRawBytes(raw, checkRequest({ path: "/api/orders", headers: { authorization: `Bearer ${MARK}` } }), MARK, junk);
      await expectDeny(bytes, ["unsupported_credential", "token_malformed", "invalid_token"]);
    });

    it("denies a JWT whose header segment is replaced by invalid UTF-8 bytes", async () => {
      const [, p, s] = signJwt(rsa, claims()).split(".");
      const bytes = withRawBytes(raw, checkRequest({ path: "/api/orders", headers: { authorization: `Bearer ${MARK}.${p}.${s}` } }), MARK, junk);
      await expectDeny(bytes, ["unsupported_credential", "token_malformed"]);
    });

    it("denies a path whose bytes are invalid UTF-8 on a protected route", async () => {
      const bytes = withRawBytes(raw, checkRequest({ path: `/api/${MARK}` }), MARK, junk);
      await expectDeny(bytes, ["missing_credentials", "no_matching_rule"]);
    });

    it("does not let invalid UTF-8 in the path reach an anonymous rule by accident", async () => {
      // "/public" + junk is not under "/public/**": the glob must not match across the mangled bytes.
      const bytes = withRawBytes(raw, checkRequest({ path: `/public${MARK}` }), MARK, junk);
      const a = await raw.send(bytes);
      assertDenied(a, ["no_matching_rule"]);
    });

    it("denies a JWT whose decoded payload is invalid UTF-8", async () => {
      const h64 = b64({ alg: "RS256", kid: rsa.kid, typ: "JWT" });
      const token = `${h64}.${junk.toString("base64url")}.${"A".repeat(342)}`;
      await expectDeny(checkRequest({ path: "/api/orders", headers: bearer(token) }), ["token_malformed"]);
    });

    it("denies header_map raw_value bytes that are invalid UTF-8 in the authorization header", async () => {
      const req = checkRequest({ path: "/api/orders" }) as any;
      req.attributes.request.http.headerMap = { headers: [{ key: "authorization", rawValue: Buffer.concat([Buffer.from("Bearer "), junk]) }] };
      await expectDeny(req, ["unsupported_credential", "token_malformed"]);
    });

    const nulCases: [string, () => Record<string, string>, string, string[]][] = [
      ["a NUL inside the bearer token", () => bearer(signJwt(rsa, claims()).replace(".", ".\u0000")), "/api/orders", ["token_malformed", "unsupported_credential"]],
      ["a NUL after a valid token", () => bearer(`${signJwt(rsa, claims())}\u0000`), "/api/orders", ["token_malformed", "unsupported_credential"]],
      ["a NUL inside the scheme", () => ({ authorization: `Bea\u0000rer ${signJwt(rsa, claims())}` }), "/api/orders", ["unsupported_credential", "missing_credentials"]],
      ["NULs in header names and values", () => ({ "x-\u0000evil": "\u0000\u0000", authorization: "\u0000" }), "/api/orders", ["unsupported_credential", "missing_credentials"]],
      ["a NUL in the path before an anonymous prefix", () => ({}), "/api\u0000/../public/x", ["no_matching_rule", "missing_credentials"]],
    ];
    for (const [what, headers, path, reasons] of nulCases) {
      it(`denies ${what}`, async () => {
        await expectDeny(checkRequest({ path, headers: headers() }), reasons);
      });
    }
  });

  describe("JSON structure inside the token", () => {
    it("denies deeply nested claims (5,000 levels) with a bad signature, without a stack overflow", async () => {
      const nested = "[".repeat(5000) + "]".repeat(5000);
      const payload = Buffer.from(`{"iss":"${ISS}","deep":${nested}}`).toString("base64url");
      const token = `${b64({ alg: "RS256", kid: rsa.kid })}.${payload}.${"A".repeat(342)}`;
      assert.ok(token.length < 16 * 1024);
      await expectDeny(checkRequest({ path: "/api/orders", headers: bearer(token) }), ["invalid_signature"]);
    });

    it("denies a deeply nested object in the JOSE header", async () => {
      const nested = '{"a":'.repeat(1500) + "1" + "}".repeat(1500);
      const header = Buffer.from(`{"alg":"RS256","kid":"${rsa.kid}","x":${nested}}`).toString("base64url");
      const token = `${header}.${b64(claims())}.${"A".repeat(342)}`;
      await expectDeny(checkRequest({ path: "/api/orders", headers: bearer(token) }), ["invalid_signature"]);
    });

    it("handles a validly signed token with deeply nested claims (allowed: the issuer signed it) and stays up", async () => {
      let deep: unknown = 1;
      for (let i = 0; i < 2000; i++) deep = [deep];
      const a = await raw.send(checkRequest({ path: "/api/orders", headers: bearer(signJwt(rsa, claims({ deep }))) }));
      assert.equal(a.allowed, true, a.reason);
      await assertStillServing();
    });

    it("denies exp = 1e400 (parsed as Infinity) as malformed", async () => {
      const text = JSON.stringify(claims()).replace(/"exp":\d+/, '"exp":1e400');
      const token = signedPartRaw(text);
      await expectDeny(checkRequest({ path: "/api/orders", headers: bearer(token) }), ["token_malformed"]);
    });

    const headerCases: [string, Record<string, unknown>, string[]][] = [
      ["an 8 KiB kid", { kid: "k".repeat(8 * 1024) }, ["unknown_kid"]],
      ["a kid that is a number", { kid: 42 }, ["token_malformed"]],
      ["a kid that is an object", { kid: { $ne: null } }, ["token_malformed"]],
      ["a crit list with 1,000 entries", { crit: Array.from({ length: 1000 }, (_, i) => `e${i}`) }, ["unsupported_crit"]],
      ["an empty crit list", { crit: [] }, ["unsupported_crit", "token_malformed"]],
      ["crit that is a string", { crit: "exp" }, ["unsupported_crit", "token_malformed"]],
      ["alg that is an array", { alg: ["RS256"] }, ["token_malformed"]],
      ["alg that is empty", { alg: "" }, ["token_malformed"]],
      ["alg that is 8 KiB long", { alg: "R".repeat(8 * 1024) }, ["algorithm_not_allowed"]],
    ];
    for (const [what, header, reasons] of headerCases) {
      it(`denies a JOSE header with ${what}`, async () => {
        // Signed with the real RS256 key: the only defect is the header itself.
        const token = signRaw(JSON.stringify({ alg: "RS256", kid: rsa.kid, typ: "JWT", ...header }), JSON.stringify(claims()));
        await expectDeny(checkRequest({ path: "/api/orders", headers: bearer(token) }), reasons);
      });
    }

    // jku/x5u are never followed; an attacker signs with their own key and points the URL at their key set.
    for (const [what, member] of [["jku", "jku"], ["x5u", "x5u"]] as const) {
      it(`denies an attacker-signed token with an 8 KiB ${what} under a known kid`, async () => {
        const attacker = newKeyCached();
        const token = signJwt({ ...attacker, kid: rsa.kid }, claims(), { [member]: `http://127.0.0.1:1/${"u".repeat(8 * 1024)}` });
        await expectDeny(checkRequest({ path: "/api/orders", headers: bearer(token) }), ["invalid_signature"]);
      });
    }

    it("denies a header with a __proto__ member instead of alg (no prototype pollution)", async () => {
      const header = Buffer.from(`{"__proto__":{"alg":"RS256","kid":"${rsa.kid}"}}`).toString("base64url");
      const token = `${header}.${b64(claims())}.${"A".repeat(342)}`;
      await expectDeny(checkRequest({ path: "/api/orders", headers: bearer(token) }), ["token_malformed"]);
      assert.equal(({} as Record<string, unknown>).alg, undefined);
    });

    it("bounds JWKS refetches when attackers rotate random kids (cooldown), and keeps verifying known keys", async () => {
      const before = jwks.fetches;
      for (let i = 0; i < 50; i++) {
        const a = await raw.send(checkRequest({ path: "/api/orders", headers: bearer(signJwt({ ...newKeyCached(), kid: `rand-${i}-${Math.random()}` }, claims())) }));
        assertDenied(a, ["unknown_kid"]);
      }
      assert.ok(jwks.fetches - before <= 1, `${jwks.fetches - before} JWKS fetches for 50 random kids`);
      await assertStillServing();
    });
  });

  describe("duplicate JSON members (RFC 7515 §4: reject or use the last; we reject, to avoid parser differentials)", () => {
    const dupCases: [string, string, string][] = [
      ["alg none then RS256 in the header", `{"alg":"none","alg":"RS256","kid":"KID"}`, "{}"],
      ["alg RS256 then none in the header", `{"alg":"RS256","alg":"none","kid":"KID"}`, "{}"],
      ["two kids in the header", `{"alg":"RS256","kid":"nope","kid":"KID"}`, "{}"],
      ["two subs in the payload", `{"alg":"RS256","kid":"KID"}`, `{"sub":"admin","sub":"alice"}`],
      ["two isses in the payload", `{"alg":"RS256","kid":"KID"}`, `{"iss":"https://evil.test/","iss":"${ISS}"}`],
    ];
    for (const [what, headerJson, extra] of dupCases) {
      it(`denies a validly signed token with ${what}`, async () => {
        const base = JSON.stringify(claims()).slice(0, -1);
        const more = extra === "{}" ? "" : `,${extra.slice(1, -1)}`;
        const payloadJson = `${base}${more}}`;
        const token = signRaw(headerJson.replace("KID", rsa.kid), payloadJson);
        await expectDeny(checkRequest({ path: "/api/orders", headers: bearer(token) }), ["token_malformed", "algorithm_not_allowed", "unknown_kid"]);
      });
    }
  });

  describe("encoding: non-canonical base64url and trailing garbage", () => {
    const variants: [string, (t: string) => string, string[]][] = [
      ["padding on the header", (t) => t.replace(".", "==."), ["token_malformed"]],
      ["padding on the signature", (t) => `${t}=`, ["token_malformed"]],
      ["standard base64 characters (+ and /)", (t) => { const [a, b, c] = t.split("."); return `${a}.${b}.${c!.replace(/-/g, "+").replace(/_/g, "/")}${/[-_]/.test(c!) ? "" : "+"}`; }, ["token_malformed"]],
      ["non-zero trailing bits in the signature", (t) => flipTrailingBits(t), ["token_malformed"]],
      ["whitespace inside the payload", (t) => { const [a, b, c] = t.split("."); return `${a}.${b!.slice(0, 10)} ${b!.slice(10)}.${c}`; }, ["token_malformed", "unsupported_credential"]],
      ["a newline inside the payload", (t) => { const [a, b, c] = t.split("."); return `${a}.${b!.slice(0, 10)}\n${b!.slice(10)}.${c}`; }, ["token_malformed", "unsupported_credential"]],
      ["a fourth segment", (t) => `${t}.Zm9v`, ["unsupported_credential", "token_malformed"]],
      ["a trailing dot", (t) => `${t}.`, ["unsupported_credential", "token_malformed"]],
      ["trailing garbage after a space", (t) => `${t} garbage`, ["token_malformed", "unsupported_credential"]],
      ["trailing garbage appended to the signature", (t) => `${t}AAAA`, ["invalid_signature"]],
      ["a truncated signature", (t) => t.slice(0, -4), ["invalid_signature", "token_malformed"]],
      ["an empty signature", (t) => t.slice(0, t.lastIndexOf(".") + 1), ["invalid_signature", "token_malformed"]],
      ["a leading dot", (t) => `.${t}`, ["unsupported_credential", "token_malformed"]],
      ["a JWS JSON serialization instead of compact", (t) => { const [a, b, c] = t.split("."); return JSON.stringify({ payload: b, signatures: [{ protected: a, signature: c }] }); }, ["unsupported_credential"]],
    ];
    for (const [what, mangle, reasons] of variants) {
      it(`denies a valid token mangled with ${what}`, async () => {
        await expectDeny(checkRequest({ path: "/api/orders", headers: bearer(mangle(signJwt(rsa, claims()))) }), reasons);
      });
    }
  });

  // Helpers that need the test key.
  let cachedKey: TestKey | undefined;
  function newKeyCached(): TestKey {
    return (cachedKey ??= newKey("RS256"));
  }
  function signRaw(headerJson: string, payloadJson: string): string {
    const input = `${Buffer.from(headerJson).toString("base64url")}.${Buffer.from(payloadJson).toString("base64url")}`;
    return `${input}.${rsaSign(input)}`;
  }
  function signedPartRaw(payloadJson: string): string {
    return signRaw(JSON.stringify({ alg: "RS256", kid: rsa.kid, typ: "JWT" }), payloadJson);
  }
  function rsaSign(input: string): string {
    return cryptoSign("sha256", Buffer.from(input), rsa.privateKey).toString("base64url");
  }
});

/** Changes the last base64url character so its unused low bits are non-zero (same decoded bytes). */
function flipTrailingBits(token: string): string {
  const sig = token.slice(token.lastIndexOf(".") + 1);
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const unusedBits = (sig.length * 6) % 8; // 2048-bit RSA: 342 chars → 2052 bits → 4 unused
  assert.ok(unusedBits > 0, "signature length leaves no unused bits");
  const last = alphabet.indexOf(sig.at(-1)!);
  const flipped = alphabet[last ^ 1]!;
  return token.slice(0, -1) + flipped;
}

/** Length-delimited protobuf field. */
function field(no: number, body: Buffer): Buffer {
  const varint = (n: number): number[] => {
    const out: number[] = [];
    for (; n > 0x7f; n >>>= 7) out.push((n & 0x7f) | 0x80);
    out.push(n);
    return out;
  };
  return Buffer.concat([Buffer.from(varint((no << 3) | 2)), Buffer.from(varint(body.length)), body]);
}

/**
 * CheckRequest{ attributes: { metadata_context: { filter_metadata: { "x": Struct{ "v": Value{ list_value:
 * { values: [ Value{ list_value: … } ] } } } } } } } nested `depth` times (protobuf decoders recurse).
 */
function deepMetadataRequest(depth: number): Buffer {
  let value: Buffer = Buffer.alloc(0); // an empty Value
  for (let i = 0; i < depth; i++) value = field(6, field(1, value)); // Value.list_value(6) → ListValue.values(1)
  const struct = field(1, Buffer.concat([field(1, Buffer.from("v")), field(2, value)])); // Struct.fields map entry
  const metadata = field(1, Buffer.concat([field(1, Buffer.from("x")), field(2, struct)])); // Metadata.filter_metadata entry
  return field(1, field(11, metadata)); // CheckRequest.attributes(1).metadata_context(11)
}
