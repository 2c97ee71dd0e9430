// `npm run smoke:lts`: the image's content on the current Node LTS (the `node` npm package, via npx): the
// esbuild bundle (authz-server/bundle/, as envoy/k8s/Dockerfile.authz-server copies it) in a temp folder
// with no node_modules in reach: start, /readyz, one Check, SIGTERM, exit 0. Bounded: every step has a
// deadline, the whole run 240 s.
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { grpcClients } from "../../authz-server/src/grpc/protos.js";
import { BUNDLE_FILES, nodeModulesOnPath } from "../image/bundle.js";

/** The current LTS line on 2026-12-04 (Node 26 entered Active LTS in October 2026). */
export const LTS_NODE = process.env.MESHWARD_LTS_NODE ?? "node@26";
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const overall = setTimeout(() => {
  process.stderr.write("smoke: no result within 240 s\n");
  process.exit(1);
}, 240_000);

function step(name: string): void {
  process.stdout.write(`smoke: ${name}\n`);
}

const dir = mkdtempSync(join(tmpdir(), "meshward-smoke-"));
let child: ReturnType<typeof spawn> | undefined;
try {
  step("the image's content (authz-server/bundle/) into a temp folder, no node_modules");
  for (const f of BUNDLE_FILES) {
    const from = join(ROOT, "authz-server/bundle", f);
    if (!existsSync(from)) throw new Error(`${from} is missing: run npm run build:bundle`);
    cpSync(from, join(dir, f));
  }
  cpSync(join(ROOT, "examples"), join(dir, "examples"), { recursive: true });
  // The binary itself (not npx) runs the server, so SIGTERM reaches it.
  const probe = spawnSync("npx", ["-y", "-p", LTS_NODE, "node", "-p", "process.execPath + ' ' + process.version"], { cwd: dir, encoding: "utf8", timeout: 120_000 });
  const [nodeBin, version] = probe.stdout.trim().split(" ");
  if (probe.status !== 0 || !nodeBin || !version) throw new Error(`cannot get ${LTS_NODE}: ${probe.stderr}`);
  const reachable = nodeModulesOnPath(dir);
  if (reachable.length > 0) throw new Error(`node_modules in reach of the bundle: ${reachable.join(", ")}`);
  step(`start authz-server on ${LTS_NODE} (${version})`);
  child = spawn(nodeBin, ["authz-server.mjs", "--policy", "examples/policy.yaml", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"], {
    cwd: dir,
    env: { ...process.env, MESHWARD_POLICY: "", MESHWARD_REDIS: "", OTEL_EXPORTER_OTLP_ENDPOINT: "", NODE_PATH: "" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d));
  child.stderr!.on("data", (d: Buffer) => (out += d));
  const exited = new Promise<number | null>((resolve) => child!.once("exit", (code) => resolve(code)));
  const listening = await new Promise<{ grpc: string; http: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not listening within 120 s:\n${out}`)), 120_000);
    const poll = setInterval(() => {
      for (const line of out.split("\n")) {
        if (!line.includes("authz-server listening")) continue;
        clearInterval(poll);
        clearTimeout(timer);
        const l = JSON.parse(line) as { grpc: string; http: string };
        resolve(l);
      }
    }, 50);
    void exited.then((code) => reject(new Error(`exited (${code}) before listening:\n${out}`)));
  });

  step(`GET /readyz on ${listening.http}`);
  const ready = await fetch(`http://${listening.http}/readyz`, { signal: AbortSignal.timeout(10_000) });
  if (ready.status !== 200) throw new Error(`/readyz answered ${ready.status}: ${await ready.text()}`);

  step(`one Check on ${listening.grpc}`);
  const client = new (grpcClients().Authorization as any)(listening.grpc, grpc.credentials.createInsecure());
  const res = await new Promise<{ status?: { code?: number } }>((resolve, reject) =>
    client.Check({ attributes: { request: { http: { method: "GET", path: "/api/orders/1", host: "api.example.com", headers: {} } } } }, { deadline: Date.now() + 10_000 }, (err: Error | null, r: any) => (err ? reject(err) : resolve(r))),
  );
  client.close();
  // The decision log is buffered and flushed within a second.
  for (let i = 0; i < 100 && !out.includes('"msg":"decision"'); i++) await new Promise((r) => setTimeout(r, 50));
  if (!out.includes('"msg":"decision"')) throw new Error(`no decision-log line:\n${out}`);
  step(`Check answered (status code ${res.status?.code ?? 0})`);

  step("SIGTERM");
  child.kill("SIGTERM");
  const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r("timeout"), 20_000))]);
  if (code !== 0) throw new Error(`exit after SIGTERM: ${code}\n${out}`);
  step(`ok: start, /readyz, Check, SIGTERM → exit 0 on Node ${version}`);
} catch (err) {
  process.stderr.write(`smoke: FAILED: ${(err as Error).message}\n`);
  child?.kill("SIGKILL");
  process.exitCode = 1;
} finally {
  clearTimeout(overall);
  rmSync(dir, { recursive: true, force: true });
}
