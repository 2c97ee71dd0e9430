// Hot reload: a valid change is served atomically, a broken file is rejected and the old policy keeps
// serving, and JWKS outages answer UNAVAILABLE/503 rather than 401/403.
import assert from "node:assert/strict";
import { renameSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { checkRequest, startHarness, type Harness } from "../../tools/testing/authz-harness.js";
import { newKey, signJwt } from "../../tools/testing/tokens.js";

const policy = (paths: string) => `
apiVersion: meshward.io/v1
kind: AuthzPolicy
spec:
  rules:
    - name: open
      match: { paths: ${paths} }
      allow: anonymous
`;

async function until(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
}

describe("authz-server policy reload (component)", function () {
  this.timeout(30_000);
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness(policy('["/a"]'));
  });
  afterEach(() => h.stop());

  it("serves a changed policy after reload() and exposes the new version", async () => {
    const v1 = h.holder.current!.policy.version;
    assert.equal((await h.check(checkRequest({ path: "/b" }))).allowed, false);
    writeFileSync(h.policyFile, policy('["/b"]'));
    assert.equal(h.holder.reload(), true);
    assert.equal((await h.check(checkRequest({ path: "/b" }))).allowed, true);
    assert.notEqual(h.holder.current!.policy.version, v1);
    assert.match((await h.http("/metrics")).text, new RegExp(`meshward_authz_policy_info\\{version="${h.holder.current!.policy.version}"\\} 1`));
    assert.equal(await h.metric("meshward_authz_policy_reloads_total", { result: "ok" }), 1);
  });

  it("rejects a broken file with a logged error and keeps serving the old policy", async () => {
    const v1 = h.holder.current!.policy.version;
    writeFileSync(h.policyFile, policy('["/b"]').replace("allow: anonymous", "allow: anonymous\n      bogus: 1"));
    assert.equal(h.holder.reload(), false);
    assert.equal(h.holder.current!.policy.version, v1);
    assert.equal((await h.check(checkRequest({ path: "/a" }))).allowed, true);
    assert.equal((await h.check(checkRequest({ path: "/b" }))).allowed, false);
    const line = h.logs.find((l) => l.msg.startsWith("policy reload rejected"));
    assert.match(line?.err ?? "", /policy\.yaml: spec\.rules\[0\]\.bogus: unknown key$/);
    assert.equal(await h.metric("meshward_authz_policy_reloads_total", { result: "rejected" }), 1);
  });

  it("reloads on its own when an editor replaces the file by rename", async () => {
    h.holder.watch();
    const tmp = `${h.policyFile}.swp`;
    writeFileSync(tmp, policy('["/c"]'));
    renameSync(tmp, h.policyFile);
    await until(() => h.holder.current!.policy.rules[0]!.matches({ path: "/c" } as never), 10_000);
    assert.equal((await h.check(checkRequest({ path: "/c" }))).allowed, true);
  });
});

describe("authz-server infrastructure failures (component)", function () {
  this.timeout(30_000);
  it("answers gRPC UNAVAILABLE with HTTP 503 when the JWKS endpoint is down, and /readyz says why", async () => {
    const closed = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const port = (s.address() as { port: number }).port;
        s.close(() => resolve(port));
      });
    });
    const h = await startHarness(`
apiVersion: meshward.io/v1
kind: AuthzPolicy
spec:
  providers:
    jwt:
      - name: down
        issuer: https://down.test/
        jwks: { uri: "http://127.0.0.1:${closed}/jwks.json", timeout: 500ms }
        algorithms: [RS256]
  roles: { reader: ["x:read"] }
  rules:
    - name: r
      match: { paths: ["/**"] }
      require: { roles: [reader] }
`);
    try {
      const now = Math.floor(h.clock.now() / 1000);
      const token = signJwt(newKey("RS256"), { iss: "https://down.test/", sub: "a", exp: now + 60 });
      const r = await h.check(checkRequest({ path: "/x", headers: { authorization: `Bearer ${token}` } }));
      assert.equal(r.allowed, false);
      assert.equal(r.grpcCode, 14);
      assert.equal(r.status, 503);
      assert.equal(r.reason, "keys_unavailable");
      assert.equal(r.body.error, "unavailable");
      const ready = await h.http("/readyz");
      assert.equal(ready.status, 503);
      assert.match(JSON.parse(ready.text).checks.credentials, /not ready: jwt: provider down/);
    } finally {
      await h.stop();
    }
  });
});
