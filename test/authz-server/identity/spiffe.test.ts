// SPIFFE IDs as the identity stage parses them: Istio's ns/sa form, other paths, and invalid IDs.
import assert from "node:assert/strict";
import { parseSpiffeId } from "../../../authz-server/src/identity/spiffe.js";

describe("identity/spiffe", () => {
  it("SPIFFE IDs: Istio form, other paths, and invalid IDs", () => {
    assert.deepEqual(parseSpiffeId("spiffe://cluster.local/ns/billing/sa/api"), { trustDomain: "cluster.local", namespace: "billing", serviceAccount: "api" });
    assert.deepEqual(parseSpiffeId("spiffe://example.org/workload/x"), { trustDomain: "example.org", namespace: "", serviceAccount: "" });
    for (const bad of ["https://cluster.local/ns/a/sa/b", "spiffe://Cluster.Local/ns/a/sa/b", "spiffe://cluster.local/ns/../sa/b", "spiffe://cluster.local/ns//sa/b", "spiffe://td:8080/x"]) {
      assert.equal(parseSpiffeId(bad), undefined, bad);
    }
  });
});
