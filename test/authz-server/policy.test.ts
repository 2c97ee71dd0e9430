// Policy loading and compilation: one fixture per mistake with its exact message, the example policy,
// and the compiled matchers (globs, CIDRs, hosts) and RBAC grants.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { attributesFromCheckRequest } from "../../authz-server/src/attributes/from-check-request.js";
import { compileCidrs, cidrProblem } from "../../authz-server/src/policy/cidr.js";
import { evaluatePolicy } from "../../authz-server/src/policy/evaluate.js";
import { compilePathGlob } from "../../authz-server/src/policy/glob.js";
import { compilePolicyText, loadPolicyFile } from "../../authz-server/src/policy/load-policy.js";
import { grantCovers } from "../../authz-server/src/policy/roles.js";
import { PolicyInvalid } from "../../authz-server/src/errors.js";
import { checkRequest } from "../../tools/testing/authz-harness.js";

const here = fileURLToPath(new URL(".", import.meta.url));
const invalidDir = join(here, "fixtures", "invalid");

describe("policy files: one invalid fixture per mistake", () => {
  const files = readdirSync(invalidDir).filter((f) => f.endsWith(".yaml")).sort();
  it("has fixtures", () => assert.ok(files.length >= 25, `${files.length} fixtures`));
  for (const f of files) {
    const path = join(invalidDir, f);
    const expect = readFileSync(path, "utf8").split("\n")[0]!.replace(/^# expect: /, "");
    it(`rejects ${f}: ${expect}`, () => {
      assert.throws(
        () => loadPolicyFile(path),
        (err: unknown) => {
          assert.ok(err instanceof PolicyInvalid, String(err));
          assert.equal(err.message, `${path}: ${expect}`);
          assert.equal(err.code, "ERR_POLICY_INVALID");
          return true;
        },
      );
    });
  }

  it("names an unreadable file and why", () => {
    assert.throws(() => loadPolicyFile("/nonexistent/policy.yaml"), { message: "/nonexistent/policy.yaml: cannot read: ENOENT" });
  });

  it("keeps the YAML parser's own warnings off stderr (the server logs JSON only)", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error): void => { warnings.push(w.message); };
    const originalWarn = console.warn;
    process.on("warning", onWarning);
    console.warn = (...args: unknown[]) => { warnings.push(args.join(" ")); };
    try {
      const p = compilePolicyText("apiVersion: meshward.io/v1\nkind: !odd AuthzPolicy\nspec:\n  rules: [{ name: a, allow: anonymous }]\n", "p.yaml");
      assert.equal(p.rules.length, 1);
      await new Promise((resolve) => setImmediate(resolve)); // process warnings are emitted on a later tick
    } finally {
      console.warn = originalWarn;
      process.off("warning", onWarning);
    }
    assert.deepEqual(warnings, []);
  });

  it("accepts JSON with the same schema", () => {
    const p = compilePolicyText(JSON.stringify({ apiVersion: "meshward.io/v1", kind: "AuthzPolicy", spec: { rules: [{ name: "a", allow: "anonymous" }] } }), "p.json");
    assert.equal(p.rules.length, 1);
    assert.throws(() => compilePolicyText('{"apiVersion": ', "p.json"), { message: "p.json: invalid JSON: Unexpected end of JSON input" });
  });
});

describe("examples/policy.yaml", () => {
  const file = fileURLToPath(new URL("../../examples/policy.yaml", import.meta.url));
  const policy = loadPolicyFile(file);
  const evaluate = (req: object, peer?: string) => {
    const attrs = attributesFromCheckRequest(req as never);
    const identity = peer ? { peer: { kind: "peer" as const, principal: peer, trustDomain: "cluster.local", namespace: peer.split("/")[4]!, serviceAccount: peer.split("/")[6]!, roles: policy.bindings.get(peer) ?? [] } } : {};
    return evaluatePolicy(policy, { attrs, identity, credentialError: undefined, nowMs: 0 });
  };

  it("compiles, with the dry-run rule kept apart from the enforced ones", () => {
    assert.deepEqual(policy.dryRunRules.map((r) => r.name), ["deny-bulk-export"]);
    assert.ok(policy.rules.some((r) => r.effect === "deny"));
    assert.ok(policy.usesConditions);
  });

  it("lets the orders worker read orders in the mesh from the cluster network", () => {
    const v = evaluate(checkRequest({ path: "/internal/orders/1", sourceAddress: "10.4.0.7", principal: "x" }), "spiffe://cluster.local/ns/orders/sa/orders-worker");
    assert.equal(v.allowed, true, v.reason);
  });

  it("refuses the same workload from outside the cluster CIDRs", () => {
    const v = evaluate(checkRequest({ path: "/internal/orders/1", sourceAddress: "203.0.113.9" }), "spiffe://cluster.local/ns/orders/sa/orders-worker");
    assert.equal(v.reason, "no_matching_rule");
  });

  it("blocks legacy clients before anything else", () => {
    const v = evaluate(checkRequest({ path: "/healthz", headers: { "user-agent": "legacy/1" } }));
    assert.equal(v.reason, "denied_by_rule");
  });
});

