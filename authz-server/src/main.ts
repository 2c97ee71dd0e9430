// authz-server entry point: reads flags/env (failing fast on bad ones), then serves — one process, or
// with --workers N a primary that forks N workers sharing the ports (node:cluster). See cli/serve.ts.
import cluster from "node:cluster";
import { parseCommand, USAGE, UsageError, version, type ServerArgs } from "./cli/args.js";

function readArgs(): ServerArgs {
  try {
    const command = parseCommand(process.argv.slice(2), process.env);
    if (command.kind === "help") {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    }
    if (command.kind === "version") {
      process.stdout.write(`authz-server ${version()}\n`);
      process.exit(0);
    }
    return command.args;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`authz-server: ${err.message}\n${USAGE}\n`);
      process.exit(2);
    }
    throw err;
  }
}

const args = readArgs();
const { runPrimary, runWorker, fail } = await import("./cli/serve.js");
if (cluster.isPrimary && args.workers > 1) {
  // The primary validates the policy before forking, so a bad file fails once, naming file, path and problem.
  const { loadPolicyFile } = await import("./policy/load-policy.js");
  const { PolicyInvalid } = await import("./errors.js");
  try {
    loadPolicyFile(args.policy);
  } catch (err) {
    if (!(err instanceof PolicyInvalid)) throw err;
    fail(err.message, 1);
  }
  runPrimary(args);
} else {
  runWorker(args).catch((err: unknown) => fail(err instanceof Error ? err.message : String(err), 1));
}
