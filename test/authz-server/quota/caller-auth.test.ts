// Only authenticated callers take quota (issue 12, item 3): with a token configured, the lease API and
// the RateLimitService refuse callers without it, before touching a bucket; one call never takes more
// than the limit's maxLease; an unconfigured service says so at startup; probes and /metrics stay open.
import assert from "node:assert/strict";
import { credentials, Metadata, status, type Client, type ServiceError } from "@grpc/grpc-js";
import { Registry } from "prom-client";
import { systemClock } from "../../../authz-server/src/clock.js";
import { grpcClients } from "../../../authz-server/src/grpc/protos.js";
import { PolicyHolder } from "../../../authz-server/src/policy-holder.js";
import { createQuotaService } from "../../../authz-server/src/quota/index.js";
import type { QuotaService } from "../../../authz-server/src/quota/contract.js";
import { createAuthzServer, type AuthzServer } from "../../../authz-server/src/server.js";
import { writePolicyFile, type PolicyFile } from "../../../tools/testing/policy.js";
import { capturingLogger } from "./harness.js";

const TOKEN = "quota-token-0123456789abcdef";
const POLICY = `apiVersion: meshward.io/v1
kind: AuthzPolicy
spec:
  rules: [{ name: health, match: { paths: ["/healthz"] }, allow: anonymous }]
  rateLimits:
    - { domain: edge, name: per-user, capacity: 1000000, refillPerSecond: 0.001, maxLease: 50 }
    - { domain: edge, name: default-cap, capacity: 1000000, refillPerSecond: 0.001 }
`;

interface RlsClient extends Client {
  ShouldRateLimit(req: unknown, metadata: Metadata, cb: (err: ServiceError | null, res: any) => void): void;
}

describe("quota endpoints accept only authenticated callers", () => {
  let policy: PolicyFile;
  let holder: PolicyHolder;
  let quota: QuotaService;
  let server: AuthzServer;
  let base: string;
  let rls: RlsClient;
  let logs: ReturnType<typeof capturingLogger>;

  before(async () => {
    policy = writePolicyFile(POLICY);
    const registry = new Registry();
    logs = capturingLogger();
    holder = new PolicyHolder({ file: policy.file, clock: systemClock, registry, logger: logs.logger, createKeySource: () => { throw new Error("no JWT"); } });
    const runtime = holder.load();
    quota = createQuotaService({ limits: runtime.policy.rateLimits, logger: logs.logger, registry, token: TOKEN });
    server = createAuthzServer({ holder, logger: logs.logger, registry, clock: systemClock, quota, grpcAddress: "127.0.0.1:0", httpAddress: "127.0.0.1:0" });
    const ports = await server.start();
    base = `http://127.0.0.1:${ports.httpPort}`;
    const Ctor = grpcClients().RateLimitService as unknown as new (addr: string, creds: ReturnType<typeof credentials.createInsecure>) => RlsClient;
    rls = new Ctor(`127.0.0.1:${ports.grpcPort}`, credentials.createInsecure());
  });

  after(async () => {
    rls?.close();
    await server?.stop(0);
    await quota?.close();
    holder?.close();
    policy.remove();
  });

  const lease = (body: object, authorization?: string) =>
    fetch(`${base}/v1/quota/lease`, { method: "POST", headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) }, body: JSON.stringify(body) });
  const shouldRateLimit = (authorization?: string) =>
    new Promise<{ err: ServiceError | null; res: any }>((resolve) => {
      const md = new Metadata();
      if (authorization) md.set("authorization", authorization);
      rls.ShouldRateLimit({ domain: "edge", descriptors: [{ entries: [{ key: "per-user", value: "victim" }] }], hitsAddend: 1 }, md, (err, res) => resolve({ err, res }));
    });

  it("refuses a lease without the token, or with a wrong one, with 401 and takes nothing", async () => {
    for (const auth of [undefined, "Bearer wrong-token-0123456789", `Basic ${TOKEN}`, TOKEN]) {
      const r = await lease({ domain: "edge", limit: "per-user", key: "victim", want: 1_000_000 }, auth);
      assert.equal(r.status, 401, String(auth));
      assert.match(r.headers.get("www-authenticate") ?? "", /^Bearer realm="meshward-quota"/);
      assert.equal(((await r.json()) as { error: { code: string } }).error.code, "ERR_QUOTA_UNAUTHENTICATED");
    }
    const ok = await lease({ domain: "edge", limit: "per-user", key: "victim", want: 1 }, `Bearer ${TOKEN}`);
    assert.equal(ok.status, 200);
    assert.equal(((await ok.json()) as { granted: number }).granted, 1, "the refused calls took nothing");
  });

  it("grants one call at most the limit's maxLease (50), or 1000 by default, whatever it wants", async () => {
    const capped = await lease({ domain: "edge", limit: "per-user", key: "k1", want: 1_000_000 }, `Bearer ${TOKEN}`);
    assert.equal(((await capped.json()) as { granted: number }).granted, 50);
    const byDefault = await lease({ domain: "edge", limit: "default-cap", key: "k1", want: 1_000_000 }, `Bearer ${TOKEN}`);
    assert.equal(((await byDefault.json()) as { granted: number }).granted, 1000);
  });

  it("refuses ShouldRateLimit without the token with UNAUTHENTICATED, and answers it with the token", async () => {
    const none = await shouldRateLimit();
    assert.equal(none.err?.code, status.UNAUTHENTICATED);
    const wrong = await shouldRateLimit("Bearer nope-nope-nope-nope-nope");
    assert.equal(wrong.err?.code, status.UNAUTHENTICATED);
    const ok = await shouldRateLimit(`Bearer ${TOKEN}`);
    assert.equal(ok.err, null);
    assert.equal(ok.res.overallCode, "OK");
  });

  it("keeps /healthz, /readyz and /metrics open", async () => {
    for (const path of ["/healthz", "/readyz", "/metrics"]) assert.equal((await fetch(`${base}${path}`)).status, 200, path);
  });

  it("logs no open-endpoints warning when a token is configured, and one when none is", async () => {
    const warned = (lines: Record<string, unknown>[]) => lines.filter((l) => l["code"] === "ERR_QUOTA_UNAUTHENTICATED");
    assert.equal(warned(logs.lines()).length, 0);
    const open = capturingLogger();
    const q = createQuotaService({ limits: [], logger: open.logger, registry: new Registry() });
    await q.close();
    const w = warned(open.lines());
    assert.equal(w.length, 1);
    assert.equal(w[0]!["level"], 40);
    assert.match(String(w[0]!["msg"]), /^quota endpoints are open: .*set --quota-token-file or MESHWARD_QUOTA_TOKEN$/);
  });

  it("refuses a token shorter than 16 characters", () => {
    assert.throws(() => createQuotaService({ limits: [], logger: capturingLogger().logger, registry: new Registry(), token: "short" }), /at least 16 characters/);
  });
});
