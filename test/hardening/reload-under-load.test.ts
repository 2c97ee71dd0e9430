// Reload safety under load: while Checks run concurrently, the policy file alternates between two
// valid generations (A, B) and invalid files. Every answer must come from exactly one generation —
// the rule in its dynamic metadata and the policy version in its decision-log line agree — an invalid
// file never replaces a valid one, and /metrics shows the active policy's version (content hash).
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { checkRequest, startHarness, type Harness } from "../../tools/testing/authz-harness.js";
import { newKey, signJwt } from "../../tools/testing/tokens.js";
import { compilePolicyText } from "../../authz-server/src/policy/load-policy.js";
import { jwtProvider, policyYaml } from "../../tools/testing/policy.js";

const ISS = "https://idp.reload.test/";
const key = newKey("ES256", "reload-key");

const generation = (g: "a" | "b") => policyYaml({ providers: { jwt: [jwtProvider({ issuer: ISS, algorithms: ["ES256"], jwks: { keys: [key.jwk] } })] } }, `
  response: { realm: gen-${g} }
  rules:
    - name: open-${g}
      match: { paths: ["/open/**"] }
      allow: anonymous
    - name: api-${g}
      match: { paths: ["/api/**"] }
      require: { user: true }
    - name: only-in-${g}
      match: { paths: ["/${g}/**"] }
      allow: anonymous
`);
const INVALID = [
  generation("a").replace("allow: anonymous", "allow: anonymous\n      bogus: 1"),
  generation("b").replace("kind: AuthzPolicy", "kind: AuthzPolicyX"),
  "apiVersion: meshward.io/v1\nkind: AuthzPolicy\nspec:\n  rules: [",
  "",
];

describe("hardening: policy reload under concurrent Checks is atomic", function () {
  this.timeout(60_000);
  let h: Harness;
  const versions = { a: compilePolicyText(generation("a"), "x.yaml").version, b: compilePolicyText(generation("b"), "x.yaml").version };

  before(async () => {
    h = await startHarness(generation("a"));
  });
  after(() => h?.stop());

  it("answers every Check from exactly one whole generation while A, B and invalid files alternate", async () => {
    const now = Math.floor(h.clock.now() / 1000);
    const token = signJwt(key, { iss: ISS, sub: "u", exp: now + 600 });
    const paths = ["/open/x", "/api/x", "/a/x", "/b/x"];
    const results: { path: string; r: Awaited<ReturnType<Harness["check"]>> }[] = [];
    let stop = false;
    let sent = 0;
    const worker = async (w: number) => {
      for (let i = 0; !stop && i < 2000; i++) {
        const path = paths[(w + i) % paths.length]!;
        const withToken = path === "/api/x" && i % 2 === 0;
        sent++;
        results.push({ path, r: await h.check(checkRequest({ path, headers: withToken ? { authorization: `Bearer ${token}` } : {} })) });
      }
    };
    const workers = Array.from({ length: 16 }, (_, w) => worker(w));

    let invalidWrites = 0;
    let validReloads = 0;
    let expected: "a" | "b" = "a";
    for (let round = 0; round < 40; round++) {
      await new Promise((r) => setTimeout(r, 5));
      if (round % 3 === 2) {
        writeFileSync(h.policyFile, INVALID[round % INVALID.length]!);
        assert.equal(h.holder.reload(), false, "an invalid file is not served");
        invalidWrites++;
      } else {
        expected = expected === "a" ? "b" : "a";
        writeFileSync(h.policyFile, generation(expected));
        assert.equal(h.holder.reload(), true);
        validReloads++;
      }
      assert.equal(h.holder.current!.policy.version, versions[expected], "the last valid generation serves");
    }
    stop = true;
    await Promise.all(workers);

    const byId = new Map(h.logs.filter((l) => l.msg === "decision").map((l) => [l.decisionId, l]));
    const seen = { a: 0, b: 0 };
    for (const { path, r } of results) {
      const line = byId.get(r.decisionId);
      assert.ok(line, `decision ${r.decisionId} was logged`);
      const gen = line.policy === versions.a ? "a" : line.policy === versions.b ? "b" : undefined;
      assert.ok(gen, `decision logged under an unknown policy version ${line.policy}`);
      seen[gen]++;
      if (path === "/open/x") assert.equal(r.metadata.rule, `open-${gen}`);
      if (path === `/${gen}/x`) assert.equal(r.allowed, true, `${path} under generation ${gen}`);
      if (path === `/${gen === "a" ? "b" : "a"}/x`) assert.equal(r.reason, "no_matching_rule", `${path} under generation ${gen}`);
      if (path === "/api/x") {
        if (r.allowed) assert.equal(r.metadata.rule, `api-${gen}`);
        else assert.equal(r.headers["www-authenticate"], `Bearer realm="gen-${gen}"`, "the 401 challenge's realm is the same generation's");
      }
    }
    assert.ok(seen.a > 0 && seen.b > 0, `both generations served (${JSON.stringify(seen)}, ${sent} checks)`);
    assert.equal(await h.metric("meshward_authz_policy_reloads_total", { result: "rejected" }), invalidWrites);
    assert.equal(await h.metric("meshward_authz_policy_reloads_total", { result: "ok" }), validReloads);

    const metrics = (await h.http("/metrics")).text;
    const info = metrics.split("\n").filter((l) => l.startsWith("meshward_authz_policy_info{"));
    assert.deepEqual(info, [`meshward_authz_policy_info{version="${versions[expected]}"} 1`], "exactly one active version, the last valid one");
  });

  it("does not serve a token from the verified-token cache once a reload removed its issuer", async () => {
    writeFileSync(h.policyFile, generation("a"));
    h.holder.reload();
    const now = Math.floor(h.clock.now() / 1000);
    const token = signJwt(key, { iss: ISS, sub: "cached-user", exp: now + 600 });
    const check = () => h.check(checkRequest({ path: "/api/x", headers: { authorization: `Bearer ${token}` } }));
    assert.equal((await check()).allowed, true);
    assert.equal((await check()).allowed, true, "served from the cache");
    writeFileSync(h.policyFile, generation("b").replace(ISS, "https://other-idp.reload.test/"));
    assert.equal(h.holder.reload(), true);
    const after = await check();
    assert.equal(after.allowed, false);
    assert.equal(after.reason, "unknown_issuer");
  });
});
