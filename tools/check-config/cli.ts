// `npm run check-config [--schemas DIR] [PATHS…]`: validates policies, plugin configurations, Envoy
// bootstraps and Kubernetes/Istio manifests offline, then (when Envoy is installed) every bootstrap with
// `envoy --mode validate`; exits 1 on any error (2 on bad usage).
import { join } from "node:path";
import { EnvoyUnavailable, resolveEnvoy } from "../envoy/resolve.js";
import { localiseWasmPaths, missingWasmFiles, validateBootstrap } from "../envoy/validate.js";
import { REPO_ROOT, checkPaths, defaultSchemasDir, displayPath, type CheckReport } from "./check-files.js";
import { formatProblem, isError, type Problem } from "./problem.js";

const USAGE = "usage: check-config [--schemas DIR] [PATH…]   (default PATHs: examples/ envoy/)";

/** Envoy's own verdict on each bootstrap that passed the offline checks; a note when Envoy is not installed. */
async function envoyValidate(report: CheckReport): Promise<{ problems: Problem[]; note: string }> {
  if (report.bootstraps.length === 0) return { problems: [], note: "" };
  let envoy;
  try {
    envoy = resolveEnvoy();
  } catch (err) {
    if (!(err instanceof EnvoyUnavailable)) throw err;
    return { problems: [], note: `check-config: Envoy validation skipped (${err.message})` };
  }
  let validated = 0;
  const bin = envoy.bin;
  // One Envoy per bootstrap, all at once (each takes a second or so, mostly compiling the Wasm modules).
  const perBootstrap = await Promise.all(
    report.bootstraps.map(async (b): Promise<Problem[]> => {
      const value = localiseWasmPaths(b.value);
      const missing = missingWasmFiles(value);
      if (missing.length > 0) {
        return [{ file: b.file, path: b.path, code: "ERR_ENVOY_VALIDATE_SKIPPED", severity: "warning", message: `not validated by Envoy: ${missing.join(", ")} missing (run npm run build:filters)` }];
      }
      const v = await validateBootstrap(bin, value);
      validated++;
      return [
        ...v.errors.map((e): Problem => ({ file: b.file, path: b.path, code: "ERR_ENVOY_VALIDATE", message: `envoy --mode validate: ${e}` })),
        ...[...new Set(v.warnings)].map((w): Problem => ({ file: b.file, path: b.path, code: "ERR_ENVOY_VALIDATE_WARNING", severity: "warning", message: `envoy --mode validate: ${w}` })),
      ];
    }),
  );
  const problems = perBootstrap.flat();
  return { problems, note: `check-config: ${validated} Envoy bootstrap${validated === 1 ? "" : "s"} validated by Envoy ${envoy.version} (envoy --mode validate)` };
}

async function main(argv: readonly string[]): Promise<number> {
  const paths: string[] = [];
  let schemasDir = defaultSchemasDir();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === "--help" || a === "-h") {
      console.log(USAGE);
      return 0;
    }
    if (a === "--schemas") {
      const dir = argv[++i];
      if (dir === undefined) {
        console.error(`check-config: --schemas needs a directory\n${USAGE}`);
        return 2;
      }
      schemasDir = dir;
    } else if (a.startsWith("-")) {
      console.error(`check-config: unknown flag ${a}\n${USAGE}`);
      return 2;
    } else {
      paths.push(a);
    }
  }
  if (paths.length === 0) paths.push(join(REPO_ROOT, "examples"), join(REPO_ROOT, "envoy"));
  const report = checkPaths(paths, { schemasDir });
  const envoy = await envoyValidate(report);
  const all = [...report.problems, ...envoy.problems];
  const errors = all.filter(isError);
  for (const p of all) {
    const line = formatProblem({ ...p, file: displayPath(p.file) });
    if (isError(p)) console.error(line);
    else console.warn(line);
  }
  if (envoy.note !== "") console.log(envoy.note);
  const warnings = all.length - errors.length;
  const summary = `check-config: ${report.files.length} file${report.files.length === 1 ? "" : "s"}, ${errors.length} error${errors.length === 1 ? "" : "s"}, ${warnings} warning${warnings === 1 ? "" : "s"}`;
  if (errors.length > 0) console.error(summary);
  else console.log(summary);
  return errors.length > 0 ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
