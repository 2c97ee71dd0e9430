// Holds the serving generation — compiled policy plus the credential verifiers built from it — and
// swaps it atomically on reload (file change or SIGHUP). An invalid file is logged and rejected;
// the old generation keeps serving.
import { watch, type FSWatcher } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { Clock } from "./clock.js";
import { Credentials, type CredentialPlugin, type CredentialVerifier, type IdentityCheck, type KeySourceFactory } from "./credentials/index.js";
import { jwtPlugin } from "./credentials/jwt.js";
import { PolicyInvalid } from "./errors.js";
import type { CompiledPolicy } from "./policy/compiled.js";
import { loadPolicyFile } from "./policy/load-policy.js";

/** One policy generation: everything a Check needs that depends on the policy file. */
export interface Runtime {
  readonly policy: CompiledPolicy;
  readonly credentials: Credentials;
}

export interface RuntimeDeps {
  readonly clock: Clock;
  readonly registry: Registry;
  readonly logger: Logger;
  readonly createKeySource: KeySourceFactory;
  /** Credential kinds in precedence order (wiring.ts's credentialPlugins); default: JWT alone. */
  readonly credentialPlugins?: readonly CredentialPlugin[];
  readonly onTokenCache?: (hit: boolean) => void;
  readonly tokenCacheSize?: number;
}

/** Builds the credential verifiers for a compiled policy, plugin by plugin in list order; throws PolicyInvalid for unusable provider settings. */
export function buildRuntime(policy: CompiledPolicy, deps: RuntimeDeps): Runtime {
  const verifiers: CredentialVerifier[] = [];
  const checks: IdentityCheck[] = [];
  try {
    for (const plugin of deps.credentialPlugins ?? [jwtPlugin()]) {
      const built = plugin.build({ policy, ...deps });
      verifiers.push(...(built.verifiers ?? []));
      checks.push(...(built.checks ?? []));
    }
  } catch (err) {
    for (const v of verifiers) v.close();
    throw err;
  }
  return { policy, credentials: new Credentials(verifiers, checks, policy.limits.maxCredentialBytes) };
}

export interface PolicyHolderOptions extends RuntimeDeps {
  readonly file: string;
  /** Quiet period after a file event before reloading (editors write in several steps). */
  readonly debounceMs?: number;
}

export class PolicyHolder {
  private runtime: Runtime | undefined;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners: ((r: Runtime) => void)[] = [];

  constructor(private readonly opts: PolicyHolderOptions) {}

  /** A holder serving an already built runtime (tests, benchmarks); reload() re-reads `opts.file`. */
  static of(runtime: Runtime, opts: PolicyHolderOptions): PolicyHolder {
    const h = new PolicyHolder(opts);
    h.runtime = runtime;
    return h;
  }

  get current(): Runtime | undefined {
    return this.runtime;
  }

  /** Initial load (of `policy` when the caller compiled the file already): throws PolicyInvalid (the caller exits non-zero). */
  load(policy: CompiledPolicy = loadPolicyFile(this.opts.file)): Runtime {
    const runtime = buildRuntime(policy, this.opts);
    this.swap(runtime);
    return runtime;
  }

  /** Re-reads the file; on any problem logs it, counts it and keeps serving the old generation. Returns whether a new policy is served. */
  reload(): boolean {
    let next: Runtime;
    try {
      const policy = loadPolicyFile(this.opts.file);
      if (policy.version === this.runtime?.policy.version) return false;
      next = buildRuntime(policy, this.opts);
    } catch (err) {
      this.opts.logger.error({ err: err instanceof PolicyInvalid ? err.message : String(err), file: this.opts.file }, "policy reload rejected; the previous policy keeps serving");
      this.onResult?.("rejected");
      return false;
    }
    this.swap(next);
    this.opts.logger.info({ file: this.opts.file, version: next.policy.version }, "policy reloaded");
    this.onResult?.("ok");
    return true;
  }

  /** Called with the outcome of every reload attempt (metrics). */
  onResult?: (result: "ok" | "rejected") => void;

  onChange(listener: (r: Runtime) => void): void {
    this.listeners.push(listener);
  }

  /** Watches the file's directory (editors and Kubernetes ConfigMaps replace files by rename). */
  watch(): void {
    if (this.watcher) return;
    const file = resolve(this.opts.file);
    const name = basename(file);
    this.watcher = watch(dirname(file), { persistent: false }, (_event, changed) => {
      if (changed && changed !== name && !String(changed).startsWith("..")) return;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.reload(), this.opts.debounceMs ?? 150);
    });
    this.watcher.on("error", (err) => this.opts.logger.warn({ err: String(err) }, "policy watch failed"));
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
    clearTimeout(this.timer);
    this.runtime?.credentials.close();
  }

  private swap(next: Runtime): void {
    const old = this.runtime;
    this.runtime = next;
    for (const l of this.listeners) l(next);
    // In-flight Checks may still hold the old generation: close its key sources a little later.
    if (old) setTimeout(() => old.credentials.close(), 5_000).unref();
  }
}
