// Issue 12 through a real Envoy 1.40: the shipped edge and sidecar bootstraps with a policy that denies
// /admin/** and allows /public/** anonymously. Path and host confusion never serve /admin as public,
// client-sent identity headers never reach the upstream or pick the canary, X-Forwarded-For never sets
// the caller's address. Each path case is also sent through an edge with Envoy's normalisation turned
// off, where authz-server's own path rule must hold alone.
import { strict as assert } from "node:assert";
import { connect } from "node:net";
import { posix } from "node:path";
import { nonCanonicalPath } from "../../authz-server/src/attributes/canonical-path.js";
import { shippedBootstrap } from "../../tools/envoy/bootstrap.js";
import { startEnvoy, requireEnvoy, type RunningEnvoy } from "../../tools/envoy/harness.js";
import { demoApiKeys, policyYaml } from "../../tools/testing/policy.js";
import { startWorld, type E2eWorld } from "../../tools/testing/e2e-world.js";

const POLICY = policyYaml(
  {
    providers: { apiKeys: [demoApiKeys([{ claim: "sub", header: "x-user-id" }, { claim: "tier", header: "x-user-tier" }])] },
    roles: { reader: ["orders:read"] },
    response: { identityHeaders: ["x-user-id", "x-user-tier"] },
  },
  `
  rules:
    - { name: no-admin, effect: deny, match: { paths: ["/admin/**"] } }
    - { name: no-internal, effect: deny, match: { hosts: ["internal.example.com"] } }
    - { name: public, match: { paths: ["/public/**", "/api/public/**"] }, allow: anonymous }
    - { name: office, match: { paths: ["/office/**"], sourceCidrs: ["203.0.113.0/24"] }, allow: anonymous }
    - { name: orders, match: { paths: ["/api/orders/**"] }, require: { permissions: ["orders:read"] } }
  rateLimits:
    - { domain: edge, name: per-user, capacity: 100000, refillPerSecond: 1000 }
`,
);

/** The request targets of issue 12 and what was tried beyond them. */
export const ATTACK_PATHS = [
  "/public/../admin/users",
  "/public/%2e%2e/admin/users",
  "/public/%2E%2E/admin/users",
  "/public/..%2Fadmin/users",
  "/public/..%2fadmin/users",
  "/public/..%5Cadmin/users",
  "/public/..\\admin/users",
  "/public/..;/admin/users",
  "//admin/users",
  "/public//../admin/users",
  "/./admin/users",
  "/admin;x/users",
  "/%61dmin/users",
  "/admin%2Fusers",
  "/public/%252e%252e/admin/users",
  "/public/.%2e/admin/users",
  "/public/%2e./admin/users",
  "/public/%2e%2e%2fadmin/users",
  "/public/../../../admin/users",
  "/public/..",
  "/api/public/../../admin/x",
  "/public/..%00/admin/users",
  "/public/%2e%2e;/admin/users",
  "/public/.../admin/users",
  "/public/./../admin/users",
  "/public%2f..%2fadmin/users",
  "/public/..%c0%afadmin/users",
  "http://api.example.com/public/../admin/users",
];

interface RawReply {
  readonly status: number;
  readonly location?: string;
  readonly reason?: string;
}

/** One HTTP/1.1 request written byte for byte (no client-side path cleaning). */
function raw(port: number, target: string, headers: Record<string, string> = {}, host = "api.example.com"): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1");
    let data = "";
    s.setTimeout(10_000, () => s.destroy(new Error("timeout")));
    s.on("connect", () => {
      const lines = [`GET ${target} HTTP/1.1`, `host: ${host}`, "connection: close", ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
      s.write(lines.join("\r\n") + "\r\n\r\n");
    });
    s.on("data", (c: Buffer) => (data += c.toString("latin1")));
    s.on("error", reject);
    s.on("end", () => {
      const head = data.split("\r\n\r\n")[0] ?? "";
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      const header = (n: string) => new RegExp(`^${n}: (.*)$`, "im").exec(head)?.[1];
      const location = header("location");
      const reason = header("x-meshward-reason");
      resolve({ status, ...(location ? { location } : {}), ...(reason ? { reason } : {}) });
    });
  });
}

/** What a resolving upstream would serve for a received target: decoded, `;params` and dot segments resolved. */
function resolvedByUpstream(target: string): string {
  let p = target.split("?")[0]!;
  for (let i = 0; i < 3; i++) {
    try {
      p = decodeURIComponent(p);
    } catch {
      break;
    }
  }
  p = p.replace(/\\/g, "/").replace(/;[^/]*/g, "");
  return posix.normalize(p).replace(/\/+/g, "/");
}

function edgeConfig(world: E2eWorld, normalise: boolean): Record<string, unknown> {
  const config = shippedBootstrap("envoy/local/edge.yaml", world.endpoints, { vmEnv: world.hostEnv }) as any;
  if (!normalise) {
    const hcm = config.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
    hcm.normalize_path = false;
    hcm.merge_slashes = false;
    hcm.path_with_escaped_slashes_action = "KEEP_UNCHANGED";
    hcm.strip_trailing_host_dot = false;
  }
  return config;
}

