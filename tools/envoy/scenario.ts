// The seed scenarios on loopback: authz-server (e2e policy, JWT issuer), two recording upstreams
// (app-v1, app-v2), and helpers to run the shipped gateway/sidecar bootstraps against them with the
// access log in a file and the per-IP limit narrowed to requests that opt in.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { startEcho, type EchoUpstream } from "../testing/echo-upstream.js";
import { createIssuer, e2ePolicy, startAuthz, tempDir, type Issuer, type RunningAuthz } from "../testing/e2e-authz.js";
import { fileAccessLog, hcmOf, pluginConfigOf, shippedBootstrap, type Obj } from "./bootstrap.js";

export interface World {
  readonly dir: string;
  readonly issuer: Issuer;
  readonly authz: RunningAuthz;
  readonly v1: EchoUpstream;
  readonly v2: EchoUpstream;
  /** Loopback addresses for the shipped clusters (meshward-authz, meshward-quota, app-v1, app-v2). */
  readonly endpoints: Record<string, string>;
  stop(): Promise<void>;
}

export async function startWorld(opts: { policy?: (jwksFile: string) => string; redisUrl?: string } = {}): Promise<World> {
  const tmp = tempDir();
  const issuer = await createIssuer(tmp.dir);
  const authz = await startAuthz(tmp.dir, (opts.policy ?? e2ePolicy)(issuer.jwksFile), opts.redisUrl ? { redisUrl: opts.redisUrl } : {});
  const [v1, v2] = await Promise.all([startEcho("app-v1"), startEcho("app-v2")]);
  let stopped = false;
  // authz-server may be stopped by a test (fail-closed cases) before the world is.
  let authzStopped: Promise<void> | undefined;
  const authzOnce: RunningAuthz = { ...authz, stop: () => (authzStopped ??= authz.stop()) };
  return {
    dir: tmp.dir,
    issuer,
    authz: authzOnce,
    v1,
    v2,
    endpoints: { "meshward-authz": authz.grpcAddress, "meshward-quota": authz.httpAddress, "app-v1": v1.address, "app-v2": v2.address },
    async stop() {
      if (stopped) return;
      stopped = true;
      await Promise.all([authzOnce.stop(), v1.close(), v2.close()]);
      tmp.remove();
    },
  };
}

export interface GatewayOptions {
  /** Write the shipped JSON access log to this file instead of stdout. */
  readonly accessLogPath?: string;
  /**
   * The edge per-IP limit (`rate-limit-edge`) applies only to requests carrying `x-burst-test`, with
   * this capacity and no refill in practice: every test client is 127.0.0.1, so the shipped 100/50 s
   * limit would otherwise shed the other cases' requests.
   */
  readonly burstCapacity?: number;
  /** Overrides for named clusters' addresses (e.g. app-v1 → an ingress Envoy). */
  readonly endpoints?: Record<string, string>;
  /**
   * The lease call's timeout (quota.timeoutMs of every rate-limit plugin that has one), default 3000.
   * The shipped 200 ms is met on an idle machine; on a loaded 2-core test machine lease calls took
   * longer (Envoy answered 504) and the filter fell back to its failure mode.
   */
  readonly leaseTimeoutMs?: number;
}

/** A shipped bootstrap (edge.yaml, sidecar.yaml or the gateway ConfigMap) on `world`'s loopback servers. */
export function scenarioBootstrap(file: string, world: World, o: GatewayOptions = {}): Obj {
  const config = shippedBootstrap(file, { ...world.endpoints, ...(o.endpoints ?? {}) });
  const hcm = hcmOf(config);
  if (o.accessLogPath !== undefined) {
    const shipped = hcm["access_log"][0]["typed_config"]["log_format"]["json_format"] as Record<string, string>;
    hcm["access_log"] = [fileAccessLog(o.accessLogPath, shipped)];
  }
  for (const f of hcm["http_filters"] as Obj[]) {
    const name = f["typed_config"]?.["config"]?.["name"];
    if (typeof name !== "string" || f["typed_config"]["config"]["root_id"] !== "rate-limit") continue;
    const plugin = pluginConfigOf(hcm, name);
    const conf = plugin.get();
    if (conf["quota"] !== undefined) plugin.set({ ...conf, quota: { ...conf["quota"], timeoutMs: o.leaseTimeoutMs ?? 3000 } });
  }
  if (o.burstCapacity !== undefined) {
    const edge = pluginConfigOf(hcm, "rate-limit-edge");
    const conf = edge.get();
    conf["limits"][0] = { ...conf["limits"][0], match: { headers: [{ name: "x-burst-test", present: true }] }, capacity: o.burstCapacity, refillPerSecond: 0.001 };
    edge.set(conf);
  }
  return config;
}

/** The JSON lines of an access log file written so far. */
export function readAccessLog(path: string): Record<string, unknown>[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Polls the access log until a line satisfies `pred` (Envoy flushes file logs periodically). */
export async function waitForAccessLog(path: string, pred: (line: Record<string, unknown>) => boolean, timeoutMs = 5000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const hit = readAccessLog(path).find(pred);
    if (hit) return hit;
    if (Date.now() > deadline) throw new Error(`no access log line in ${timeoutMs} ms matched; have:\n${readAccessLog(path).slice(-5).map((l) => JSON.stringify(l)).join("\n")}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const accessLogFile = (world: World, name: string): string => join(world.dir, `${name}-access.log`);
