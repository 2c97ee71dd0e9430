// The authz-server command: exits non-zero naming file, path and problem on a bad policy or flag,
// prints its addresses when it starts, and stops cleanly on SIGTERM (one process and --workers 2).
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { get as httpGet } from "node:http";
import * as grpc from "@grpc/grpc-js";
import { FLAGS, parseArgs, parseCommand, USAGE } from "../../authz-server/src/cli/args.js";
import { autoWorkers, quotaCpus } from "../../authz-server/src/cli/cpu-budget.js";
import { grpcClients } from "../../authz-server/src/grpc/protos.js";
import { jwtPolicy, policyYaml } from "../../tools/testing/policy.js";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const main = join(repo, "authz-server/src/main.ts");

function run(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", main, ...args], { cwd: repo, env: { ...process.env, ...env, MESHWARD_POLICY: env.MESHWARD_POLICY ?? "" }, stdio: ["ignore", "pipe", "pipe"] });
}

function finish(child: ChildProcess, timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`no exit within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Resolves with the first stdout JSON line matching `pred`. */
function waitForLine(child: ChildProcess, pred: (l: any) => boolean, timeoutMs: number): Promise<any> {
  return new Promise((resolve, reject) => {
    let buf = "";
    let err = "";
    const timer = setTimeout(() => reject(new Error(`no matching line within ${timeoutMs} ms: ${buf} ${err}`)), timeoutMs);
    child.stderr!.on("data", (d) => (err += d));
    child.stdout!.on("data", (d) => {
      buf += d;
      for (const line of buf.split("\n").slice(0, -1)) {
        try {
          const obj = JSON.parse(line);
          if (pred(obj)) {
            clearTimeout(timer);
            resolve(obj);
          }
        } catch {
          /* not JSON */
        }
      }
    });
  });
}

function healthCheck(target: string): Promise<string> {
  const { Health } = grpcClients();
  const client = new (Health as any)(target, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) =>
    client.Check({ service: "" }, { deadline: Date.now() + 10_000 }, (err: Error | null, res: { status: string }) => {
      client.close();
      if (err) reject(err);
      else resolve(res.status);
    }),
  );
}

/** GET /metrics on a new connection (so the primary may hand it to either worker). */
function scrape(http: string): Promise<string> {
  const [host, port] = http.split(":");
  return new Promise((resolve, reject) => {
    const r = httpGet({ host, port: Number(port), path: "/metrics", agent: false }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${res.statusCode}: ${body}`))));
    });
    r.on("error", reject);
  });
}

function anonymousCheck(target: string): Promise<void> {
  const { Authorization } = grpcClients();
  const client = new (Authorization as any)(target, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) =>
    client.Check({ attributes: { request: { http: { method: "GET", path: "/healthz", host: "api.example.com", headers: {} } } } }, { deadline: Date.now() + 10_000 }, (err: Error | null) => {
      client.close();
      if (err) reject(err);
      else resolve();
    }),
  );
}

