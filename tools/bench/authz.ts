// authz-server pipeline cost in-process (20- and 200-rule policies: cached token, cold RS256/ES256,
// mesh-only SPIFFE; jose's jwtVerify as the cold baseline) and gRPC Check throughput under h2load
// against the trivial grpc-js handler in the same run. `node --import tsx bench/authz.ts [--quick]`.
import { createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import { cpus, loadavg } from "node:os";
import { pathToFileURL } from "node:url";
import { createLocalJWKSet, jwtVerify } from "jose";
import { pino } from "pino";
import { Registry } from "prom-client";
import { createIdGenerator, type Clock } from "../../authz-server/src/clock.js";
import { jwksKeySourceFactory } from "../../authz-server/src/credentials/jwks.js";
import { envoyPackageDefinition } from "../../authz-server/src/grpc/protos.js";
import { createLogger } from "../../authz-server/src/observability/logger.js";
import { runPipeline } from "../../authz-server/src/pipeline.js";
import { buildRuntime, PolicyHolder, type Runtime } from "../../authz-server/src/policy-holder.js";
import { compilePolicyText } from "../../authz-server/src/policy/load-policy.js";
import { createAuthzServer } from "../../authz-server/src/server.js";
import { median, summarize } from "./lib/percentiles.js";
import { runH2load, h2loadAvailable } from "./lib/h2load.js";
import { CHECK_PATH } from "./lib/check-status.js";
import { startTrivialAuthz } from "./lib/trivial-authz.js";
import type { BenchModule, BenchRow } from "./row.js";
import { jwtProvider, policyYaml } from "../testing/policy.js";

const ISS = "https://idp.bench/";
const CACHED_BUDGET_US = 20;
const COLD_RS256_BUDGET_US = 100;
const THROUGHPUT_BUDGET = 0.8;

interface Key {
  readonly kid: string;
  readonly alg: "RS256" | "ES256";
  readonly privateKey: KeyObject;
  readonly jwk: Record<string, unknown>;
}

function newKey(alg: Key["alg"]): Key {
  const pair = alg === "ES256" ? generateKeyPairSync("ec", { namedCurve: "P-256" }) : generateKeyPairSync("rsa", { modulusLength: 2048 });
  const kid = `bench-${alg.toLowerCase()}`;
  return { kid, alg, privateKey: pair.privateKey, jwk: { ...pair.publicKey.export({ format: "jwk" }), kid, alg, use: "sig" } };
}

function signJwt(key: Key, claims: Record<string, unknown>): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const input = `${b64({ alg: key.alg, kid: key.kid, typ: "JWT" })}.${b64(claims)}`;
  const sig = sign("sha256", Buffer.from(input), key.alg === "ES256" ? { key: key.privateKey, dsaEncoding: "ieee-p1363" } : key.privateKey);
  return `${input}.${sig.toString("base64url")}`;
}

/** A policy with `n` rules: a CEL deny rule first, n-3 service rules (every 10th with CEL), then the rules our requests hit. */
function policyText(n: number, keys: readonly Key[]): string {
  const rules: string[] = [
    `    - { name: block-legacy, effect: deny, when: '"user-agent" in request.headers && request.headers["user-agent"].startsWith("legacy/")' }`,
  ];
  const roles: string[] = ['    reader: ["orders:read"]'];
  for (let i = 0; i < n - 3; i++) {
    const when = i % 10 === 0 ? `, when: 'request.headers["x-region"] == "eu"'` : "";
    rules.push(`    - { name: svc-${i}, match: { hosts: ["svc${i}.example.com"], paths: ["/svc${i}/**"], methods: [GET] }, require: { permissions: ["svc${i}:read"] }${when} }`);
    roles.push(`    svc${i}: ["svc${i}:*"]`);
  }
  rules.push(`    - { name: orders-read, match: { hosts: ["api.example.com"], paths: ["/api/orders/**"], methods: [GET] }, require: { permissions: ["orders:read"] } }`);
  rules.push(`    - { name: mesh-internal, match: { paths: ["/internal/**"], sourceCidrs: ["10.0.0.0/8"] }, require: { peer: { namespaces: [billing] }, permissions: ["orders:read"] } }`);
  const corp = jwtProvider({
    issuer: ISS, audiences: ["orders-api"], jwks: { keys: keys.map((k) => k.jwk) }, algorithms: ["RS256", "ES256"],
    roles: { claim: "realm_access.roles" }, claimsToHeaders: [{ claim: "sub", header: "x-user-id" }],
  });
  return policyYaml({ providers: { jwt: [corp], mesh: { trustDomains: ["cluster.local"] } } }, `
  roles:
${roles.join("\n")}
  bindings:
    - { subjects: ["spiffe://cluster.local/ns/billing/sa/billing-api"], roles: [reader] }
  response: { subjectHeader: x-subject, rolesHeader: x-roles }
  rules:
${rules.join("\n")}
`);
}

