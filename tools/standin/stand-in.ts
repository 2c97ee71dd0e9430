// The Envoy stand-in: one "Envoy process" (shared data, queues, stats, clock, logs) that loads wasm plugins
// into N worker VMs each, and runs HTTP streams through filter chains.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { isAbsolute, join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { deflateSync, inflateSync } from "node:zlib";
import { LogLevel, WasmResult, type LogLevelName } from "./abi.js";
import { ManualClock, type Clock } from "./clock.js";
import { FilterChain, HttpStream, type RequestSpec, type StreamResult, type Upstream } from "./filter-chain.js";
import { providedImports, EXPORT_SIGNATURES, type EnvoyProfile } from "./host-signatures.js";
import { assertLoopbackClusters, HttpCallDispatcher, type ClusterSpec, type PendingHttpCall } from "./http-callout.js";
import type { FilterCallbacks, HttpFilter, HttpFilterFactory, LogEntry } from "./http-filter.js";
import type { NodeInfo } from "./properties.js";
import { SharedDataStore, SharedQueueRegistry } from "./shared-state.js";
import { StatsStore } from "./stats.js";
import { Wasm, type WasmModule } from "./wasm-api.js";
import { inspectModule, type ModuleInfo } from "./wasm-module.js";
import { WasmStreamFilter } from "./wasm-stream-filter.js";
import { defaultRandom, WasmVm, type ForeignFunction, type PluginIdentity, type VmHost } from "./wasm-vm.js";

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

export interface StandInOptions {
  /** Default: a ManualClock (time moves only with clock.advance). */
  clock?: Clock;
  /** "current" Envoy (default) or "old" (≈1.16–1.18: implicit route-cache clears, 10/7-arg gRPC imports, …). */
  profile?: EnvoyProfile;
  /** Lowest plugin log level captured (default "trace": everything). Benchmarks should use "info" or higher. */
  logLevel?: LogLevelName;
  /** Old-Envoy implicit route-cache clear on request-header mutation (default: profile === "old"). */
  implicitRouteCacheClear?: boolean;
  node?: NodeInfo;
  random?: (buf: Uint8Array) => void;
  /** Size of the process-wide log ring (default 10 000). */
  maxLogs?: number;
}

export interface PluginOptions {
  /** Path (absolute or relative to the repo root) or the module bytes. */
  wasm: string | Uint8Array;
  rootId?: string;
  /** Envoy plugin name (default: rootId). */
  name?: string;
  vmId?: string;
  /** Plugin configuration bytes (objects are JSON-encoded). */
  configuration?: string | Uint8Array | object;
  vmConfiguration?: string | Uint8Array;
  /** Worker VMs (default 1). */
  workers?: number;
  /** Envoy's deprecated fail_open (default false = fail closed). */
  failOpen?: boolean;
  /** Envoy 1.40 failure_policy (FAIL_RELOAD is not modelled); FAIL_OPEN differs from fail_open, see PluginIdentity. */
  failurePolicy?: "FAIL_CLOSED" | "FAIL_OPEN";
  clusters?: Record<string, ClusterSpec>;
  environment?: Record<string, string>;
  /** Extra foreign functions (override the built-ins of the same name). */
  foreignFunctions?: Record<string, ForeignFunction>;
  /** Run start+configure on a throw-away canary VM first, as Envoy's main thread does (default true). */
  canary?: boolean;
}

/** A plugin configuration Envoy would reject (compile, link, start or configure failure; with fail_open too). */
export class PluginLoadError extends Error {
  constructor(readonly code: "ERR_WASM_LINK" | "ERR_WASM_START" | "ERR_WASM_COMPILE", message: string) {
    super(message);
  }
}

function bytesOf(v: string | Uint8Array | object | undefined): Uint8Array {
  if (v === undefined) return new Uint8Array(0);
  if (typeof v === "string") return Buffer.from(v, "utf8");
  if (v instanceof Uint8Array) return v;
  return Buffer.from(JSON.stringify(v), "utf8");
}

