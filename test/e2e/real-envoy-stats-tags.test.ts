// The shipped edge bootstrap's stats_tags on a real Envoy: header-router's per-rule and per-route
// counters come out as one Prometheus metric each with the rule or route in a tag, so dashboards can
// aggregate. Skipped only where no Envoy can be had (never under CI=true).
import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { startEnvoy, requireEnvoy, type RunningEnvoy } from "../../tools/envoy/harness.js";
import { ROOT } from "../../tools/envoy/resolve.js";
import { createIssuer, e2ePolicy, startAuthz, tempDir, type Issuer, type RunningAuthz } from "../../tools/testing/e2e-authz.js";
import { startEcho, type EchoUpstream } from "../../tools/testing/echo-upstream.js";

function get(port: number, path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const r = request({ host: "127.0.0.1", port, path, headers: { host: "api.example.com", ...headers }, timeout: 10_000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    r.on("timeout", () => r.destroy(new Error("timeout")));
    r.on("error", reject);
    r.end();
  });
}

describe("header-router metrics tagged by rule and route on a real Envoy (ENVOY_BIN)", function () {
  this.timeout(60_000);
  let tmp: ReturnType<typeof tempDir>;
  let issuer: Issuer;
  let authz: RunningAuthz;
  let v1: EchoUpstream;
  let v2: EchoUpstream;
  let envoy: RunningEnvoy | undefined;

  before(async function () {
    const bin = requireEnvoy(this);
    tmp = tempDir();
    issuer = await createIssuer(tmp.dir);
    authz = await startAuthz(tmp.dir, e2ePolicy(issuer.jwksFile));
    [v1, v2] = await Promise.all([startEcho("app-v1"), startEcho("app-v2")]);
    const endpoints: Record<string, string> = { "meshward-authz": authz.grpcAddress, "meshward-quota": authz.httpAddress, "app-v1": v1.address, "app-v2": v2.address };
    const config = parseYaml(readFileSync(join(ROOT, "envoy/local/edge.yaml"), "utf8")) as any;
    config.static_resources.listeners[0].address.socket_address = { address: "127.0.0.1", port_value: 0 };
    for (const c of config.static_resources.clusters) {
      const [host, p] = (endpoints[c.name] as string).split(":");
      c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address = { address: host, port_value: Number(p) };
    }
    envoy = await startEnvoy({ bin, config, concurrency: 1 });
  });

  after(async function () {
    await envoy?.stop();
    await Promise.all([authz?.stop(), v1?.close(), v2?.close()]);
    tmp?.remove();
  });

  it("counts a beta user under meshward_rule=\"beta_users\" and meshward_route=\"v2\", with no rule or route name in a metric name", async function () {
    const port = envoy!.listenerPort("edge");
    const token = await issuer.sign({ sub: "bob", roles: ["reader"], tier: "beta" });
    for (let i = 0; i < 3; i++) assert.equal(await get(port, "/api/orders/1", { authorization: `Bearer ${token}` }), 200);
    // Envoy 1.40 strips its custom-stat namespace ("wasmcustom.") in Prometheus output: the names are ours, unprefixed.
    const text = (await envoy!.admin("/stats?format=prometheus")).body;
    const lines = text.split("\n").filter((l) => l.includes("meshward_header_router"));
    assert.ok(lines.some((l) => /^meshward_header_router_rule_requests_total\{meshward_rule="beta_users"\} 3$/.test(l)), lines.join("\n"));
    assert.ok(lines.some((l) => /^meshward_header_router_target_requests_total\{meshward_route="v2"\} 3$/.test(l)), lines.join("\n"));
    const names = new Set(lines.filter((l) => !l.startsWith("#")).map((l) => l.split(/[{ ]/)[0]));
    for (const n of names) assert.doesNotMatch(n!, /beta_users|canary|_v[12]_/, `a rule or route name left in metric ${n}`);
  });
});
