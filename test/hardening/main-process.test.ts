// The real main.ts process: regular expressions the policy applies to attacker-controlled input
// (path globs, CEL matches()) cannot stall the event loop, and graceful shutdown — SIGTERM while Checks
// are in flight (each held ~1.5 s by a slow loopback introspection endpoint) turns /readyz to 503
// first, answers every in-flight Check, then exits 0.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkRequest } from "../../tools/testing/authz-harness.js";
import { startIntrospectionServer, type IntrospectionServer } from "../../tools/testing/introspection-server.js";
import { startMain, type MainProcess } from "../../tools/testing/main-process.js";
import { writePolicyFile, type PolicyFile } from "../../tools/testing/policy.js";
import { RawCheckClient, type Answer } from "./helpers/raw-check.js";

describe("hardening: the real main process under hostile regex input, then graceful shutdown", function () {
  this.timeout(60_000);
  let policy: PolicyFile | undefined;
  let introspection: IntrospectionServer;
  let main: MainProcess;

  before(async () => {
    introspection = await startIntrospectionServer({ id: "meshward", secret: "shutdown-test-client-secret" });
    for (let i = 0; i < 20; i++) introspection.tokens.set(`opaque-${i}`, { sub: `user-${i}` });
    policy = writePolicyFile(
      `apiVersion: meshward.io/v1
kind: AuthzPolicy
spec:
  providers:
    introspection:
      - name: legacy
        endpoint: ${introspection.url}
        clientId: meshward
        clientSecret: { file: secret }
        timeout: 5s
  rules:
    - name: api
      match: { paths: ["/api/**"] }
      require: { user: true }
    - name: deep
      match: { paths: ["/deep/**/a/**/a/**/b"] }
      allow: anonymous
    - name: corp-ids
      match: { paths: ["/corp/**"] }
      allow: anonymous
      when: 'request.headers["x-id"].matches("^([a-z0-9]+)*@corp$")'
`,
    );
    writeFileSync(join(policy.dir, "secret"), "shutdown-test-client-secret\n");
    main = await startMain({ policy: policy.file });
  });
  after(async () => {
    await main?.stop(2000);
    await introspection?.close();
    policy?.remove();
  });

  // Each Check below would take minutes with a backtracking regex engine; the hang guard (gRPC
  // deadline) turns a stall into a failure. A valid request must still be answered afterwards.
  const HANG_GUARD_MS = 10_000;
  const hostileRegexInputs: [string, () => object, string][] = [
    ["a 3,000-segment path against a policy glob with three **", () => checkRequest({ path: `/deep/${Array.from({ length: 3000 }, () => "a").join("/")}` }), "no_matching_rule"],
    ["a 40-character header against a CEL matches() with nested quantifiers", () => checkRequest({ path: "/corp/x", headers: { "x-id": `${"a".repeat(40)}!` } }), "condition_not_met"],
  ];
  for (const [what, req, reason] of hostileRegexInputs) {
    it(`answers ${what} within the hang guard and keeps serving`, async () => {
      const client = new RawCheckClient(main.grpcPort);
      try {
        const a = await client.send(req(), HANG_GUARD_MS);
        assert.equal(a.allowed, false);
        assert.equal(a.reason, reason);
        const ok = await client.send(checkRequest({ path: "/corp/x", headers: { "x-id": "alice@corp" } }), HANG_GUARD_MS);
        assert.equal(ok.allowed, true, ok.reason);
      } finally {
        client.close();
      }
    });
  }

  it("on SIGTERM reports not ready first, answers all 20 in-flight Checks, and exits 0", async () => {
    assert.equal((await main.http("/readyz")).status, 200);
    introspection.mode = "slow";
    introspection.slowMs = 1500;
    const client = new RawCheckClient(main.grpcPort);
    try {
      const inflight: Promise<Answer>[] = [];
      for (let i = 0; i < 20; i++) inflight.push(client.send(checkRequest({ path: "/api/x", headers: { authorization: `Bearer opaque-${i}` } }), 20_000));
      const deadline = Date.now() + 5000;
      while (introspection.calls < 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(introspection.calls, 20, "all 20 Checks are waiting on the introspection endpoint");

      const sigtermAt = Date.now();
      main.child.kill("SIGTERM");
      let readyAfterSigterm: number | undefined;
      for (let i = 0; i < 20 && readyAfterSigterm === undefined; i++) {
        const r = await main.http("/readyz").catch(() => undefined);
        if (r && r.status === 503) {
          readyAfterSigterm = Date.now() - sigtermAt;
          assert.match(r.text, /draining/);
        }
        await new Promise((res) => setTimeout(res, 25));
      }
      assert.notEqual(readyAfterSigterm, undefined, "/readyz answered 503 (draining) while Checks were in flight");

      const answers = await Promise.all(inflight);
      const drainedMs = Date.now() - sigtermAt;
      assert.deepEqual(answers.map((a) => a.allowed), Array(20).fill(true), answers.map((a) => a.reason).join(" "));
      const code = await main.exited;
      assert.equal(code, 0);
      assert.match(main.output(), /shutting down/);
      console.log(`      shutdown: /readyz 503 after ${readyAfterSigterm} ms, 20/20 in-flight answered, drained in ${drainedMs} ms, exit ${code}`);
    } finally {
      client.close();
    }
  });
});
