// What every stand-in e2e suite needs: the built filters (or a skip saying why), a token issuer, the
// real authz-server on the e2e policy, and two echo upstreams, addressed as envoy/local's clusters.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { E2E_HOST_ENV, createIssuer, e2ePolicy, startAuthz, tempDir, type Issuer, type RunningAuthz } from "./e2e-authz.js";
import { startEcho, type EchoUpstream } from "./echo-upstream.js";

export interface E2eWorld {
  readonly tmp: ReturnType<typeof tempDir>;
  readonly issuer: Issuer;
  readonly authz: RunningAuthz;
  readonly v1: EchoUpstream;
  readonly v2: EchoUpstream;
  /** Cluster name → loopback address, for loadEnvoyConfigChain. */
  readonly endpoints: Readonly<Record<string, string>>;
  /** Envoy's environment (the quota token for the rate-limit VMs), for loadEnvoyConfigChain. */
  readonly hostEnv: Readonly<Record<string, string>>;
  close(): Promise<void>;
}

const repo = (p: string): string => fileURLToPath(new URL(`../../${p}`, import.meta.url));

/** For `before()`: skips the suite when the filters are not built; otherwise starts everything. */
export async function startE2eWorld(ctx: Mocha.Context): Promise<E2eWorld> {
  const missing = ["header-router", "rate-limit"].filter((f) => !existsSync(repo(`filters/build/${f}.wasm`)));
  if (missing.length > 0) {
    console.log(`      (skipped: filters/build/${missing.join(", ")}.wasm not built; run npm run build:filters)`);
    ctx.skip();
  }
  return startWorld();
}

/**
 * The same parts without the skip (a real Envoy suite fails loudly on unbuilt filters): authz-server
 * on the e2e policy, or on `policyOf(issuer)`, and the two echo upstreams.
 */
export async function startWorld(policyOf: (issuer: Issuer) => string = (issuer) => e2ePolicy(issuer.jwksFile)): Promise<E2eWorld> {
  const tmp = tempDir();
  const issuer = await createIssuer(tmp.dir);
  const authz = await startAuthz(tmp.dir, policyOf(issuer));
  const [v1, v2] = await Promise.all([startEcho("app-v1"), startEcho("app-v2")]);
  const endpoints = { "meshward-authz": authz.grpcAddress, "meshward-quota": authz.httpAddress, "app-v1": v1.address, "app-v2": v2.address };
  return {
    tmp, issuer, authz, v1, v2, endpoints, hostEnv: E2E_HOST_ENV,
    async close() {
      await Promise.all([authz.stop(), v1.close(), v2.close()]);
      tmp.remove();
    },
  };
}
