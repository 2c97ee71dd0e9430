// The lean CheckRequest decoder must read every field the pipeline uses exactly as proto-loader does,
// for real Envoy CheckRequests and for arbitrary ones, and reject malformed bytes.
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { attributesFromCheckRequest } from "../../authz-server/src/attributes/from-check-request.js";
import { decodeCheckRequest } from "../../authz-server/src/grpc/decode-check-request.js";
import { envoyPackageDefinition } from "../../authz-server/src/grpc/protos.js";
import { fixturePath } from "../fixtures/index.js";
import { checkRequest } from "../../tools/testing/authz-harness.js";

const check = (envoyPackageDefinition()["envoy.service.auth.v3.Authorization"] as any).Check;
const vectors = fixturePath("ext-authz");

/** What the pipeline sees: the normalized attributes (plain JSON, so prototypes and Buffers compare by value). */
const seen = (req: object) => JSON.parse(JSON.stringify(attributesFromCheckRequest(req as never)));

function assertSameAsProtoLoader(bytes: Buffer): void {
  const ours = decodeCheckRequest(bytes);
  const reference = check.requestDeserialize(bytes);
  assert.deepEqual(seen(ours), seen(reference));
  const rawValues = (r: any) => (r.attributes?.request?.http?.headerMap?.headers ?? []).map((h: any) => h.rawValue && Buffer.from(h.rawValue).toString("hex"));
  assert.deepEqual(rawValues(ours), rawValues(reference));
}

describe("grpc/decode-check-request", () => {
  it("reads real Envoy CheckRequests (Istio, OPA-Envoy) as proto-loader does", () => {
    const files = readdirSync(vectors).filter((f) => f.endsWith(".json") && !f.includes("fragment"));
    assert.ok(files.length >= 5, `${files.length} vectors`);
    for (const f of files) {
      const v = JSON.parse(readFileSync(join(vectors, f), "utf8"));
      const attributes = structuredClone(v.attributes);
      const time = attributes?.request?.time;
      if (typeof time === "string") attributes.request.time = { seconds: String(Math.floor(Date.parse(time) / 1000)), nanos: 0 };
      const bytes: Buffer = check.requestSerialize({ attributes });
      assertSameAsProtoLoader(bytes);
      const a = seen(decodeCheckRequest(bytes));
      assert.ok(a.method && a.path, `${f}: method and path decoded`);
    }
  });

  it("reads the fields it skips past without losing the ones it needs (metadata, tls, labels, body, pipe peers)", () => {
    const req = {
      attributes: {
        source: { address: { pipe: { path: "/run/envoy.sock", mode: 420 } }, service: "svc", labels: { app: "x" }, principal: "spiffe://cluster.local/ns/a/sa/b", certificate: "PEM" },
        destination: { address: { socketAddress: { address: "10.0.0.1", portValue: 443, protocol: "TCP" } }, principal: "spiffe://cluster.local/ns/d/sa/e" },
        request: {
          time: { seconds: "1700000000", nanos: 5 },
          http: {
            id: "9", method: "POST", path: "/p?q=1&q=2#frag", host: "Api.Example.com:8443", scheme: "https", query: "q=1", fragment: "f", size: "12",
            protocol: "HTTP/1.1", body: "hello", rawBody: Buffer.from([0, 1, 2]),
            headers: { ":method": "POST", "X-Mixed": "Ünïcødé ✓", "x-empty": "" },
          },
        },
        contextExtensions: { tenant: "acme", "": "blank key" },
        metadataContext: { filterMetadata: { "envoy.filters.http.jwt_authn": { fields: { sub: { stringValue: "alice" } } } } },
        tlsSession: { sni: "api.example.com" },
      },
    };
    assertSameAsProtoLoader(check.requestSerialize(req));
    const headerMapReq = {
      attributes: {
        request: { http: { method: "GET", path: "/", headerMap: { headers: [{ key: "Cookie", value: "a=1" }, { key: "cookie", rawValue: Buffer.from("b=\xe92", "latin1") }, { key: ":authority", value: "h" }] } } },
      },
    };
    assertSameAsProtoLoader(check.requestSerialize(headerMapReq));
    assert.equal(seen(decodeCheckRequest(check.requestSerialize(headerMapReq))).headers.cookie, "a=1,b=\u00e92");
  });

  it("agrees with proto-loader on arbitrary requests (property)", () => {
    const text = fc.string({ maxLength: 20 });
    const headers = fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }).filter((k) => k !== "__proto__"), fc.string({ maxLength: 30 }), { maxKeys: 8 });
    fc.assert(
      fc.property(text, text, text, headers, fc.option(text), fc.option(fc.array(fc.record({ key: text, value: text }), { maxLength: 4 })), (method, path, host, hs, principal, headerMap) => {
        const base = checkRequest({ method, path, host, headers: hs, ...(principal !== null ? { principal } : {}) }) as any;
        if (headerMap) base.attributes.request.http.headerMap = { headers: headerMap };
        assertSameAsProtoLoader(check.requestSerialize(base));
      }),
      { numRuns: 300 },
    );
  });

  it("decodes an empty message to an empty request, and rejects truncated or overrunning bytes", () => {
    assert.deepEqual(decodeCheckRequest(Buffer.alloc(0)), {});
    const bytes: Buffer = check.requestSerialize(checkRequest({ path: "/a", headers: { "x-a": "b" } }));
    assert.throws(() => decodeCheckRequest(bytes.subarray(0, bytes.length - 3)), RangeError);
    assert.throws(() => decodeCheckRequest(Buffer.from([0x0a, 0x05, 0x22, 0x09, 0x12, 0x00, 0x00])), RangeError);
    assert.throws(() => decodeCheckRequest(Buffer.from([0x0f])), /invalid wire type/);
    // Unknown groups are skipped, nested ones too, but hostile nesting is refused without recursion.
    assert.deepEqual(decodeCheckRequest(Buffer.from([0x1b, 0x2b, 0x2c, 0x1c])), {});
    assert.throws(() => decodeCheckRequest(Buffer.alloc(100_000, 0x1b)), /nested too deeply/);
  });
});
