// Properties of the server's own CheckRequest decoder (authz-server/src/grpc/decode-check-request.ts):
// on random valid CheckRequests (proto-loader-encoded) it reads exactly what proto-loader reads; on
// random byte-level mutations it never throws anything but an Error (grpc-js then answers INTERNAL)
// and its output is accepted by the pipeline's first stage. (On mutated bytes the two decoders may
// legitimately differ: protobufjs ignores the wire type of known fields, ours skips mismatches.)
import assert from "node:assert/strict";
import fc from "fast-check";
import { attributesFromCheckRequest } from "../../authz-server/src/attributes/from-check-request.js";
import { decodeCheckRequest } from "../../authz-server/src/grpc/decode-check-request.js";
import { authorizationService } from "../../authz-server/src/grpc/protos.js";
import { checkRequest } from "../../tools/testing/authz-harness.js";
import { fuzzRuns, fuzzSeed } from "./helpers/fuzz.js";

const def = (authorizationService() as any).Check as { requestSerialize(v: object): Buffer; requestDeserialize(b: Buffer): any };

const seeds: Buffer[] = [
  def.requestSerialize(checkRequest({ path: "/api/orders/1?x=1", headers: { authorization: "Bearer abc.def.ghi", cookie: "a=b", "x-ü": "ünïcode" }, principal: "spiffe://cluster.local/ns/a/sa/b", contextExtensions: { tenant: "acme" } })),
  def.requestSerialize({ attributes: { request: { http: { method: "POST", path: "/p", headerMap: { headers: [{ key: "x-a", rawValue: Buffer.from([0xff, 0x00, 0x41]) }, { key: "x-b", value: "v" }] } } } } }),
  def.requestSerialize({ attributes: { source: { address: { pipe: { path: "/tmp/sock" } } }, destination: { principal: "d" }, request: { http: { host: "H.example", scheme: "https" } } } }),
];

function normalized(obj: unknown): unknown {
  const a = attributesFromCheckRequest(obj as never);
  return { ...a, headers: { ...a.headers }, query: { ...a.query }, contextExtensions: { ...a.contextExtensions } };
}

describe("fuzz: the server's CheckRequest decoder agrees with proto-loader on mutated bytes", function () {
  this.timeout(120_000);

  it("decodes the unmutated seeds exactly as proto-loader does (baseline)", () => {
    for (const b of seeds) assert.deepEqual(normalized(decodeCheckRequest(b)), normalized(def.requestDeserialize(b)));
  });

  it("reads random valid CheckRequests exactly as proto-loader does", () => {
    const text = fc.string({ maxLength: 12, unit: "grapheme" });
    const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/);
    const req = fc.record({
      method: fc.constantFrom("GET", "POST", "delete", ""),
      path: fc.oneof(text.map((t) => `/${t}`), fc.constant("")),
      host: text,
      headers: fc.dictionary(name, text, { maxKeys: 6 }),
      headerMap: fc.array(fc.record({ key: name, value: text, raw: fc.uint8Array({ maxLength: 6 }), useRaw: fc.boolean() }), { maxLength: 4 }),
      principal: text,
      address: fc.oneof(fc.ipV4(), fc.ipV6()),
      context: fc.dictionary(name, text, { maxKeys: 3 }),
    });
    fc.assert(
      fc.property(req, (r) => {
        const obj = {
          attributes: {
            source: { address: { socketAddress: { address: r.address, portValue: 1 } }, principal: r.principal },
            request: { http: { method: r.method, path: r.path, host: r.host, headers: r.headers, ...(r.headerMap.length ? { headerMap: { headers: r.headerMap.map((h) => (h.useRaw ? { key: h.key, rawValue: Buffer.from(h.raw) } : { key: h.key, value: h.value })) } } : {}) } },
            contextExtensions: r.context,
          },
        };
        const b = def.requestSerialize(obj);
        assert.deepEqual(normalized(decodeCheckRequest(b)), normalized(def.requestDeserialize(b)));
      }),
      { numRuns: fuzzRuns(1000), ...fuzzSeed() },
    );
  });

  it("never throws a non-Error on random byte edits, and the pipeline accepts whatever it returns", () => {
    const edit = fc.record({ at: fc.nat(), del: fc.nat({ max: 4 }), insert: fc.uint8Array({ maxLength: 4 }) });
    let accepted = 0;
    fc.assert(
      fc.property(fc.constantFrom(...seeds.keys()), fc.array(edit, { minLength: 1, maxLength: 4 }), (seed, edits) => {
        let b = seeds[seed]!;
        for (const e of edits) {
          const at = e.at % (b.length + 1);
          b = Buffer.concat([b.subarray(0, at), Buffer.from(e.insert), b.subarray(at + e.del)]);
        }
        let ours: unknown;
        try {
          ours = decodeCheckRequest(b);
        } catch (err) {
          assert.ok(err instanceof Error, `decoder threw a non-Error: ${String(err)}`);
          return;
        }
        accepted++;
        assert.doesNotThrow(() => normalized(ours), `the pipeline's first stage accepts whatever the decoder returns (bytes ${b.toString("hex")})`);
      }),
      { numRuns: fuzzRuns(3000), ...fuzzSeed() },
    );
    assert.ok(accepted > 0);
  });
});