describe("policy matchers", () => {
  it("globs: * is one non-empty segment, ** any number of segments", () => {
    const one = compilePathGlob("/api/*/items");
    assert.equal(one("/api/v1/items"), true);
    assert.equal(one("/api//items"), false);
    assert.equal(one("/api/v1/v2/items"), false);
    const any = compilePathGlob("/api/orders/**");
    for (const p of ["/api/orders", "/api/orders/", "/api/orders/1", "/api/orders/1/lines/2"]) assert.equal(any(p), true, p);
    for (const p of ["/api/ordersx", "/api/order", "/api"]) assert.equal(any(p), false, p);
    const middle = compilePathGlob("/a/**/z");
    for (const p of ["/a/z", "/a/b/z", "/a/b/c/z"]) assert.equal(middle(p), true, p);
    assert.equal(middle("/a/b/zz"), false);
    assert.equal(compilePathGlob("/files/*.json")("/files/a.json"), true);
    assert.equal(compilePathGlob("/files/*.json")("/files/a/b.json"), false);
    assert.equal(compilePathGlob("/exact")("/exact/"), false);
  });

  it("CIDRs: IPv4, IPv6, IPv4-mapped IPv6 and bare addresses", () => {
    const m = compileCidrs(["10.0.0.0/8", "2001:db8::/32", "192.0.2.1"]);
    assert.equal(m("10.200.1.1"), true);
    assert.equal(m("11.0.0.1"), false);
    assert.equal(m("2001:db8:1::5"), true);
    assert.equal(m("2001:db9::1"), false);
    assert.equal(m("::ffff:10.1.2.3"), true);
    assert.equal(m("192.0.2.1"), true);
    assert.equal(m("192.0.2.2"), false);
    assert.equal(m("fe80::1%eth0"), false);
    assert.equal(m("not-an-ip"), false);
    assert.equal(cidrProblem("10.0.0.0/8/1"), "invalid CIDR '10.0.0.0/8/1'");
    assert.equal(cidrProblem("::/129"), "invalid prefix length in CIDR '::/129'");
  });

  it("hosts ignore the request port unless the pattern names one, and support *. wildcards", () => {
    const p = compilePolicyText(
      `apiVersion: meshward.io/v1\nkind: AuthzPolicy\nspec:\n  rules:\n    - { name: a, match: { hosts: ["api.example.com", "*.internal", "admin:8443"] }, allow: anonymous }\n`,
      "p.yaml",
    );
    const m = (host: string) => p.rules[0]!.matches(attributesFromCheckRequest(checkRequest({ host }) as never));
    assert.equal(m("api.example.com:443"), true);
    assert.equal(m("API.Example.com"), true);
    assert.equal(m("x.internal"), true);
    assert.equal(m("internal"), false);
    assert.equal(m("admin:8443"), true);
    assert.equal(m("admin:9000"), false);
    assert.equal(m("evil.com"), false);
  });

  it("keeps policy order when rules are indexed by host: a host-specific deny still overrides, any-host rules still apply", () => {
    const p = compilePolicyText(
      `apiVersion: meshward.io/v1
kind: AuthzPolicy
spec:
  rules:
    - { name: block-a, effect: deny, match: { hosts: ["a.example"], paths: ["/x"] } }
    - { name: any, match: { paths: ["/x", "/y"] }, allow: anonymous }
    - { name: only-b, match: { hosts: ["b.example"], paths: ["/z"] }, allow: anonymous }
`,
      "p.yaml",
    );
    const decide = (host: string, path: string) => {
      const v = evaluatePolicy(p, { attrs: attributesFromCheckRequest(checkRequest({ host, path }) as never), identity: {}, credentialError: undefined, nowMs: 0 });
      return `${v.allowed ? "allow" : "deny"}:${v.rule ?? v.reason}`;
    };
    assert.equal(decide("a.example:443", "/x"), "deny:block-a");
    assert.equal(decide("a.example", "/y"), "allow:any");
    assert.equal(decide("b.example", "/x"), "allow:any");
    assert.equal(decide("B.Example:8443", "/z"), "allow:only-b");
    assert.equal(decide("c.example", "/z"), "deny:no_matching_rule");
    assert.deepEqual(p.rulesForHost("c.example").map((r) => r.name), ["any"]);
  });

  it("RBAC grants: exact, prefix wildcard and *", () => {
    assert.equal(grantCovers("orders:*", "orders:read"), true);
    assert.equal(grantCovers("orders:*", "invoices:read"), false);
    assert.equal(grantCovers("*", "anything"), true);
    assert.equal(grantCovers("orders:read", "orders:write"), false);
  });
});
