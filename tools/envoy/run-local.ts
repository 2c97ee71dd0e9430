// `npm run envoy [-- edge|sidecar] [--port N]`: the shipped local config in a real Envoy (the project's
// resolver: ENVOY_BIN, PATH, or the pinned wheel in .envoy/) with authz-server (envoy/local/policy.yaml)
// and two echo upstreams; prints curl commands for each feature and stops everything on Ctrl-C.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startEcho, type EchoUpstream } from "../testing/echo-upstream.js";
import { shippedBootstrap } from "./bootstrap.js";
import { startEnvoy, type RunningEnvoy } from "./harness.js";
import { EnvoyUnavailable, ROOT, resolveEnvoy } from "./resolve.js";

const CONFIGS = { edge: { file: "envoy/local/edge.yaml", listener: "edge", port: 8080 }, sidecar: { file: "envoy/local/sidecar.yaml", listener: "sidecar-inbound", port: 15006 } } as const;
type Which = keyof typeof CONFIGS;

function fail(message: string): never {
  console.error(`npm run envoy: ${message}`);
  process.exit(1);
}

function parseArgs(argv: readonly string[]): { which: Which; port: number | undefined } {
  let which: Which = "edge";
  let port: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === "--port") {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 0 || v > 65535) fail(`--port needs a port number (0 = any free port)`);
      port = v;
    } else if (a === "edge" || a === "sidecar") which = a;
    else fail(`unknown argument "${a}" (usage: npm run envoy [-- edge|sidecar] [--port N])`);
  }
  return { which, port };
}

/** The commands printed for the edge config, each with the result it shows (tested in test/real-envoy/run-local.test.ts). */
export function edgeCommands(base: string): { expect: string; what: string; command: string }[] {
  return [
    { expect: "401", what: "no credentials: 401 with a challenge", command: `curl -si ${base}/api/orders/1` },
    { expect: "403", what: "a reader may not write: 403", command: `curl -si -X POST -H 'x-api-key: meshward-demo-reader' ${base}/api/orders/1` },
    { expect: "200", what: "allowed: the upstream echoes what it received (identity and decision headers)", command: `curl -si -H 'x-api-key: meshward-demo-reader' ${base}/api/orders/1` },
    { expect: "app-v2", what: "canary: the beta tier is routed to app-v2", command: `curl -si -H 'x-api-key: meshward-demo-admin' -H 'x-user-tier: beta' ${base}/api/orders/1` },
    { expect: "429", what: "rate limit: a burst of 300 from one IP; the per-IP bucket (100, +50/s) answers 429", command: `curl -s -Z --parallel-max 20 -o /dev/null -w '%{http_code}\\n' '${base}/healthz?[1-300]' | sort | uniq -c` },
  ];
}

async function main(): Promise<void> {
  const { which, port } = parseArgs(process.argv.slice(2));
  const spec = CONFIGS[which];
  let envoyBin: string;
  let version: string;
  try {
    ({ bin: envoyBin, version } = resolveEnvoy({ install: true }));
  } catch (err) {
    fail(err instanceof EnvoyUnavailable ? err.message : String(err));
  }
  for (const f of ["authz-server/dist/main.js", "filters/build/header-router.wasm", "filters/build/rate-limit.wasm"]) {
    if (!existsSync(join(ROOT, f))) fail(`${f} is missing: run \`npm run build\` first`);
  }

  const upstreams: EchoUpstream[] = [];
  let authz: ChildProcess | undefined;
  let envoy: RunningEnvoy | undefined;
  let stopping = false;
  const stop = async (code: number): Promise<never> => {
    if (!stopping) {
      stopping = true;
      await envoy?.stop();
      if (authz && authz.exitCode === null) {
        const exited = new Promise((r) => authz!.once("exit", r));
        authz.kill("SIGTERM");
        await exited;
      }
      await Promise.all(upstreams.map((u) => u.close()));
    }
    process.exit(code);
  };
  process.on("SIGINT", () => void stop(0));
  process.on("SIGTERM", () => void stop(0));

  upstreams.push(...(await Promise.all([startEcho("app-v1"), startEcho("app-v2")])));
  authz = spawn(process.execPath, ["authz-server/dist/main.js", "--policy", "envoy/local/policy.yaml", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const addresses = await new Promise<{ grpc: string; http: string }>((resolve, reject) => {
    let buf = "";
    authz!.stdout!.on("data", (c: Buffer) => {
      buf += c.toString("utf8");
      const m = /"grpc":"([^"]+)","http":"([^"]+)"/.exec(buf);
      if (m) resolve({ grpc: m[1] as string, http: m[2] as string });
    });
    authz!.once("exit", (code) => reject(new Error(`authz-server exited (${code}) before listening`)));
  }).catch((err: Error) => fail(err.message));
  authz.stdout!.pipe(process.stderr);
  authz.once("exit", (code) => {
    if (!stopping) {
      console.error(`npm run envoy: authz-server exited (${code})`);
      void stop(1);
    }
  });

  const config = shippedBootstrap(spec.file, { "meshward-authz": addresses.grpc, "meshward-quota": addresses.http, "app-v1": upstreams[0]!.address, "app-v2": upstreams[1]!.address });
  config["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] = port ?? spec.port;
  try {
    // The access log (JSON, one line per request) goes to stderr with Envoy's own log.
    envoy = await startEnvoy({ bin: envoyBin, config, concurrency: 2, onOutput: (c) => process.stderr.write(c) });
  } catch (err) {
    console.error(`npm run envoy: ${(err as Error).message}`);
    return stop(1);
  }
  const base = `http://127.0.0.1:${envoy.listenerPort(spec.listener)}`;
  const lines = [
    `meshward ${which}: ${base}  (Envoy ${version}, admin http://127.0.0.1:${envoy.adminPort}; authz-server gRPC ${addresses.grpc}, HTTP ${addresses.http}; upstreams app-v1 ${upstreams[0]!.address}, app-v2 ${upstreams[1]!.address})`,
  ];
  if (which === "edge") {
    lines.push("Try:");
    for (const c of edgeCommands(base)) lines.push(`  # ${c.what}`, `  ${c.command}`);
  } else {
    lines.push(`The sidecar listener expects mesh callers (mTLS in a real mesh); try: curl -si ${base}/healthz`);
  }
  lines.push("Ctrl-C stops Envoy, authz-server and the upstreams.");
  console.log(lines.join("\n"));
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => fail(err instanceof Error ? err.message : String(err)));
}
