// Command-line flags of authz-server: one table (FLAGS) gives each flag its environment variable,
// default and help line; node:util.parseArgs tokenizes, and bad input throws UsageError naming the flag.
import { readFileSync } from "node:fs";
import { parseArgs as tokenize } from "node:util";
import { CodedError } from "../error-codes.js";

export interface ServerArgs {
  readonly policy: string;
  readonly grpcAddr: string;
  readonly httpAddr: string;
  readonly redis?: string;
  readonly workers: number;
  readonly logLevel: string;
  readonly adminAddr?: string;
  readonly adminTokenFile?: string;
  /** OTLP/HTTP collector base URL; absent = tracing off. */
  readonly otlpEndpoint?: string;
  /** File holding the bearer token quota callers must send; absent = MESHWARD_QUOTA_TOKEN or open. */
  readonly quotaTokenFile?: string;
}

/** What the command line asks for: serve, or print help/version and exit 0. */
export type Command = { readonly kind: "serve"; readonly args: ServerArgs } | { readonly kind: "help" } | { readonly kind: "version" };

export class UsageError extends CodedError<"ERR_USAGE"> {
  constructor(message: string) {
    super("ERR_USAGE", message);
  }
}

export interface FlagSpec {
  /** Long flag name without the leading dashes. */
  readonly name: string;
  /** Placeholder of the value in the help text; absent for switches (--help, --version). */
  readonly value?: string;
  /** Environment variable read when the flag is absent; an empty variable counts as unset. */
  readonly env?: string;
  readonly default?: string;
  readonly help: string;
}

/** Every flag authz-server accepts, in help order. docs/operations.md's table is checked against it. */
export const FLAGS: readonly FlagSpec[] = [
  { name: "policy", value: "PATH", env: "MESHWARD_POLICY", help: "policy file, YAML or JSON (required)" },
  { name: "grpc-addr", value: "HOST:PORT", env: "MESHWARD_GRPC_ADDR", default: "0.0.0.0:9191", help: "ext_authz, health and rate limit gRPC listener" },
  { name: "http-addr", value: "HOST:PORT", env: "MESHWARD_HTTP_ADDR", default: "0.0.0.0:8181", help: "/healthz, /readyz, /metrics and quota HTTP listener" },
  { name: "redis", value: "URL", env: "MESHWARD_REDIS", help: "redis://, rediss:// or redis+cluster:// for quota, introspection cache and revocations (absent: in memory)" },
  { name: "workers", value: "N", env: "MESHWARD_WORKERS", default: "1", help: "processes sharing the ports; N may be auto: one per CPU available, capped by the container's CPU limit" },
  { name: "log-level", value: "LEVEL", env: "MESHWARD_LOG_LEVEL", default: "info", help: "fatal, error, warn, info, debug, trace or silent" },
  { name: "admin-addr", value: "HOST:PORT", env: "MESHWARD_ADMIN_ADDR", help: "admin listener for /v1/revocations (absent: disabled)" },
  { name: "admin-token-file", value: "PATH", env: "MESHWARD_ADMIN_TOKEN_FILE", help: "bearer secret of the admin listener (or the secret itself in MESHWARD_ADMIN_TOKEN)" },
  { name: "quota-token-file", value: "PATH", env: "MESHWARD_QUOTA_TOKEN_FILE", help: "bearer token quota callers must send (or the token itself in MESHWARD_QUOTA_TOKEN; absent: open, with a warning)" },
  { name: "otlp-endpoint", value: "URL", env: "OTEL_EXPORTER_OTLP_ENDPOINT", help: "OTLP/HTTP collector (e.g. http://otel:4318): export one span per Check (absent: tracing off)" },
  { name: "help", help: "print this help and exit" },
  { name: "version", help: "print the version and exit" },
];

function usageLine(f: FlagSpec): string {
  const left = `  --${f.name}${f.value ? ` ${f.value}` : ""}`;
  const extras = [f.env ? `env ${f.env}` : "", f.default ? `default ${f.default}` : ""].filter(Boolean).join("; ");
  return `${left.padEnd(30)} ${f.help}${extras ? ` (${extras})` : ""}`;
}

export const USAGE = `usage: authz-server --policy PATH [flags]\n${FLAGS.map(usageLine).join("\n")}`;

/** The package version (package.json sits three levels above both src/cli and dist/cli). */
export function version(): string {
  return (JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }).version;
}

const LEVELS = new Set(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);
const BY_NAME = new Map(FLAGS.map((f) => [f.name, f]));
const OPTIONS = Object.fromEntries(FLAGS.map((f) => [f.name, { type: f.value ? ("string" as const) : ("boolean" as const) }]));