describe("issue 12 on a real Envoy: what is authorised is what is served", function () {
  this.timeout(90_000);
  let world: E2eWorld;
  let edge: RunningEnvoy | undefined;
  let bare: RunningEnvoy | undefined;
  let edgePort: number;
  let barePort: number;
  const table: string[] = [];

  before(async function () {
    const bin = requireEnvoy(this);
    world = await startWorld(() => POLICY);
    edge = await startEnvoy({ bin, config: edgeConfig(world, true), concurrency: 2 });
    bare = await startEnvoy({ bin, config: edgeConfig(world, false), concurrency: 2 });
    edgePort = edge.listenerPort("edge");
    barePort = bare.listenerPort("edge");
  });

  after(async function () {
    if (table.length && process.env.MESHWARD_PRINT_TABLE) process.stdout.write(`\n${table.join("\n")}\n`);
    await edge?.stop();
    await bare?.stop();
    await world?.close();
  });

  /** The requests the upstreams receive from now on (each upstream keeps its own list). */
  const mark = () => {
    const a = world.v1.received.length;
    const b = world.v2.received.length;
    return () => [...world.v1.received.slice(a), ...world.v2.received.slice(b)];
  };

  it("never lets the upstream receive a request that resolves to /admin, with the shipped normalisation or without it", async function () {
    for (const path of ATTACK_PATHS) {
      const sinceShipped = mark();
      const shipped = await raw(edgePort, path);
      const upstreamShipped = sinceShipped().map((r) => r.path);
      const sinceOff = mark();
      const off = await raw(barePort, path);
      const upstreamOff = sinceOff().map((r) => r.path);
      table.push(`| \`${path}\` | ${shipped.status}${shipped.reason ? ` ${shipped.reason}` : ""}${shipped.location ? ` → ${shipped.location}` : ""} | ${upstreamShipped.join(" ") || "–"} | ${off.status}${off.reason ? ` ${off.reason}` : ""} | ${upstreamOff.join(" ") || "–"} |`);
      assert.deepEqual([...upstreamShipped, ...upstreamOff].filter((p) => resolvedByUpstream(p).startsWith("/admin")), [], `${path}: shipped ${JSON.stringify(shipped)}, normalisation off ${JSON.stringify(off)}`);
      // Served at all, it is served as exactly the canonical path authz-server judged.
      for (const p of [...upstreamShipped, ...upstreamOff]) assert.equal(nonCanonicalPath(p.split("?")[0]!), undefined, `${path} reached the upstream as ${p}`);
      if (nonCanonicalPath(path.replace(/^http:\/\/[^/]+/, "")) !== undefined) assert.notEqual(off.status, 200, `${path} with Envoy's normalisation off`);
    }
  });

  it("still serves canonical public paths and denies canonical admin paths", async function () {
    assert.equal((await raw(edgePort, "/public/docs")).status, 200);
    const admin = await raw(edgePort, "/admin/users");
    assert.equal(admin.status, 403);
    assert.equal(admin.reason, "denied_by_rule");
  });

  it("answers a non-canonical path with 400 non_canonical_path from authz-server when Envoy passes it unchanged", async function () {
    for (const path of ["/public/../admin/users", "/public/%2e%2e/admin/users", "/admin;x/users", "/%61dmin/users", "//admin/users"]) {
      const r = await raw(barePort, path);
      assert.equal(r.status, 400, path);
      assert.equal(r.reason, "non_canonical_path", path);
    }
  });

  it("never passes client-sent identity headers upstream, on anonymous rules too", async function () {
    const since = mark();
    const r = await raw(edgePort, "/api/public/x", { "x-user-id": "alice", "x-user-tier": "beta" });
    assert.equal(r.status, 200);
    const got = since();
    assert.equal(got.length, 1);
    assert.equal(got[0]!.headers["x-user-id"], undefined);
    assert.equal(got[0]!.headers["x-user-tier"], undefined);
  });

  it("lets neither a forged x-user-tier nor a forged x-user-id pick the canary for an API-key caller", async function () {
    const upstreamOf = async (headers: Record<string, string>) => {
      const since = mark();
      const r = await raw(edgePort, "/api/orders/1", { "x-api-key": "bob-key", ...headers });
      assert.equal(r.status, 200);
      const got = since()[0]!;
      return { route: got.headers["x-route"], user: got.headers["x-user-id"], tier: got.headers["x-user-tier"] };
    };
    const honest = await upstreamOf({});
    assert.equal(honest.user, "bob");
    const forgeries: Record<string, string>[] = [{ "x-user-tier": "beta" }, { "x-user-id": "alice" }, { "x-user-id": "alice", "x-user-tier": "beta" }];
    for (const forged of forgeries) {
      assert.deepEqual(await upstreamOf(forged), honest, JSON.stringify(forged));
    }
    // The key's own tier claim does pick the beta route.
    const since = mark();
    assert.equal((await raw(edgePort, "/api/orders/1", { "x-api-key": "alice-key" })).status, 200);
    const alice = since()[0]!;
    assert.equal(alice.headers["x-user-tier"], "beta");
    assert.equal(alice.headers["x-route"], "v2");
  });

  it("applies a host deny rule to every spelling of the host, and serves none of them", async function () {
    for (const host of ["internal.example.com", "INTERNAL.example.com", "internal.example.com.", "internal.example.com.:443", "internal.example.com:443", "user@internal.example.com", "internal.example.com:1:2"]) {
      const since = mark();
      const r = await raw(edgePort, "/public/x", {}, host);
      table.push(`| host \`${host}\` | ${r.status}${r.reason ? ` ${r.reason}` : ""} | ${since().length ? "served" : "–"} | | |`);
      assert.notEqual(r.status, 200, host);
      assert.deepEqual(since(), [], `${host} reached the upstream`);
    }
  });

  it("applies the host rule to an absolute-form request target whose host differs from the Host header", async function () {
    const since = mark();
    const r = await raw(edgePort, "http://internal.example.com/public/x");
    table.push(`| absolute-form \`http://internal.example.com/public/x\` (Host: api.example.com) | ${r.status}${r.reason ? ` ${r.reason}` : ""} | ${since().length ? "served" : "–"} | | |`);
    assert.notEqual(r.status, 200);
    assert.deepEqual(since(), []);
  });

  it("matches paths case-sensitively: /ADMIN is not /admin (docs/security.md: case-insensitive upstreams)", async function () {
    const r = await raw(edgePort, "/public/../ADMIN/users");
    table.push(`| \`/public/../ADMIN/users\` | ${r.status}${r.reason ? ` ${r.reason}` : ""} | | | |`);
    assert.equal(r.status, 403);
    assert.equal(r.reason, "no_matching_rule");
  });

  it("leases quota with the token Envoy hands the rate-limit VM; the lease API refuses callers without it", async function () {
    const metrics = async () => (await fetch(`http://${world.authz.httpAddress}/metrics`)).text();
    const leases = (text: string, api: string) => Number(new RegExp(`^meshward_quota_leases_total\\{[^}]*api="${api}"[^}]*\\} (\\d+)`, "m").exec(text)?.[1] ?? 0);
    assert.equal((await raw(edgePort, "/api/orders/1", { "x-api-key": "bob-key" })).status, 200);
    // The identity-keyed limit (/api/, x-user-id) leases from authz-server, in the background after its first request.
    for (let i = 0; i < 50 && leases(await metrics(), "http") === 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(leases(await metrics(), "http") > 0, `a lease was granted to the filter:\n${(await metrics()).split("\n").filter((l) => l.startsWith("meshward_quota")).join("\n")}`);
    assert.ok(!/lease for limit 'per-user' failed: status 401/.test(edge!.log()), "the filter's leases were accepted");
    const open = await fetch(`http://${world.authz.httpAddress}/v1/quota/lease`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ domain: "edge", limit: "per-user", key: "bob", want: 1000000 }) });
    assert.equal(open.status, 401);
  });

  it("takes the caller's address from the connection, not from X-Forwarded-For (edge)", async function () {
    const r = await raw(edgePort, "/office/x", { "x-forwarded-for": "203.0.113.7" });
    assert.equal(r.status, 403);
  });
});

