// Integration tests: the quota service mounted in the real server shell (createAuthzServer) on loopback,
// with limits from a policy file: lease route, RateLimitService, /readyz with Redis down, policy reload.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { credentials, type Client, type ServiceError } from "@grpc/grpc-js";
import { Registry } from "prom-client";
import { systemClock } from "../../../authz-server/src/clock.js";
import { grpcClients } from "../../../authz-server/src/grpc/protos.js";
import { PolicyHolder } from "../../../authz-server/src/policy-holder.js";
import type { QuotaService } from "../../../authz-server/src/quota/contract.js";
import { createQuotaService } from "../../../authz-server/src/quota/index.js";
import { createAuthzServer, type AuthzServer } from "../../../authz-server/src/server.js";
import { writePolicyFile, type PolicyFile } from "../../../tools/testing/policy.js";
import { requireRedis, startRedis, type RedisProcess } from "../../../tools/testing/redis.js";
import { capturingLogger, eventually } from "./harness.js";

const policy = (capacity: number) => `apiVersion: meshward.io/v1
kind: AuthzPolicy
spec:
  rules:
    - name: health
      match: { paths: ["/healthz"] }
      allow: anonymous
  rateLimits:
    - { domain: edge, name: per-user, capacity: ${capacity}, refillPerSecond: 0.001 }
`;

interface RlsClient extends Client {
  ShouldRateLimit(req: unknown, cb: (err: ServiceError | null, res: any) => void): void;
}

describe("quota service mounted in createAuthzServer", () => {
  let redis: RedisProcess;
  let policyFile: PolicyFile | undefined;
  let holder: PolicyHolder;
  let quota: QuotaService;
  let server: AuthzServer;
  let base: string;
  let rls: RlsClient;

  before(async function () {
    requireRedis(this);
    redis = await startRedis();
    policyFile = writePolicyFile(policy(5));
    const registry = new Registry();
    const { logger } = capturingLogger();
    holder = new PolicyHolder({
      file: policyFile.file,
      clock: systemClock,
      registry,
      logger,
      createKeySource: () => {
        throw new Error("no JWT providers in this policy");
      },
    });
    const runtime = holder.load();
    quota = createQuotaService({ limits: runtime.policy.rateLimits, redisUrl: redis.url, redisCommandTimeoutMs: 1000, logger, registry });
    server = createAuthzServer({ holder, logger, registry, clock: systemClock, quota, grpcAddress: "127.0.0.1:0", httpAddress: "127.0.0.1:0" });
    const ports = await server.start();
    base = `http://127.0.0.1:${ports.httpPort}`;
    const Ctor = grpcClients().RateLimitService as unknown as new (addr: string, creds: ReturnType<typeof credentials.createInsecure>) => RlsClient;
    rls = new Ctor(`127.0.0.1:${ports.grpcPort}`, credentials.createInsecure());
    await eventually(async () => (await quota.ready()).ok, 5000, "quota ready");
  });

  after(async () => {
    rls?.close();
    await server?.stop(0);
    await quota?.close();
    holder?.close();
    await redis?.stop();
    policyFile?.remove();
  });

  const lease = async (key: string, want: number) => {
    const res = await fetch(`${base}/v1/quota/lease`, { method: "POST", body: JSON.stringify({ domain: "edge", limit: "per-user", key, want }), signal: AbortSignal.timeout(3000) });
    return { status: res.status, body: (await res.json()) as any };
  };
  const shouldRateLimit = (user: string): Promise<any> =>
    new Promise((resolve, reject) =>
      rls.ShouldRateLimit({ domain: "edge", descriptors: [{ entries: [{ key: "generic_key", value: "per-user" }, { key: "user", value: user }] }] }, (err, res) =>
        err ? reject(err) : resolve(res),
      ),
    );

  it("serves leases and ShouldRateLimit from the policy's spec.rateLimits over one Redis bucket", async () => {
    assert.deepEqual([(await lease("alice", 4)).body.granted], [4]);
    assert.equal((await shouldRateLimit("alice")).overallCode, "OK");
    assert.equal((await shouldRateLimit("alice")).overallCode, "OVER_LIMIT");
  });

  it("applies a reloaded policy's rateLimits", async () => {
    writeFileSync(policyFile!.file, policy(50));
    assert.equal(holder.reload(), true);
    assert.equal((await lease("bob", 100)).body.granted, 50);
  });

  it("reports quota not ready on /readyz while Redis is down, and ready again after", async () => {
    await redis.stop();
    try {
      const res = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(3000) });
      assert.equal(res.status, 503);
      assert.match(await res.text(), /quota/);
      assert.equal((await lease("carol", 1)).status, 503);
    } finally {
      await redis.start();
    }
    await eventually(async () => (await fetch(`${base}/readyz`)).status === 200, 10_000, "/readyz 200");
    assert.equal((await lease("carol", 1)).status, 200);
  });
});