describe("authz-server command line", function () {
  this.timeout(60_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "meshward-cli-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs the server on `policy` written to `name` in the temp folder: the exit and stderr, and the file's path. */
  async function startOn(name: string, policy: string, env: Record<string, string> = {}) {
    const file = join(dir, name);
    writeFileSync(file, policy);
    return { file, ...(await finish(run(["--policy", file], env))) };
  }

  it("exits 1 naming the file, the path and the problem for a bad policy", async () => {
    const r = await startOn(
      "policy.yaml",
      policyYaml(
        { roles: { admin: ["x:*"] } },
        `  rules:
    - { name: a, allow: anonymous }
    - { name: b, allow: anonymous }
    - { name: c, require: { roles: [admn] } }
`,
      ),
    );
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim(), `authz-server: ${r.file}: spec.rules[2].require.roles[0]: unknown role 'admn'`);
  });

  it("exits 1 naming the secret's path when an HMAC secret variable is unset", async () => {
    const r = await startOn("hs.yaml", jwtPolicy({ name: "hs", issuer: "https://hs/", algorithms: ["HS256"], secret: { env: "MESHWARD_TEST_UNSET_SECRET" } }, "  rules: []\n"), {
      MESHWARD_TEST_UNSET_SECRET: "",
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`${r.file}: spec\\.providers\\.jwt\\[0\\]\\.secret\\.env: environment variable MESHWARD_TEST_UNSET_SECRET is not set`));
  });

  it("exits 2 naming the quota token file when the token is shorter than 16 characters", async () => {
    const tokenFile = join(dir, "quota-token");
    writeFileSync(tokenFile, "short\n");
    const r = await finish(run(["--policy", "examples/policy.yaml", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--quota-token-file", tokenFile]));
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`^authz-server: --quota-token-file ${tokenFile}: the quota token must be at least 16 characters`));
  });

  it("prints usage to stdout and exits 0 for --help; prints the version for --version", async () => {
    const help = await finish(run(["--help"]));
    assert.equal(help.code, 0, help.stderr);
    assert.equal(help.stderr, "");
    assert.match(help.stdout, /^usage: authz-server --policy PATH/);
    assert.match(help.stdout, /--grpc-addr HOST:PORT .*env MESHWARD_GRPC_ADDR/);
    const version = await finish(run(["--version"]));
    assert.equal(version.code, 0, version.stderr);
    assert.match(version.stdout, /^authz-server [0-9]+\.[0-9]+\.[0-9]+\n$/);
  });

  it("exits 2 naming an unknown flag", async () => {
    const unknown = await finish(run(["--policy", "examples/policy.yaml", "--grpc-port", "1"]));
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /^authz-server: unknown flag '--grpc-port'\nusage:/);
  });

  it("starts on the example policy, prints its addresses, serves health and exits 0 on SIGTERM", async () => {
    // The listeners come from the environment: MESHWARD_GRPC_ADDR / MESHWARD_HTTP_ADDR are honoured.
    const child = run(["--policy", "examples/policy.yaml", "--log-level", "info"], { MESHWARD_GRPC_ADDR: "127.0.0.1:0", MESHWARD_HTTP_ADDR: "127.0.0.1:0" });
    const done = finish(child, 45_000);
    const line = await waitForLine(child, (l) => typeof l.grpc === "string" && /listening/.test(l.msg), 40_000);
    assert.match(line.msg, /^authz-server listening: gRPC 127\.0\.0\.1:[1-9][0-9]* .*HTTP 127\.0\.0\.1:[1-9][0-9]*/);
    assert.equal(await healthCheck(line.grpc), "SERVING");
    const ready = await fetch(`http://${line.http}/readyz`);
    assert.equal(ready.status, 200, await ready.text());
    child.kill("SIGTERM");
    const r = await done;
    assert.equal(r.code, 0, r.stderr);
  });

  it("with --workers 2 forks workers that share the ports, and one scrape sees the whole group", async () => {
    const child = run(["--policy", "examples/policy.yaml", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--workers", "2"]);
    const done = finish(child, 55_000);
    try {
      const line = await waitForLine(child, (l) => l.workers === 2, 50_000);
      assert.equal(await healthCheck(line.grpc), "SERVING");
      // The primary announces the group once every worker listens; it hands new connections out round robin,
      // so these Checks split over both workers and a scrape of one worker alone would count half of them.
      const checks = 8;
      for (let i = 0; i < checks; i++) await anonymousCheck(line.grpc);
      for (let i = 0; i < 4; i++) {
        const text = await scrape(line.http);
        const total = [...text.matchAll(/^meshward_authz_decisions_total\{[^}]*\} ([0-9.]+)$/gm)].reduce((a, m) => a + Number(m[1]), 0);
        assert.equal(total, checks, `every scrape counts the decisions of both workers:\n${text}`);
        assert.match(text, /^meshward_build_info\{version="[0-9]+\.[0-9]+\.[0-9]+"\} 1$/m);
        assert.match(text, /^meshward_authz_policy_info\{version="[^"]+"\} 1$/m, "one policy, not one per worker");
        assert.match(text, /^nodejs_heap_size_used_bytes /m);
        assert.match(text, /^process_cpu_seconds_total /m);
        assert.doesNotMatch(text, /meshward_authz_(process|nodejs)_/);
        assert.doesNotMatch(text, /meshward_authz_token_cache_total/);
      }
    } catch (err) {
      child.kill("SIGKILL"); // never leave the group running when an assertion fails
      throw err;
    }
    child.kill("SIGTERM");
    const r = await done;
    assert.equal(r.code, 0, r.stderr);
  });
});

describe("authz-server flags", () => {
  it("reads defaults and environment equivalents", () => {
    assert.deepEqual(parseArgs([], { MESHWARD_POLICY: "p.yaml", MESHWARD_REDIS: "redis://r:6379" }), {
      policy: "p.yaml",
      grpcAddr: "0.0.0.0:9191",
      httpAddr: "0.0.0.0:8181",
      workers: 1,
      logLevel: "info",
      redis: "redis://r:6379",
    });
    assert.equal(parseArgs([], { MESHWARD_POLICY: "p.yaml", MESHWARD_REDIS: "" }).redis, undefined, "an empty MESHWARD_REDIS means the in-memory store");
    assert.equal(parseArgs(["--quota-token-file", "/run/t"], { MESHWARD_POLICY: "p.yaml" }).quotaTokenFile, "/run/t");
    assert.equal(parseArgs([], { MESHWARD_POLICY: "p.yaml", MESHWARD_QUOTA_TOKEN_FILE: "/run/e" }).quotaTokenFile, "/run/e");
    const a = parseArgs(["--policy=x.yaml", "--grpc-addr", "[::1]:9000", "--workers", "4", "--log-level", "warn"], { MESHWARD_POLICY: "ignored.yaml" });
    assert.equal(a.policy, "x.yaml");
    assert.equal(a.grpcAddr, "[::1]:9000");
    assert.equal(a.workers, 4);
  });

  it("resolves --workers auto (or MESHWARD_WORKERS=auto) to the CPUs available, an explicit flag winning", () => {
    assert.equal(parseArgs(["--workers", "auto"], { MESHWARD_POLICY: "p" }, () => 3).workers, 3);
    assert.equal(parseArgs([], { MESHWARD_POLICY: "p", MESHWARD_WORKERS: "auto" }, () => 6).workers, 6);
    assert.equal(parseArgs(["--workers", "2"], { MESHWARD_POLICY: "p", MESHWARD_WORKERS: "auto" }, () => 6).workers, 2);
    assert.equal(parseArgs(["--workers", "auto"], { MESHWARD_POLICY: "p" }, () => 0).workers, 1, "never fewer than one");
  });

  it("caps auto workers by the container's CPU quota (cgroup v2 cpu.max or v1 quota/period), rounding up", () => {
    assert.equal(quotaCpus("max 100000\n"), undefined);
    assert.equal(quotaCpus("150000 100000\n"), 1.5);
    assert.equal(quotaCpus(undefined, "-1", "100000"), undefined);
    assert.equal(quotaCpus(undefined, "200000", "100000"), 2);
    assert.equal(autoWorkers(16, undefined), 16);
    assert.equal(autoWorkers(16, 1.5), 2);
    assert.equal(autoWorkers(2, 8), 2);
    assert.equal(autoWorkers(16, 0.25), 1);
  });

  const bad: [string[], string][] = [
    [[], "--policy (or MESHWARD_POLICY) is required"],
    [["--policy"], "flag '--policy' needs a value"],
    [["--policy", "p", "--policy", "q"], "flag '--policy' given twice"],
    [["--policy", "p", "--workers", "zero"], "flag '--workers': 'zero' is not 'auto' or a whole number from 1 to 999"],
    [["--policy", "p", "--workers", "0"], "flag '--workers': '0' is not 'auto' or a whole number from 1 to 999"],
    [["--policy", "p", "--grpc-addr", "9191"], "flag '--grpc-addr': invalid address '9191' (expected HOST:PORT)"],
    [["--policy", "p", "--http-addr", "h:70000"], "flag '--http-addr': invalid address 'h:70000' (expected HOST:PORT)"],
    [["--policy", "p", "--log-level", "loud"], "flag '--log-level': unknown level 'loud'"],
    [["--policy", "p", "--redis", "localhost:6379"], "flag '--redis': 'localhost:6379' is not a redis://, rediss:// or redis+cluster:// URL"],
    [["--policy", "p", "--redis", "http://user:s3cret@r:6379"], "flag '--redis': 'http://***@r:6379' is not a redis://, rediss:// or redis+cluster:// URL"],
    [["--policy", "p", "--otlp-endpoint", "collector:4318"], "flag '--otlp-endpoint': 'collector:4318' is not an http:// or https:// URL"],
    [["--policy", "p", "--help=yes"], "flag '--help' takes no value"],
    [["--policy", "p", "-h"], "unknown flag '-h'"],
    [["policy.yaml"], "unknown flag 'policy.yaml'"],
  ];
  it("honours every flag's environment variable, and a flag wins over its variable", () => {
    const env = {
      MESHWARD_POLICY: "env.yaml",
      MESHWARD_GRPC_ADDR: "127.0.0.1:0",
      MESHWARD_HTTP_ADDR: "127.0.0.1:0",
      MESHWARD_REDIS: "redis+cluster://a:7000,b:7001",
      MESHWARD_WORKERS: "3",
      MESHWARD_LOG_LEVEL: "warn",
      MESHWARD_ADMIN_ADDR: "127.0.0.1:0",
      MESHWARD_ADMIN_TOKEN_FILE: "/run/secret",
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318",
      MESHWARD_QUOTA_TOKEN_FILE: "/run/quota-token",
    };
    assert.deepEqual(parseArgs([], env), {
      policy: "env.yaml",
      grpcAddr: "127.0.0.1:0",
      httpAddr: "127.0.0.1:0",
      redis: "redis+cluster://a:7000,b:7001",
      workers: 3,
      logLevel: "warn",
      adminAddr: "127.0.0.1:0",
      adminTokenFile: "/run/secret",
      otlpEndpoint: "http://127.0.0.1:4318",
      quotaTokenFile: "/run/quota-token",
    });
    // Every flag that takes a value is covered above: a new flag without an env test fails here.
    const valued = FLAGS.filter((f) => f.value).map((f) => f.env);
    assert.deepEqual(valued.filter((e) => !(e! in env)), []);
    assert.equal(parseArgs(["--grpc-addr", "127.0.0.1:1"], env).grpcAddr, "127.0.0.1:1");
    assert.throws(() => parseArgs([], { ...env, MESHWARD_WORKERS: "many" }), { name: "UsageError", message: "MESHWARD_WORKERS: 'many' is not 'auto' or a whole number from 1 to 999" });
  });

  it("answers --help and --version instead of serving, whatever else is given", () => {
    assert.deepEqual(parseCommand(["--help"], {}), { kind: "help" });
    assert.deepEqual(parseCommand(["--policy", "p", "--version"], {}), { kind: "version" });
    for (const f of FLAGS) assert.ok(USAGE.includes(`--${f.name}`), `usage lists --${f.name}`);
  });

  for (const [argv, message] of bad) {
    it(`rejects ${JSON.stringify(argv)}: ${message}`, () => assert.throws(() => parseArgs(argv, {}), { name: "UsageError", message }));
  }
});
