// The image ships authz-server as one esbuild bundle (authz-server/bundle.mjs) and no node_modules: the
// bundle, run from a folder with no node_modules on its path, starts, answers Checks, aggregates metrics
// over --workers 2, writes decision lines through pino, exports spans over OTLP and stops on SIGTERM.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { get as httpGet } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { Redis } from "ioredis";
import { grpcClients } from "../../authz-server/src/grpc/protos.js";
import { BUNDLE_FILES, bundleServer, nodeModulesOnPath } from "../../tools/image/bundle.js";
import { checkRequest } from "../../tools/testing/authz-harness.js";
import { startMain, type MainProcess } from "../../tools/testing/main-process.js";
import { startOtlpReceiver, type OtlpReceiver } from "../../tools/testing/otlp-receiver.js";
import { policyYaml } from "../../tools/testing/policy.js";
import { requireRedis, startRedis, type RedisProcess } from "../../tools/testing/redis.js";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const POLICY = policyYaml({
  rules: [{ name: "public", match: { paths: ["/public/**"] }, allow: "anonymous" }],
  rateLimits: [{ domain: "edge", name: "per-user", capacity: 10, refillPerSecond: 0 }],
});

/** GET /metrics on a new connection each time, so the cluster primary may hand it to either worker. */
function scrape(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const r = httpGet({ host: "127.0.0.1", port, path: "/metrics", agent: false }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${res.statusCode}: ${body}`))));
    });
    r.on("error", reject);
  });
}

/** One Check on a new channel (so connections spread over the workers), carrying a traceparent. */
function tracedCheck(port: number, path: string, traceId: string): Promise<{ status?: { code?: number } }> {
  const client = new (grpcClients().Authorization as any)(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const md = new grpc.Metadata();
  md.set("traceparent", `00-${traceId}-00f067aa0ba902b7-01`);
  return new Promise((resolve, reject) =>
    client.Check(checkRequest({ path }), md, { deadline: Date.now() + 10_000 }, (err: Error | null, res: any) => {
      client.close();
      if (err) reject(err);
      else resolve(res);
    }),
  );
}

async function until<T>(what: string, probe: () => T | undefined, ms = 15_000): Promise<T> {
  for (const deadline = Date.now() + ms; ; ) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("the image's bundle (authz-server/bundle.mjs) runs alone", function () {
  this.timeout(120_000);
  let dir: string;
  let app: string;

  before(function () {
    dir = mkdtempSync(join(tmpdir(), "meshward-bundle-"));
    app = join(dir, "app");
    bundleServer(app);
    writeFileSync(join(app, "policy.yaml"), POLICY);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("is one module, the descriptor it reads and the licences of the packages it carries, with no node_modules in reach", function () {
    assert.deepEqual(readdirSync(app).sort(), [...BUNDLE_FILES, "policy.yaml"].sort());
    assert.deepEqual(nodeModulesOnPath(app), [], "no node_modules folder between the bundle and the root");
    const licences = readFileSync(join(app, "THIRD-PARTY-LICENSES.txt"), "utf8");
    for (const pkg of ["@grpc/grpc-js", "@grpc/proto-loader", "protobufjs", "pino", "prom-client", "ioredis", "@opentelemetry/sdk-trace", "ajv", "yaml"]) {
      assert.match(licences, new RegExp(`^${pkg.replace(/[/.]/g, "\\$&")}@\\d+\\.\\d+\\.\\d+ \\(`, "m"), `${pkg} is bundled and its licence listed`);
    }
    assert.doesNotMatch(licences, /^(@grpc\/grpc-js-xds|jose|typescript|esbuild|mocha)@/m, "no development dependency is bundled");
  });

  it("prints the package version without a package.json beside it", function () {
    const r = spawnSync(process.execPath, ["authz-server.mjs", "--version"], { cwd: app, encoding: "utf8", timeout: 30_000 });
    const pkg = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as { version: string };
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `authz-server ${pkg.version}\n`);
  });

  describe("with --workers 2 and an OTLP endpoint", function () {
    let receiver: OtlpReceiver;
    let main: MainProcess;

    before(async function () {
      receiver = await startOtlpReceiver();
      main = await startMain({
        script: "authz-server.mjs",
        cwd: app,
        policy: "policy.yaml",
        args: ["--workers", "2"],
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SERVICE_NAME: "bundle-under-test", NODE_PATH: "" },
        startTimeoutMs: 60_000,
      });
      await until("the primary announces both workers", () => (main.output().includes('"workers":2') ? true : undefined), 60_000);
    });
    after(async () => {
      await main?.stop();
      await receiver?.close();
    });

    it("answers Checks, writes a decision line per Check with its trace id, and exports one span per Check", async function () {
      const traces = Array.from({ length: 6 }, (_, i) => `4bf92f3577b34da6a3ce929d0e0e47${String(i).padStart(2, "0")}`);
      for (const [i, t] of traces.entries()) assert.equal((await tracedCheck(main.grpcPort, `/public/${i}`, t)).status?.code ?? 0, 0);
      const lines = await until("six decision lines", () => {
        const found = main.output().split("\n").filter((l) => l.includes('"msg":"decision"')).map((l) => JSON.parse(l) as { trace_id?: string; path?: string });
        return found.length >= traces.length ? found : undefined;
      });
      assert.deepEqual(lines.map((l) => l.trace_id).sort(), [...traces].sort());
      for (const t of traces) {
        const span = await receiver.waitFor((s) => s.traceId === t, 15_000);
        assert.equal(span.service, "bundle-under-test");
        assert.equal(span.attributes["meshward.decision.allowed"], true);
      }
    });

    it("serves the whole group's metrics on every scrape (prom-client cluster aggregation)", async function () {
      const before = await scrape(main.httpPort);
      const count = (text: string) => [...text.matchAll(/^meshward_authz_decisions_total\{[^}]*\} ([0-9.]+)$/gm)].reduce((a, m) => a + Number(m[1]), 0);
      const base = count(before);
      for (let i = 0; i < 4; i++) await tracedCheck(main.grpcPort, `/public/m${i}`, `5bf92f3577b34da6a3ce929d0e0e47${String(i).padStart(2, "0")}`);
      for (let i = 0; i < 4; i++) {
        const text = await scrape(main.httpPort);
        assert.equal(count(text), base + 4, `every scrape counts both workers' decisions:\n${text}`);
        assert.match(text, /^meshward_build_info\{version="\d+\.\d+\.\d+"\} 1$/m);
        assert.match(text, /^process_cpu_seconds_total /m);
      }
    });

    it("stops with exit code 0 on SIGTERM", async function () {
      assert.equal(await main.stop(), 0, main.output());
    });
  });
  describe("with Redis (ioredis in the bundle)", function () {
    let redis: RedisProcess;
    let main: MainProcess;

    before(async function () {
      requireRedis(this);
      redis = await startRedis();
      main = await startMain({ script: "authz-server.mjs", cwd: app, policy: "policy.yaml", env: { MESHWARD_REDIS: redis.url, NODE_PATH: "" } });
    });
    after(async () => {
      await main?.stop();
      await redis?.stop();
    });

    it("leases quota from buckets kept in Redis", async function () {
      const lease = async (want: number) => JSON.parse((await main.http("/v1/quota/lease", { method: "POST", body: JSON.stringify({ domain: "edge", limit: "per-user", key: "alice", want }) })).text) as { granted: number };
      assert.equal((await lease(4)).granted, 4);
      assert.equal((await lease(10)).granted, 6, "the second lease gets what the first left");
      const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
      try {
        await client.connect();
        assert.ok((await client.dbsize()) > 0, "the bucket lives in Redis");
      } finally {
        client.disconnect();
      }
    });
  });
});