/** Checks imports/exports against what Envoy provides (§4 linking, §6.1); returns an error message or undefined. */
export function linkCheck(info: ModuleInfo, profile: EnvoyProfile): string | undefined {
  const names = new Set(info.exports.map((e) => e.name));
  let abi: "0_2_0" | "0_2_1";
  if (names.has("proxy_abi_version_0_2_1")) abi = "0_2_1";
  else if (names.has("proxy_abi_version_0_2_0")) abi = "0_2_0";
  else if (names.has("proxy_abi_version_0_1_0")) return "unsupported ABI version 0.1.0 (this host implements 0.2.x)";
  else return "no proxy_abi_version export: not a proxy-wasm module";
  const provided = providedImports(profile, abi);
  for (const imp of info.imports) {
    const table = provided.get(imp.module);
    const want = imp.kind === "func" ? table?.get(imp.name) : undefined;
    if (want === undefined) return `missing import: ${imp.module}.${imp.name}`;
    if (want !== imp.sig) return `import type mismatch: ${imp.module}.${imp.name} (module ${imp.sig}, host ${want})`;
  }
  for (const exp of info.exports) {
    const want = EXPORT_SIGNATURES.get(exp.name);
    if (want !== undefined && exp.kind === "func" && exp.sig !== want) return `export type mismatch: ${exp.name} (module ${exp.sig}, expected ${want})`;
  }
  if (!names.has("malloc") && !names.has("proxy_on_memory_allocate")) return "module exports neither malloc nor proxy_on_memory_allocate";
  return undefined;
}

const moduleCache = new Map<string, { module: WasmModule; info: ModuleInfo }>();

function compile(bytes: Uint8Array): { module: WasmModule; info: ModuleInfo } {
  const key = createHash("sha256").update(bytes).digest("hex");
  let c = moduleCache.get(key);
  if (!c) {
    c = { module: new Wasm.Module(bytes), info: inspectModule(bytes) };
    moduleCache.set(key, c);
  }
  return c;
}

const builtinForeignFunctions: Record<string, ForeignFunction> = {
  clear_route_cache: (_args, ctx) => {
    ctx.clearRouteCache();
    return { result: WasmResult.Ok };
  },
  compress: (args) => ({ result: WasmResult.Ok, data: deflateSync(args) }),
  uncompress: (args) => {
    try {
      return { result: WasmResult.Ok, data: inflateSync(args) };
    } catch {
      return { result: WasmResult.SerializationFailure };
    }
  },
};

/** One simulated Envoy process. */
export class StandIn {
  readonly clock: Clock;
  readonly sharedData = new SharedDataStore();
  readonly queues = new SharedQueueRegistry();
  readonly stats = new StatsStore();
  readonly profile: EnvoyProfile;
  readonly logLevel: number;
  readonly implicitRouteCacheClear: boolean;
  readonly node: NodeInfo;
  readonly random: (buf: Uint8Array) => void;
  /** Recent plugin log lines, all plugins and VMs (bounded: between maxLogs and 2×maxLogs of the latest). */
  readonly logs: LogEntry[] = [];
  private readonly maxLogs: number;

  constructor(options: StandInOptions = {}) {
    this.clock = options.clock ?? new ManualClock();
    this.profile = options.profile ?? "current";
    this.logLevel = LogLevel[options.logLevel ?? "trace"];
    this.implicitRouteCacheClear = options.implicitRouteCacheClear ?? this.profile === "old";
    this.node = options.node ?? { id: "standin-node", cluster: "standin" };
    this.random = options.random ?? defaultRandom;
    this.maxLogs = options.maxLogs ?? 10_000;
  }

  /** Loads a plugin into its worker VMs (canary first). Throws PluginLoadError when Envoy would reject it. */
  async loadPlugin(options: PluginOptions): Promise<Plugin> {
    const bytes = typeof options.wasm === "string"
      ? readFileSync(isAbsolute(options.wasm) ? options.wasm : join(REPO_ROOT, options.wasm))
      : options.wasm;
    return new Plugin(this, options, bytes);
  }

  /** A filter chain over several filters (wasm workers or others) ending in `upstream`. */
  chain(filters: readonly HttpFilterFactory[], upstream: Upstream = () => ({ status: 200 })): FilterChain {
    return new FilterChain({ filters, upstream, clock: this.clock });
  }

  /** Waits one event-loop turn, so pending asynchronous deliveries (callouts, queue notifications) run. */
  settle(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve));
  }

  /** Counter/gauge value by metric name, or undefined. */
  metric(name: string): number | undefined {
    return this.stats.value(name);
  }

  /** @internal */
  recordLog(e: LogEntry): void {
    this.logs.push(e);
    if (this.logs.length >= 2 * this.maxLogs) this.logs.splice(0, this.logs.length - this.maxLogs);
  }

  /** Log lines containing `text` (optionally only from one plugin). */
  logsMatching(text: string | RegExp, plugin?: string): LogEntry[] {
    return this.logs.filter((l) => (plugin === undefined || l.plugin === plugin) &&
      (typeof text === "string" ? l.message.includes(text) : text.test(l.message)));
  }
}

/** A loaded plugin configuration: N worker VMs of one module with one root context each. */
export class Plugin {
  readonly identity: PluginIdentity;
  readonly workers: Worker[] = [];
  /** Why the VMs failed to load, when fail_open kept the plugin (transparent). */
  readonly loadError: string | undefined;
  readonly http: HttpCallDispatcher;
  private readonly vmHost: VmHost;

