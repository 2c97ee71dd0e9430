// The authz-server image's content as the Dockerfile copies it: the esbuild bundle that
// authz-server/bundle.mjs writes (built into any folder), and the check that it runs with no
// node_modules in reach. Used by `npm run smoke:lts` and test/envoy/image-bundle.test.ts.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** The files the runtime stage of envoy/k8s/Dockerfile.authz-server copies into /app. */
export const BUNDLE_FILES = ["THIRD-PARTY-LICENSES.txt", "authz-server.mjs", "envoy-protos.json"] as const;

/** Bundles authz-server/dist (built by `npm run build:server`) into `outdir`; throws with esbuild's message. */
export function bundleServer(outdir: string): void {
  if (!existsSync(join(ROOT, "authz-server/dist/main.js"))) throw new Error("authz-server/dist is not built: run npm run build:server");
  const r = spawnSync(process.execPath, ["authz-server/bundle.mjs", "--outdir", outdir], { cwd: ROOT, encoding: "utf8", timeout: 120_000 });
  if (r.status !== 0) throw new Error(`authz-server/bundle.mjs failed (${r.status ?? r.signal}): ${r.stderr}`);
}

/** Every node_modules folder Node's resolver would look in from `dir` up to the root. */
export function nodeModulesOnPath(dir: string): string[] {
  const found: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, "node_modules"))) found.push(join(d, "node_modules"));
    if (dirname(d) === d) return found;
  }
}
