// Command-line flags of authz-server with their environment equivalents (docs/cli.md).
// Bad input throws UsageError naming the flag and the problem.

export interface ServerArgs {
  readonly policy: string;
  readonly grpcAddr: string;
  readonly httpAddr: string;
  readonly redis?: string;
  readonly workers: number;
  readonly logLevel: string;
  readonly adminAddr?: string;
  readonly adminTokenFile?: string;
}

export class UsageError extends Error {
  readonly code = "ERR_USAGE";
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export const USAGE = `usage: authz-server --policy PATH [--grpc-addr HOST:PORT] [--http-addr HOST:PORT]
                    [--redis URL] [--workers N] [--log-level LEVEL]
  --policy PATH          policy file, YAML or JSON (env MESHWARD_POLICY)
  --grpc-addr HOST:PORT  ext_authz, health and rate limit gRPC listener (default 0.0.0.0:9191)
  --http-addr HOST:PORT  /healthz, /readyz, /metrics and quota HTTP listener (default 0.0.0.0:8181)
  --redis URL            redis://… for quota buckets (env MESHWARD_REDIS; absent = in-memory)
  --workers N|auto       N processes sharing the ports (env MESHWARD_WORKERS; default 1);
                         auto = the CPUs available, capped by the container's CPU limit
  --log-level LEVEL      fatal, error, warn, info, debug, trace or silent (default info)
  --admin-addr HOST:PORT admin listener for /v1/revocations (env MESHWARD_ADMIN_ADDR; default: disabled)
  --admin-token-file PATH bearer secret of the admin listener (or env MESHWARD_ADMIN_TOKEN); required with --admin-addr`;

const LEVELS = new Set(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);
const FLAGS = new Set(["--policy", "--grpc-addr", "--http-addr", "--redis", "--workers", "--log-level", "--admin-addr", "--admin-token-file"]);

/** `cpus` answers `--workers auto` (cli/cpu-budget.ts reads the machine's; tests pass their own). */
export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv, cpus: () => number = () => 1): ServerArgs {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf("=");
    const name = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    if (!FLAGS.has(name)) throw new UsageError(`unknown flag '${name}'`);
    let value: string | undefined;
    if (eq > 0 && arg.startsWith("--")) value = arg.slice(eq + 1);
    else {
      value = argv[++i];
      if (value === undefined || value.startsWith("--")) throw new UsageError(`flag '${name}' needs a value`);
    }
    if (values.has(name)) throw new UsageError(`flag '${name}' given twice`);
    values.set(name, value);
  }
  const policy = values.get("--policy") ?? env.MESHWARD_POLICY;
  if (!policy) throw new UsageError("--policy (or MESHWARD_POLICY) is required");
  const grpcAddr = values.get("--grpc-addr") ?? "0.0.0.0:9191";
  const httpAddr = values.get("--http-addr") ?? "0.0.0.0:8181";
  for (const [flag, addr] of [["--grpc-addr", grpcAddr], ["--http-addr", httpAddr]] as const) {
    const m = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/.exec(addr);
    if (!m || Number(m[1]) > 65535) throw new UsageError(`flag '${flag}': invalid address '${addr}' (expected HOST:PORT)`);
  }
  const workersText = values.get("--workers") ?? (env.MESHWARD_WORKERS || "1");
  if (workersText !== "auto" && !/^[1-9][0-9]{0,2}$/.test(workersText)) throw new UsageError(`flag '--workers': '${workersText}' is not 'auto' or a whole number from 1 to 999`);
  const workers = workersText === "auto" ? Math.min(999, Math.max(1, cpus())) : Number(workersText);
  const logLevel = values.get("--log-level") ?? "info";
  if (!LEVELS.has(logLevel)) throw new UsageError(`flag '--log-level': unknown level '${logLevel}'`);
  const redis = values.get("--redis") ?? (env.MESHWARD_REDIS || undefined);
  // The URL may carry a password: never echo its userinfo.
  if (redis !== undefined && !/^rediss?:\/\//.test(redis)) throw new UsageError(`flag '--redis': '${redis.replace(/\/\/[^/@]*@/, "//***@")}' is not a redis:// or rediss:// URL`);
  const adminAddr = values.get("--admin-addr") ?? env.MESHWARD_ADMIN_ADDR;
  const adminTokenFile = values.get("--admin-token-file");
  return { policy, grpcAddr, httpAddr, workers, logLevel, ...(redis ? { redis } : {}), ...(adminAddr ? { adminAddr } : {}), ...(adminTokenFile ? { adminTokenFile } : {}) };
}
