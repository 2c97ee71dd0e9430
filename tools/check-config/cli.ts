// `npm run check-config [--schemas DIR] [PATHS…]`: validates policies, plugin configurations, Envoy
// bootstraps and Kubernetes/Istio manifests offline; exits 1 on any error (2 on bad usage).
import { join } from "node:path";
import { REPO_ROOT, checkPaths, defaultSchemasDir, displayPath } from "./check-files.js";
import { formatProblem, isError } from "./problem.js";

const USAGE = "usage: check-config [--schemas DIR] [PATH…]   (default PATHs: examples/ envoy/)";

function main(argv: readonly string[]): number {
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
  const errors = report.problems.filter(isError);
  for (const p of report.problems) {
    const line = formatProblem({ ...p, file: displayPath(p.file) });
    if (isError(p)) console.error(line);
    else console.warn(line);
  }
  const warnings = report.problems.length - errors.length;
  const summary = `check-config: ${report.files.length} file${report.files.length === 1 ? "" : "s"}, ${errors.length} error${errors.length === 1 ? "" : "s"}, ${warnings} warning${warnings === 1 ? "" : "s"}`;
  if (errors.length > 0) console.error(summary);
  else console.log(summary);
  return errors.length > 0 ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));
