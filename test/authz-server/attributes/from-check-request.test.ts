// Request attributes from a CheckRequest: path without query, query map, lower-cased joined headers.
import assert from "node:assert/strict";
import { attributesFromCheckRequest } from "../../../authz-server/src/attributes/from-check-request.js";

describe("attributes/from-check-request", () => {
  it("attributes: path without query, first query value wins, lower-cased headers joined", () => {
    const a = attributesFromCheckRequest({
      attributes: {
        request: { http: { method: "get", path: "/p%20x?a=1&a=2&b=x%2By&c#frag", host: "H.example", headers: { "X-Test": "1" }, headerMap: { headers: [{ key: "x-test", value: "2" }] } } },
      },
    });
    assert.equal(a.method, "GET");
    assert.equal(a.path, "/p%20x");
    assert.deepEqual({ ...a.query }, { a: "1", b: "x+y", c: "" });
    assert.equal(a.host, "h.example");
    assert.equal(a.headers["x-test"], "1,2");
    assert.equal(a.headerCount, 2);
  });
});
