// Component test: the quota service, revocation list and introspection cache on a real single-node Redis
// Cluster (all 16384 slots on one redis-server) through `redis+cluster://`: hash-tagged scripts work in Cluster mode.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cluster, Redis } from "ioredis";
import { Registry } from "prom-client";
import { bucketKey } from "../../../authz-server/src/quota/bucket-key.js";
import type { QuotaService } from "../../../authz-server/src/quota/contract.js";
import { createQuotaService } from "../../../authz-server/src/quota/index.js";
import { openStores } from "../../../authz-server/src/wiring.js";
import { freePort } from "../../../tools/testing/ports.js";
import { requireRedis } from "../../../tools/testing/redis.js";
import { capturingLogger, eventually, serveQuotaHttp } from "./harness.js";

describe("quota service on Redis Cluster (redis+cluster:// URL)", () => {
  let child: ChildProcess | undefined;
  let dir: string;
  let port: number;
  let quota: QuotaService | undefined;
  let http: Awaited<ReturnType<typeof serveQuotaHttp>> | undefined;
  const users = ["alice", "bob", "carol", "dave"];

  before(async function () {
    requireRedis(this);
    port = await freePort();
    dir = mkdtempSync(join(tmpdir(), "meshward-redis-cluster-"));
    child = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-announce-ip", "127.0.0.1"],
      { stdio: "ignore" },
    );
    await eventually(
      () =>
        new Promise<boolean>((resolve) => {
          const s = createConnection({ host: "127.0.0.1", port }, () => {
            s.end();
            resolve(true);
          });
          s.on("error", () => resolve(false));
        }),
      5000,
      "cluster node listening",
    );
    const admin = new Redis({ port, host: "127.0.0.1" });
    await admin.call("CLUSTER", "ADDSLOTSRANGE", "0", "16383");
    await eventually(async () => /cluster_state:ok/.test(String(await admin.call("CLUSTER", "INFO"))), 10_000, "cluster_state:ok");
    const slots = new Set(await Promise.all(users.map((u) => admin.call("CLUSTER", "KEYSLOT", bucketKey("edge", "per-user", u)))));
    assert.equal(slots.size, 4, "the four buckets hash to four slots");
    assert.equal(await admin.call("CLUSTER", "KEYSLOT", bucketKey("edge", "per-user", "alice")), await admin.call("CLUSTER", "KEYSLOT", "edge/per-user/alice"));
    admin.disconnect();
    quota = createQuotaService({
      limits: [{ domain: "edge", name: "per-user", capacity: 10, refillPerSecond: 0 }],
      redisUrl: `redis+cluster://127.0.0.1:${port}`,
      redisCommandTimeoutMs: 1000,
      logger: capturingLogger().logger,
      registry: new Registry(),
    });
    http = await serveQuotaHttp(quota);
    await eventually(async () => (await quota!.ready()).ok, 10_000, "quota ready on the cluster");
  });

  after(async () => {
    await http?.close();
    await quota?.close();
    if (child && child.exitCode === null) {
      await new Promise<void>((resolve) => {
        child!.once("exit", () => resolve());
        child!.kill("SIGKILL");
      });
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("grants exactly the capacity per bucket to 80 concurrent leases spread over buckets in four slots", async () => {
    const replies = await Promise.all(
      Array.from({ length: 80 }, async (_, i) => {
        const res = await fetch(`${http!.url}/v1/quota/lease`, {
          method: "POST",
          body: JSON.stringify({ domain: "edge", limit: "per-user", key: users[i % 4], want: 1 }),
          signal: AbortSignal.timeout(20_000),
        });
        assert.equal(res.status, 200);
        return [i % 4, ((await res.json()) as { granted: number }).granted] as const;
      }),
    );
    const perUser = [0, 0, 0, 0];
    for (const [u, g] of replies) perUser[u]! += g;
    assert.deepEqual(perUser, [10, 10, 10, 10]);
  });

  it("serves the revocation list and the introspection cache from the same redis+cluster:// URL (one client factory)", async () => {
    const stores = await openStores({ redisUrl: `redis+cluster://127.0.0.1:${port}`, logger: capturingLogger().logger });
    try {
      assert.ok(stores.redis instanceof Cluster, "a Cluster client, as for the quota store");
      await stores.revocations.revoke("sub", "mallory", 60_000);
      const entry = JSON.stringify(await stores.redis.keys("*entry:sub:*"));
      assert.match(entry, /mallory/);
      await stores.introspectionCache!.set("k", { active: false, reason: "token_inactive", until: Date.now() + 60_000 }, 60_000);
      assert.deepEqual((await stores.introspectionCache!.get("k"))?.active, false);
    } finally {
      await stores.close();
    }
  });
});