/**
 * Parses argv and the environment; throws UsageError for anything it cannot use. `cpus` answers
 * `--workers auto` (cli/cpu-budget.ts reads the machine's; tests pass their own).
 */
export function parseCommand(argv: readonly string[], env: NodeJS.ProcessEnv, cpus: () => number = () => 1): Command {
  const { tokens } = tokenize({ args: [...argv], options: OPTIONS, strict: false, allowPositionals: true, tokens: true });
  const values = new Map<string, string>();
  const switches = new Set<string>();
  for (const t of tokens) {
    if (t.kind === "positional") throw new UsageError(`unknown flag '${t.value}'`);
    if (t.kind === "option-terminator") throw new UsageError("unknown flag '--'");
    const spec = BY_NAME.get(t.name);
    if (!spec || !t.rawName.startsWith("--")) throw new UsageError(`unknown flag '${t.rawName}'`);
    if (values.has(t.name) || switches.has(t.name)) throw new UsageError(`flag '${t.rawName}' given twice`);
    if (!spec.value) {
      if (t.value !== undefined) throw new UsageError(`flag '${t.rawName}' takes no value`);
      switches.add(t.name);
      continue;
    }
    if (t.value === undefined || (!t.inlineValue && t.value.startsWith("--"))) throw new UsageError(`flag '${t.rawName}' needs a value`);
    values.set(t.name, t.value);
  }
  if (switches.has("help")) return { kind: "help" };
  if (switches.has("version")) return { kind: "version" };
  // Flag first, then its environment variable (empty = unset), then the default.
  const get = (name: string): string | undefined => {
    const spec = BY_NAME.get(name)!;
    return values.get(name) ?? ((spec.env && env[spec.env]) || undefined) ?? spec.default;
  };
  const source = (name: string): string => (values.has(name) ? `flag '--${name}'` : `${BY_NAME.get(name)!.env}`);

  const policy = get("policy");
  if (!policy) throw new UsageError("--policy (or MESHWARD_POLICY) is required");
  const grpcAddr = get("grpc-addr")!;
  const httpAddr = get("http-addr")!;
  for (const [name, addr] of [["grpc-addr", grpcAddr], ["http-addr", httpAddr]] as const) {
    const m = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/.exec(addr);
    if (!m || Number(m[1]) > 65535) throw new UsageError(`${source(name)}: invalid address '${addr}' (expected HOST:PORT)`);
  }
  const workersText = get("workers")!;
  if (workersText !== "auto" && !/^[1-9][0-9]{0,2}$/.test(workersText)) throw new UsageError(`${source("workers")}: '${workersText}' is not 'auto' or a whole number from 1 to 999`);
  const workers = workersText === "auto" ? Math.min(999, Math.max(1, cpus())) : Number(workersText);
  const logLevel = get("log-level")!;
  if (!LEVELS.has(logLevel)) throw new UsageError(`${source("log-level")}: unknown level '${logLevel}'`);
  const redis = get("redis");
  // The URL may carry a password: never echo its userinfo.
  if (redis !== undefined && !/^(rediss?|redis\+cluster):\/\//.test(redis)) {
    throw new UsageError(`${source("redis")}: '${redis.replace(/\/\/[^/@]*@/, "//***@")}' is not a redis://, rediss:// or redis+cluster:// URL`);
  }
  const otlpEndpoint = get("otlp-endpoint");
  if (otlpEndpoint !== undefined && !/^https?:\/\/[^\s]+$/.test(otlpEndpoint)) throw new UsageError(`${source("otlp-endpoint")}: '${otlpEndpoint.replace(/\/\/[^/@]*@/, "//***@")}' is not an http:// or https:// URL`);
  const adminAddr = get("admin-addr");
  const adminTokenFile = get("admin-token-file");
  const quotaTokenFile = get("quota-token-file");
  return {
    kind: "serve",
    args: {
      policy,
      grpcAddr,
      httpAddr,
      workers,
      logLevel,
      ...(redis ? { redis } : {}),
      ...(adminAddr ? { adminAddr } : {}),
      ...(adminTokenFile ? { adminTokenFile } : {}),
      ...(otlpEndpoint ? { otlpEndpoint } : {}),
      ...(quotaTokenFile ? { quotaTokenFile } : {}),
    },
  };
}

/** The serving arguments; throws UsageError for --help/--version too (callers that serve handle those first). */
export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv, cpus?: () => number): ServerArgs {
  const c = parseCommand(argv, env, cpus);
  if (c.kind !== "serve") throw new UsageError(`--${c.kind} does not start a server`);
  return c.args;
}