  constructor(readonly standIn: StandIn, options: PluginOptions, bytes: Uint8Array) {
    const rootId = options.rootId ?? "";
    this.identity = {
      name: options.name ?? rootId,
      rootId,
      vmId: options.vmId ?? "",
      configuration: bytesOf(options.configuration),
      vmConfiguration: bytesOf(options.vmConfiguration),
      failOpen: options.failOpen ?? false,
      failOpenAfterFailure: options.failurePolicy === "FAIL_OPEN",
      environment: options.environment ?? {},
    };
    const clusters = new Map(Object.entries(options.clusters ?? {}));
    assertLoopbackClusters(clusters);
    this.http = new HttpCallDispatcher(clusters, standIn.clock);
    const s = standIn;
    this.vmHost = {
      clock: s.clock, sharedData: s.sharedData, queues: s.queues, stats: s.stats, profile: s.profile,
      logLevel: s.logLevel, node: s.node, implicitRouteCacheClear: s.implicitRouteCacheClear, http: this.http,
      foreignFunctions: new Map(Object.entries({ ...builtinForeignFunctions, ...(options.foreignFunctions ?? {}) })),
      random: s.random, onLog: (e) => s.recordLog(e),
    };
    // Envoy 1.40 refuses a plugin that fails to compile, link, start or configure at load time whatever
    // fail_open says ("Unable to create Wasm plugin <name>"); fail_open only covers VMs failing later.
    // The "old" profile keeps such a plugin, transparent (not checked against a real Envoy).
    const fail = (code: PluginLoadError["code"], reason: string): string => {
      if (!this.identity.failOpen && !this.identity.failOpenAfterFailure) throw new PluginLoadError(code, `Plugin configured to fail closed failed to load: ${reason}`);
      if (s.profile === "current") throw new PluginLoadError(code, `Unable to create Wasm plugin ${this.identity.name}: ${reason}`);
      return reason;
    };
    let loadError: string | undefined;
    let compiled: { module: WasmModule; info: ModuleInfo } | undefined;
    try {
      compiled = compile(bytes);
    } catch (err) {
      loadError = fail("ERR_WASM_COMPILE", `compile failed: ${(err as Error).message}`);
    }
    if (compiled) {
      const link = linkCheck(compiled.info, s.profile);
      if (link) loadError = fail("ERR_WASM_LINK", link);
    }
    if (compiled && !loadError && options.canary !== false) {
      const canary = new WasmVm(this.vmHost, this.identity, -1);
      const err = canary.start(compiled.module);
      canary.dispose();
      if (err) loadError = fail("ERR_WASM_START", err);
    }
    this.loadError = loadError;
    const n = options.workers ?? 1;
    for (let i = 0; i < n; i++) {
      const vm = new WasmVm(this.vmHost, this.identity, i);
      if (compiled && !loadError) vm.start(compiled.module);
      else vm.failed = true;
      this.workers.push(new Worker(this, vm, i));
    }
  }

  get name(): string {
    return this.identity.name;
  }

  worker(i = 0): Worker {
    const w = this.workers[i];
    if (!w) throw new RangeError(`plugin ${this.name} has ${this.workers.length} workers, no worker ${i}`);
    return w;
  }

  /** Calls held by clusters declared `{ manual: true }`, oldest first. */
  get pendingHttpCalls(): readonly PendingHttpCall[] {
    return this.http.pending;
  }

  /** Shuts every worker's root context down (on_done, on_delete / proxy_done). */
  shutdown(): void {
    for (const w of this.workers) w.vm.shutdown();
  }
}

export type RunStreamOptions = RequestSpec & { upstream?: Upstream };

/** One worker thread's VM of a plugin; also the plugin's filter factory on that worker. */
export class Worker implements HttpFilterFactory {
  constructor(readonly plugin: Plugin, readonly vm: WasmVm, readonly index: number) {}

  get failed(): boolean {
    return this.vm.failed;
  }

  createFilter(callbacks: FilterCallbacks): HttpFilter {
    return new WasmStreamFilter(this.vm, callbacks);
  }

  /** Runs a whole request through this plugin alone (then `upstream`, default 200 with no body). */
  runStream(req: RunStreamOptions = {}): Promise<StreamResult> {
    return this.chain(req.upstream).run(req);
  }

  /** Creates (but does not start) a stream through this plugin alone, for step-by-step tests. */
  startStream(req: RunStreamOptions = {}): HttpStream {
    return this.chain(req.upstream).newStream(req);
  }

  private chain(upstream: Upstream | undefined): FilterChain {
    return new FilterChain({ filters: [this], upstream: upstream ?? (() => ({ status: 200 })), clock: this.plugin.standIn.clock });
  }
}
