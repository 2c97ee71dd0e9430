// Starts the real authz server (createAuthzServer on 127.0.0.1 port 0) from a policy text, with an
// injectable clock and captured decision logs, and talks to it with a grpc-js client over loopback.
import type { CredentialPlugin } from "../../authz-server/src/credentials/index.js";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { Registry } from "prom-client";
import { jwksKeySourceFactory } from "../../authz-server/src/credentials/jwks.js";
import { grpcClients } from "../../authz-server/src/grpc/protos.js";
import { createLogger } from "../../authz-server/src/observability/logger.js";
import { authzMetrics } from "../../authz-server/src/observability/metrics.js";
import { PolicyHolder } from "../../authz-server/src/policy-holder.js";
import { createAuthzServer, type AuthzServer } from "../../authz-server/src/server.js";

export interface TestClock {
  now(): number;
  set(ms: number): void;
}

export function testClock(ms = Date.now()): TestClock {
  let t = ms;
  return { now: () => t, set: (v) => (t = v) };
}

export interface HttpRequestSpec {
  readonly method?: string;
  readonly path?: string;
  readonly host?: string;
  readonly headers?: Record<string, string>;
  readonly principal?: string;
  readonly sourceAddress?: string;
  readonly contextExtensions?: Record<string, string>;
}

/** A CheckRequest in proto-loader object form, as Envoy's ext_authz filter sends it. */
export function checkRequest(spec: HttpRequestSpec = {}): object {
  const method = spec.method ?? "GET";
  const path = spec.path ?? "/";
  const host = spec.host ?? "api.example.com";
  return {
    attributes: {
      source: {
        address: { socketAddress: { address: spec.sourceAddress ?? "10.1.2.3", portValue: 40000 } },
        ...(spec.principal ? { principal: spec.principal } : {}),
      },
      destination: { address: { socketAddress: { address: "10.9.9.9", portValue: 8080 } } },
      request: {
        http: {
          id: "1",
          method,
          path,
          host,
          scheme: "https",
          protocol: "HTTP/1.1",
          headers: { ":method": method, ":path": path, ":authority": host, ...spec.headers },
        },
      },
      ...(spec.contextExtensions ? { contextExtensions: spec.contextExtensions } : {}),
    },
  };
}

export interface CheckResult {
  readonly raw: any;
  readonly allowed: boolean;
  readonly grpcCode: number;
  /** HTTP status of the denied response (200 when allowed). */
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: any;
  readonly reason: string;
  readonly decisionId: string;
  readonly metadata: Record<string, unknown>;
  readonly removed: readonly string[];
}

export interface Harness {
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly server: AuthzServer;
  readonly holder: PolicyHolder;
  readonly registry: Registry;
  readonly clock: TestClock;
  readonly logs: any[];
  readonly policyFile: string;
  check(req: object): Promise<CheckResult>;
  http(path: string): Promise<{ status: number; text: string }>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  stop(): Promise<void>;
}

export async function startHarness(policyText: string, opts: { clock?: TestClock; fileName?: string; credentialPlugins?: readonly CredentialPlugin[] } = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), "meshward-authz-"));
  const policyFile = join(dir, opts.fileName ?? "policy.yaml");
  writeFileSync(policyFile, policyText);
  const logs: any[] = [];
  const logger = createLogger("info", { write: (line: string) => void logs.push(JSON.parse(line)) });
  const registry = new Registry();
  const clock = opts.clock ?? testClock();
  const metrics = authzMetrics(registry);
  const holder = new PolicyHolder({
    file: policyFile,
    clock,
    registry,
    logger,
    createKeySource: jwksKeySourceFactory,
    onTokenCache: (hit) => metrics.tokenCache.inc({ result: hit ? "hit" : "miss" }),
    debounceMs: 50,
    ...(opts.credentialPlugins ? { credentialPlugins: opts.credentialPlugins } : {}),
  });
  holder.load();
  const server = createAuthzServer({ holder, logger, registry, clock, grpcAddress: "127.0.0.1:0", httpAddress: "127.0.0.1:0" });
  const { grpcPort, httpPort } = await server.start();
  const { Authorization } = grpcClients();
  const client = new (Authorization as any)(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure()) as grpc.Client & {
    Check(req: object, cb: (err: grpc.ServiceError | null, res: any) => void): void;
  };
  return {
    grpcPort,
    httpPort,
    server,
    holder,
    registry,
    clock,
    logs,
    policyFile,
    check: (req) =>
      new Promise((resolve, reject) =>
        client.Check(req, (err, res) => {
          if (err) return reject(err);
          resolve(toResult(res));
        }),
      ),
    async http(path) {
      const res = await fetch(`http://127.0.0.1:${httpPort}${path}`);
      return { status: res.status, text: await res.text() };
    },
    async metric(name, labels = {}) {
      const m = await registry.getSingleMetric(name)?.get();
      let sum = 0;
      for (const v of m?.values ?? []) {
        if (Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want)) sum += v.value;
      }
      return sum;
    },
    async stop() {
      client.close();
      await server.stop(1000);
      holder.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function toResult(res: any): CheckResult {
  const headers: Record<string, string> = {};
  const list = res.okResponse?.headers ?? res.deniedResponse?.headers ?? [];
  for (const h of list) headers[h.header.key] = h.header.value;
  const metadata: Record<string, unknown> = {};
  for (const [k, v] of Object.entries<any>(res.dynamicMetadata?.fields ?? {})) {
    metadata[k] = v.stringValue ?? v.listValue?.values?.map((x: any) => x.stringValue);
  }
  const allowed = (res.status?.code ?? 0) === 0 && !!res.okResponse;
  const body = res.deniedResponse?.body ? JSON.parse(res.deniedResponse.body) : undefined;
  return {
    raw: res,
    allowed,
    grpcCode: res.status?.code ?? 0,
    status: allowed ? 200 : statusNumber(res.deniedResponse?.status?.code),
    headers,
    body,
    reason: headers["x-meshward-reason"] ?? "",
    decisionId: headers["x-meshward-decision-id"] ?? "",
    metadata,
    removed: res.okResponse?.headersToRemove ?? [],
  };
}

const HTTP_STATUS_NAMES: Record<string, number> = { BadRequest: 400, Unauthorized: 401, Forbidden: 403, RequestHeaderFieldsTooLarge: 431, InternalServerError: 500, ServiceUnavailable: 503 };

function statusNumber(code: unknown): number {
  if (typeof code === "number") return code;
  return HTTP_STATUS_NAMES[String(code)] ?? Number.NaN;
}