function request(path: string, headers: Record<string, string>, principal?: string): object {
  return {
    attributes: {
      source: { address: { socketAddress: { address: "10.1.2.3", portValue: 40000 } }, ...(principal ? { principal } : {}) },
      destination: { address: { socketAddress: { address: "10.9.9.9", portValue: 8080 } } },
      request: {
        http: {
          id: "1",
          method: "GET",
          path,
          host: "api.example.com",
          scheme: "https",
          protocol: "HTTP/2",
          headers: {
            ":method": "GET",
            ":path": path,
            ":authority": "api.example.com",
            ":scheme": "https",
            accept: "application/json",
            "user-agent": "bench/1.0",
            "x-request-id": "2b62daf1-00b9-97d9-91b8-ba6194ef58a4",
            "x-forwarded-proto": "https",
            traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ...headers,
          },
        },
      },
    },
  };
}

const clock: Clock = { now: () => Date.now() };

async function buildBenchRuntime(n: number, keys: readonly Key[]): Promise<Runtime> {
  const policy = compilePolicyText(policyText(n, keys), `bench-${n}.yaml`);
  const logger = createLogger("silent");
  const runtime = buildRuntime(policy, { clock, registry: new Registry(), logger, createKeySource: jwksKeySourceFactory });
  for (let i = 0; i < 50 && !runtime.credentials.status().ready; i++) await new Promise((r) => setTimeout(r, 10));
  return runtime;
}

/** Times `runPipeline` per request (µs), after `warmup` untimed runs; `next(i)` gives the i-th request. */
async function timePipeline(runtime: Runtime, next: (i: number) => object, count: number, warmup: number, expectAllowed: boolean): Promise<number[]> {
  const deps = { clock, newId: createIdGenerator() };
  for (let i = 0; i < warmup; i++) await runPipeline(next(i), runtime, deps);
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const req = next(warmup + i);
    const t0 = process.hrtime.bigint();
    const { decision } = await runPipeline(req, runtime, deps);
    samples.push(Number(process.hrtime.bigint() - t0) / 1000);
    if (decision.allowed !== expectAllowed) throw new Error(`unexpected decision ${decision.reason}`);
  }
  return samples;
}

function latencyRow(name: string, samples: number[], budgetUs?: number, extra: Partial<BenchRow> = {}): BenchRow {
  const s = summarize(samples);
  const row: BenchRow = {
    area: "authz",
    name,
    unit: "µs/check (median)",
    ours: round(s.p50),
    p50: round(s.p50 / 1000, 4),
    p99: round(s.p99 / 1000, 4),
    note: `p99 ${round(s.p99)} µs over ${s.count} checks`,
    ...extra,
  };
  return budgetUs === undefined ? row : { ...row, budget: `median ≤ ${budgetUs} µs`, met: s.p50 <= budgetUs };
}

const round = (v: number, d = 1) => Math.round(v * 10 ** d) / 10 ** d;

