#!/usr/bin/env node
// `npm run envoy [-- edge|sidecar]`: runs authz-server (envoy/local/policy.yaml), two echo upstreams
// (app-v1 on 18081, app-v2 on 18082) and Envoy (ENVOY_BIN or `envoy` on PATH) with envoy/local/<name>.yaml.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, constants, existsSync } from "node:fs";
import { createServer } from "node:http";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CONFIGS = { edge: "envoy/local/edge.yaml", sidecar: "envoy/local/sidecar.yaml" };
const LISTENERS = { edge: 8080, sidecar: 15006 };
const UPSTREAMS = [
  { name: "app-v1", port: 18081 },
  { name: "app-v2", port: 18082 },
];

function fail(message) {
  console.error(`npm run envoy: ${message}`);
  process.exit(1);
}

/** ENVOY_BIN when set, else the first executable `envoy` on PATH. */
export function findEnvoy(env = process.env) {
  if (env.ENVOY_BIN) {
    try {
      accessSync(env.ENVOY_BIN, constants.X_OK);
      return env.ENVOY_BIN;
    } catch {
      return undefined;
    }
  }
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, "envoy");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

function startEcho({ name, port }) {
  const server = createServer((req, res) => {
    const chunks = [];
    let size = 0;
    req.on("data", (c) => {
      size += c.length;
      if (size <= 65536) chunks.push(c);
    });
    req.on("end", () => {
      const body = JSON.stringify({ upstream: name, method: req.method, path: req.url, headers: req.headers, bodyBytes: size });
      res.writeHead(200, { "content-type": "application/json", "x-upstream": name });
      res.end(body);
    });
  });
  return new Promise((resolvePromise, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolvePromise(server));
  });
}

async function main() {
  const which = process.argv[2] ?? "edge";
  if (!(which in CONFIGS)) fail(`unknown configuration "${which}" (use edge or sidecar)`);
  const envoy = findEnvoy();
  if (!envoy) {
    fail(
      process.env.ENVOY_BIN
        ? `ENVOY_BIN=${process.env.ENVOY_BIN} is not an executable file`
        : "Envoy is not installed: set ENVOY_BIN to an envoy binary or put `envoy` on PATH (https://www.envoyproxy.io/docs/envoy/latest/start/install)",
    );
  }
  for (const f of ["authz-server/dist/main.js", "filters/build/header-router.wasm", "filters/build/rate-limit.wasm"]) {
    if (!existsSync(join(ROOT, f))) fail(`${f} is missing: run \`npm run build\` first`);
  }

  const children = [];
  const servers = await Promise.all(UPSTREAMS.map(startEcho));
  const stop = (code) => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
    for (const s of servers) s.close();
    setTimeout(() => process.exit(code), 200).unref();
  };
  process.on("SIGINT", () => stop(0));
  process.on("SIGTERM", () => stop(0));

  // One fresh quota token per run: authz-server requires it, Envoy hands it to the rate-limit VMs.
  const env = { ...process.env, MESHWARD_QUOTA_TOKEN: process.env.MESHWARD_QUOTA_TOKEN || randomBytes(24).toString("hex") };
  const authz = spawn(process.execPath, ["authz-server/dist/main.js", "--policy", "envoy/local/policy.yaml", "--grpc-addr", "127.0.0.1:9191", "--http-addr", "127.0.0.1:8181"], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "inherit", "inherit"],
  });
  children.push(authz);
  authz.on("exit", (code) => {
    console.error(`npm run envoy: authz-server exited (${code})`);
    stop(code ?? 1);
  });

  // Envoy resolves the wasm filenames (filters/build/*.wasm) against its working directory: the repo root.
  const proxy = spawn(envoy, ["-c", CONFIGS[which], "--log-level", "warn", "--base-id", String(which === "edge" ? 7101 : 7102)], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "inherit", "inherit"],
  });
  children.push(proxy);
  proxy.on("exit", (code) => {
    console.error(`npm run envoy: envoy exited (${code})`);
    stop(code ?? 1);
  });
  console.log(
    `meshward ${which}: http://127.0.0.1:${LISTENERS[which]}  (authz gRPC 127.0.0.1:9191, HTTP 127.0.0.1:8181; upstreams ${UPSTREAMS.map((u) => `${u.name}:${u.port}`).join(", ")})\n` +
      `try: curl -i -H 'x-api-key: meshward-demo-reader' http://127.0.0.1:${LISTENERS[which]}/api/orders/1`,
  );
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => fail(err instanceof Error ? err.message : String(err)));
}
