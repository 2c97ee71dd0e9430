// The hand-written CheckResponse encoder must produce bytes that decode, with Envoy's own proto
// definitions, to exactly what protobufjs would have encoded.
import assert from "node:assert/strict";
import { encodeCheckResponse } from "../../authz-server/src/grpc/encode-check-response.js";
import { envoyPackageDefinition } from "../../authz-server/src/grpc/protos.js";
import type { CheckResponseObject } from "../../authz-server/src/response/check-response.js";

const check = (envoyPackageDefinition()["envoy.service.auth.v3.Authorization"] as any).Check;
const h = (key: string, value: string) => ({ header: { key, value }, appendAction: "OVERWRITE_IF_EXISTS_OR_ADD" as const });
const decode = (b: Buffer) => check.responseDeserialize(b);
/** protobufjs writes an explicit zero status code; both decode to the same message apart from that. */
const normalize = (o: any) => JSON.parse(JSON.stringify(o).replace(/"status":\{"code":0\}/, '"status":{}'));

describe("grpc/encode-check-response", () => {
  it("encodes an allow response like protobufjs (headers, removals, response headers, metadata with a list)", () => {
    const res: CheckResponseObject = {
      status: { code: 0 },
      okResponse: {
        headers: [h("x-user-id", "alice"), h("x-roles", "reader,writer"), h("x-empty", "")],
        headersToRemove: ["authorization", "x-subject"],
        responseHeadersToAdd: [h("x-meshward-decision-id", "abc")],
      },
      dynamicMetadata: { fields: { subject: { stringValue: "alice" }, roles: { listValue: { values: [{ stringValue: "reader" }, { stringValue: "writer" }] } } } },
    };
    assert.deepEqual(normalize(decode(encodeCheckResponse(res))), normalize(decode(check.responseSerialize(res))));
  });

  it("encodes a deny response with a long body, non-ASCII values and multi-byte lengths", () => {
    const res: CheckResponseObject = {
      status: { code: 7, message: "insufficient_permissions" },
      deniedResponse: {
        status: { code: 403 },
        headers: [h("content-type", "application/json"), h("x-note", "Grüße ✓ ".repeat(40))],
        body: JSON.stringify({ error: "forbidden", reason: "x".repeat(300) }),
      },
      dynamicMetadata: { fields: { reason: { stringValue: "é".repeat(200) } } },
    };
    const ours = decode(encodeCheckResponse(res));
    assert.deepEqual(ours, decode(check.responseSerialize(res)));
    assert.equal(ours.deniedResponse.status.code, "Forbidden");
    assert.equal(ours.status.code, 7);
  });
});