describe("issue 12 on a real Envoy: the sidecar takes the caller's address from the connection", function () {
  this.timeout(60_000);
  let world: E2eWorld;
  let sidecar: RunningEnvoy | undefined;

  before(async function () {
    const bin = requireEnvoy(this);
    world = await startWorld(() => POLICY);
    const config = shippedBootstrap("envoy/local/sidecar.yaml", world.endpoints, { vmEnv: world.hostEnv }) as any;
    sidecar = await startEnvoy({ bin, config, concurrency: 2 });
  });

  after(async function () {
    await sidecar?.stop();
    await world?.close();
  });

  it("denies a sourceCidrs rule to a loopback caller that claims 203.0.113.7 in X-Forwarded-For", async function () {
    const port = sidecar!.listenerPort("sidecar-inbound");
    assert.equal((await raw(port, "/office/x", { "x-forwarded-for": "203.0.113.7" })).status, 403);
    assert.equal((await raw(port, "/public/x", { "x-forwarded-for": "203.0.113.7" })).status, 200);
  });

  it("keys the per-caller rate limit on the connection: rotating X-Forwarded-For does not escape it", async function () {
    // per-caller: capacity 200, refill 100/s. Each request claims a new address; all come from 127.0.0.1.
    const port = sidecar!.listenerPort("sidecar-inbound");
    let limited = 0;
    for (let batch = 0; batch < 20 && limited === 0; batch++) {
      const replies = await Promise.all(Array.from({ length: 40 }, (_, i) => raw(port, "/public/x", { "x-forwarded-for": `198.51.100.${(batch * 40 + i) % 250}, 10.${batch}.${i}.1` })));
      limited += replies.filter((r) => r.status === 429).length;
    }
    assert.ok(limited > 0, "a 429 within 800 requests from one connection address");
  });
});