export const bench: BenchModule = async ({ quick, progress }) => {
  const rows: BenchRow[] = [];
  const count = quick ? 1500 : 5000;
  const coldCount = quick ? 400 : 2000;
  const warmup = quick ? 800 : 1500;
  const rsa = newKey("RS256");
  const ec = newKey("ES256");
  const now = Math.floor(Date.now() / 1000);
  const claims = (i: number) => ({ iss: ISS, sub: `user-${i}`, aud: "orders-api", iat: now, exp: now + 3600, jti: `j${i}`, realm_access: { roles: ["reader"] } });
  progress(`signing ${coldCount + warmup} RS256 and ES256 tokens`);
  const rsTokens = Array.from({ length: coldCount + warmup }, (_, i) => signJwt(rsa, claims(i)));
  const esTokens = Array.from({ length: coldCount + warmup }, (_, i) => signJwt(ec, claims(i)));
  const cached = signJwt(rsa, claims(-1));

  for (const n of [20, 200]) {
    progress(`pipeline, ${n} rules`);
    const runtime = await buildBenchRuntime(n, [rsa, ec]);
    const bearer = (t: string) => request("/api/orders/42", { authorization: `Bearer ${t}` });
    // JIT warm-up over every path measured below (cached, cold RS256/ES256, mesh), untimed.
    const mesh = request("/internal/orders/1", {}, "spiffe://cluster.local/ns/billing/sa/billing-api");
    await timePipeline(runtime, (i) => [bearer(cached), mesh, bearer(rsTokens[i % 50]!), bearer(esTokens[i % 50]!)][i % 4]!, 0, warmup * 2, true);
    rows.push(latencyRow(`pipeline, ${n} rules, cached JWT`, await timePipeline(runtime, () => bearer(cached), count, warmup, true), CACHED_BUDGET_US));
    rows.push(latencyRow(`pipeline, ${n} rules, cold RS256 JWT (fresh token each check)`, await timePipeline(runtime, (i) => bearer(rsTokens[i]!), coldCount, warmup, true), COLD_RS256_BUDGET_US));
    rows.push(latencyRow(`pipeline, ${n} rules, cold ES256 JWT (fresh token each check)`, await timePipeline(runtime, (i) => bearer(esTokens[i]!), coldCount, warmup, true)));
    rows.push(latencyRow(`pipeline, ${n} rules, mesh-only SPIFFE peer`, await timePipeline(runtime, () => mesh, count, warmup, true)));
    runtime.credentials.close();
  }

  progress("jose jwtVerify baseline (WebCrypto), fresh RS256 tokens");
  const jwks = createLocalJWKSet({ keys: [rsa.jwk as never] });
  for (let i = 0; i < warmup; i++) await jwtVerify(rsTokens[i]!, jwks, { issuer: ISS, audience: "orders-api" });
  const joseSamples: number[] = [];
  for (let i = 0; i < coldCount; i++) {
    const t0 = process.hrtime.bigint();
    await jwtVerify(rsTokens[warmup + i]!, jwks, { issuer: ISS, audience: "orders-api" });
    joseSamples.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  const coldRow = rows.find((r) => r.name.startsWith("pipeline, 20 rules, cold RS256"))!;
  const joseMedian = summarize(joseSamples).p50;
  rows.push({
    area: "authz",
    name: "RS256 verify: our whole pipeline (20 rules) vs jose jwtVerify alone",
    unit: "µs (median)",
    ours: coldRow.ours,
    baseline: round(joseMedian),
    baselineName: "jose 6 jwtVerify (WebCrypto), verify only",
    ratio: round(coldRow.ours / joseMedian, 2),
    note: "why jwt.ts verifies with node:crypto KeyObjects",
  });

  progress("node:crypto verify alone (the floor of a cold RS256 check), same tokens");
  const publicKey = createPublicKey({ key: rsa.jwk as never, format: "jwk" });
  const rawSamples: number[] = [];
  for (let i = 0; i < coldCount; i++) {
    const token = rsTokens[warmup + i]!;
    const dot = token.lastIndexOf(".");
    const t0 = process.hrtime.bigint();
    verify("sha256", Buffer.from(token.slice(0, dot)), publicKey, Buffer.from(token.slice(dot + 1), "base64url"));
    rawSamples.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  const rawMedian = summarize(rawSamples).p50;
  rows.push({
    area: "authz",
    name: "cold RS256 check (20 rules) vs node:crypto RSA verify alone",
    unit: "µs (median)",
    ours: coldRow.ours,
    baseline: round(rawMedian),
    baselineName: "crypto.verify(sha256, KeyObject) alone, same run",
    ratio: round(coldRow.ours / rawMedian, 2),
    note: "the pipeline's own cost on a cold token is ours − baseline",
  });

  rows.push(...(await throughputRows(quick, cached, [rsa, ec], progress)));
  return rows;
};

async function throughputRows(quick: boolean, token: string, keys: readonly Key[], progress: (m: string) => void): Promise<BenchRow[]> {
  if (!h2loadAvailable()) return [{ area: "authz", name: "gRPC Check throughput", unit: "req/s", ours: Number.NaN, note: "skipped: h2load is not installed" }];
  const runtime = await buildBenchRuntime(20, keys);
  const registry = new Registry();
  const logger = createLogger("info", pino.destination({ dest: "/dev/null", sync: false, minLength: 4096 }));
  const holder = PolicyHolder.of(runtime, { file: "bench-20.yaml", clock, registry, logger, createKeySource: jwksKeySourceFactory });
  const ours = createAuthzServer({ holder, logger, registry, clock, grpcAddress: "127.0.0.1:0", httpAddress: "127.0.0.1:0" });
  const { grpcPort } = await ours.start();
  const trivial = await startTrivialAuthz();
  const checkMethod = (envoyPackageDefinition()["envoy.service.auth.v3.Authorization"] as any).Check;
  const body: Buffer = checkMethod.requestSerialize(request("/api/orders/42", { authorization: `Bearer ${token}` }));
  // h2load counts gRPC errors as success (they travel in trailers): check the decision once first.
  const probe = await runPipeline(checkMethod.requestDeserialize(body), runtime, { clock, newId: createIdGenerator() });
  if (!probe.decision.allowed) throw new Error(`bench request is not allowed: ${probe.decision.reason}`);
  const reps = quick ? 1 : 3;
  const durationSec = quick ? 3 : 10;
  const oursRates: number[] = [];
  const trivialRates: number[] = [];
  try {
    for (let r = 0; r < reps; r++) {
      progress(`h2load rep ${r + 1}/${reps}: trivial handler`);
      trivialRates.push((await runH2load({ target: trivial.target, method: CHECK_PATH, request: body, durationSec, warmupSec: 1 })).reqPerSec);
      progress(`h2load rep ${r + 1}/${reps}: authz-server (cached JWT, 20 rules)`);
      oursRates.push((await runH2load({ target: `127.0.0.1:${grpcPort}`, method: CHECK_PATH, request: body, durationSec, warmupSec: 1 })).reqPerSec);
    }
  } finally {
    await ours.stop(1000);
    await trivial.stop();
    runtime.credentials.close();
  }
  const o = median(oursRates);
  const t = median(trivialRates);
  return [
    {
      area: "authz",
      name: "gRPC Check throughput, h2load closed loop, one process (cached JWT, 20 rules)",
      unit: "req/s",
      ours: Math.round(o),
      baseline: Math.round(t),
      baselineName: "trivial grpc-js Check handler",
      ratio: round(o / t, 2),
      budget: `≥ ${THROUGHPUT_BUDGET}× trivial`,
      met: o / t >= THROUGHPUT_BUDGET,
      note: `h2load -c 8 -m 16, ${durationSec} s × ${reps}; decision logs on (buffered, to /dev/null), metrics on; load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores`,
    },
  ];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await bench({ quick: process.argv.includes("--quick"), progress: (m) => process.stderr.write(`[authz] ${m}\n`) });
  console.log(JSON.stringify(rows, null, 2));
  process.exit(0);
}
