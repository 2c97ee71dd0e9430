// A failure inside the decision pipeline (a bug in a stage, not a dependency outage) gets its own
// answer — gRPC INTERNAL, HTTP 500, reason internal_error — and, like every answer, a decision-log line
// and a decision metric. The fault is injected into the real server's credential stage.
import assert from "node:assert/strict";
import { checkRequest, startHarness, type Harness } from "../../tools/testing/authz-harness.js";

const POLICY = `apiVersion: meshward.io/v1
kind: AuthzPolicy
spec:
  rules:
    - name: open
      allow: anonymous
`;

describe("authz-server: an internal pipeline failure", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness(POLICY);
  });
  after(async () => {
    await h.stop();
  });

  it("answers INTERNAL/500 internal_error (not UNAVAILABLE/503), logs a decision line and counts it", async () => {
    const healthy = await h.check(checkRequest({ path: "/before" }));
    assert.equal(healthy.allowed, true, "the anonymous rule allows while the pipeline works");

    const credentials = h.holder.current!.credentials;
    const sabotaged = Object.assign(credentials, {
      authenticate: () => Promise.reject(new TypeError("stage bug: cannot read properties of undefined")),
    });
    assert.equal(h.holder.current!.credentials, sabotaged);
    const before = h.logs.length;
    const r = await h.check(checkRequest({ method: "POST", path: "/orders/7", host: "api.example.com" }));

    assert.equal(r.allowed, false);
    assert.equal(r.grpcCode, 13, "gRPC INTERNAL, not UNAVAILABLE (14): no dependency failed");
    assert.equal(r.status, 500);
    assert.equal(r.reason, "internal_error");
    assert.equal(r.body.error, "internal_error");
    assert.equal(r.body.decisionId, r.decisionId);
    assert.equal(r.headers["x-meshward-decision-id"], r.decisionId);

    // The decision log is written after the answer: wait for it, bounded.
    const deadline = Date.now() + 2000;
    const decisionLine = () => h.logs.slice(before).find((l) => l.msg === "decision");
    while (!decisionLine() && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
    const line = decisionLine();
    assert.ok(line, `no decision-log line; logged: ${JSON.stringify(h.logs.slice(before))}`);
    assert.equal(line.decisionId, r.decisionId);
    assert.equal(line.allowed, false);
    assert.equal(line.status, 500);
    assert.equal(line.reason, "internal_error");
    assert.equal(line.method, "POST");
    assert.equal(line.path, "/orders/7");
    assert.equal(line.host, "api.example.com");

    const error = h.logs.slice(before).find((l) => l.msg === "decision pipeline failed");
    assert.ok(error, "an error line names the failure");
    assert.equal(error.code, "ERR_INTERNAL");
    assert.equal(error.decisionId, r.decisionId);
    assert.match(error.err, /stage bug/);

    assert.equal(await h.metric("meshward_authz_decisions_total", { result: "error", reason: "internal_error" }), 1);
    assert.equal(await h.metric("meshward_authz_decisions_total", { result: "unavailable" }), 0);
  });
});
