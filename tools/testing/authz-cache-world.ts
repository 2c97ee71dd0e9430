// A real Envoy with two listeners over one authz-server: `cached` (authz-cache.wasm in front of
// ext_authz wrapped in an ExtensionWithMatcher that skips it on the filter's marker) and `plain`
// (ext_authz alone), both routing to an echo upstream. For the authz-cache e2e and differential tests.
import { request } from "node:http";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startEnvoy, type RunningEnvoy } from "../envoy/harness.js";
import { startEcho, type EchoUpstream } from "./echo-upstream.js";
import { createIssuer, e2eJwtProvider, startAuthz, tempDir, type Issuer, type RunningAuthz } from "./e2e-authz.js";
import { policyYaml } from "./policy.js";

export const CACHE_SECRET = "test-cache-secret-0123456789abcdef";
export const SKIP_TOKEN = "skip-token-0123456789abcdef0123";
export const SKIP_HEADER = "x-meshward-authz-skip";

export interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

export function send(port: number, path: string, headers: Record<string, string> = {}, method = "GET"): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const r = request({ host: "127.0.0.1", port, path, method, headers: { host: "api.example.com", ...headers }, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
    });
    r.on("timeout", () => r.destroy(new Error("timeout")));
    r.on("error", reject);
    r.end();
  });
}

/**
 * The test policy: deny-overrides on a sibling path, a CEL header condition, a time-dependent rule.
 * `jwks` is the issuer's JWKS file or a whole `jwks` member (e.g. a `uri`).
 */
export function cachePolicy(jwks: string | Record<string, unknown>, secretFile: string, extraRules = ""): string {
  const spec = { cache: { enabled: true, maxTtl: "30s", secret: { file: secretFile } }, providers: { jwt: [e2eJwtProvider(jwks, { clockSkew: "1s" })] } };
  return policyYaml(spec, `  roles:
    reader: ["orders:read"]
    writer: ["orders:read", "orders:write"]
  response: { rolesHeader: x-user-roles }
  limits: { maxHeaders: 40 }
  rules:
    - name: health
      match: { paths: ["/healthz"] }
      allow: anonymous
    - name: no-export
      effect: deny
      match: { paths: ["/api/orders/export"] }
    - name: orders-read
      match: { paths: ["/api/orders/**"], methods: [GET] }
      require: { permissions: ["orders:read"] }
    - name: orders-write
      match: { paths: ["/api/orders/**"], methods: [POST] }
      require: { permissions: ["orders:write"] }
    - name: tenant
      match: { paths: ["/api/tenant/**"] }
      require: { roles: [reader] }
      when: 'request.headers["x-tenant"] == "acme"'
    - name: clock
      match: { paths: ["/api/clock/**"] }
      allow: anonymous
      when: 'now > timestamp("2020-01-01T00:00:00Z")'
${extraRules}`);
}

function wasmFilter(epochCluster: string, overrides: Record<string, unknown>): Record<string, unknown> {
  return {
    name: "meshward.authz-cache",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
      config: {
        name: "authz-cache",
        root_id: "authz-cache",
        vm_config: { vm_id: "meshward-authz-cache", runtime: "envoy.wasm.runtime.v8", code: { local: { filename: "filters/build/authz-cache.wasm" } } },
        failure_policy: "FAIL_CLOSED",
        configuration: {
          "@type": "type.googleapis.com/google.protobuf.StringValue",
          value: JSON.stringify({ secret: CACHE_SECRET, skipToken: SKIP_TOKEN, epochCluster, epochAuthority: "authz", pollMs: 100, maxStalenessMs: 1000, ...overrides }),
        },
      },
    },
  };
}

function extAuthz(): Record<string, unknown> {
  return {
    name: "envoy.filters.http.ext_authz",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
      transport_api_version: "V3",
      grpc_service: { envoy_grpc: { cluster_name: "authz" }, timeout: "2s" },
      failure_mode_allow: false,
    },
  };
}

function skippableExtAuthz(): Record<string, unknown> {
  return {
    name: "authz-unless-cached",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.common.matching.v3.ExtensionWithMatcher",
      extension_config: extAuthz(),
      xds_matcher: {
        matcher_tree: {
          input: { name: "cache-hit", typed_config: { "@type": "type.googleapis.com/envoy.type.matcher.v3.HttpRequestHeaderMatchInput", header_name: SKIP_HEADER } },
          exact_match_map: {
            map: {
              [SKIP_TOKEN]: { action: { name: "skip", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.common.matcher.action.v3.SkipFilter" } } },
            },
          },
        },
      },
    },
  };
}

function listener(name: string, filters: Record<string, unknown>[], direct = false): Record<string, unknown> {
  // Benchmarks answer from Envoy itself so that no upstream process limits the rate.
  const action = direct ? { direct_response: { status: 200, body: { inline_string: "ok" } } } : { route: { cluster: "app", timeout: "5s" } };
  return {
    name,
    address: { socket_address: { address: "127.0.0.1", port_value: 0 } },
    filter_chains: [{
      filters: [{
        name: "envoy.filters.network.http_connection_manager",
        typed_config: {
          "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
          stat_prefix: name,
          route_config: {
            name: `${name}-routes`,
            // The hit marker and the filter's nonce never reach an upstream.
            request_headers_to_remove: [SKIP_HEADER, "x-meshward-cache-nonce"],
            virtual_hosts: [{ name: "all", domains: ["*"], routes: [{ match: { prefix: "/" }, ...action }] }],
          },
          http_filters: [...filters, { name: "envoy.filters.http.router", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" } }],
        },
      }],
    }],
  };
}

function cluster(name: string, address: string, http2: boolean): Record<string, unknown> {
  const [host, port] = address.split(":");
  return {
    name,
    type: "STATIC",
    connect_timeout: "1s",
    ...(http2
      ? { typed_extension_protocol_options: { "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": { "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions", explicit_http_config: { http2_protocol_options: {} } } } }
      : {}),
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: host, port_value: Number(port) } } } }] }] },
  };
}

const noopFilter = {
  name: "meshward.noop",
  typed_config: {
    "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
    // With no configuration the SDK's onConfigure traps in Envoy 1.40 (memory access out of bounds).
    config: { name: "noop", root_id: "noop", vm_config: { vm_id: "meshward-noop", runtime: "envoy.wasm.runtime.v8", code: { local: { filename: "filters/build/noop.wasm" } } }, configuration: { "@type": "type.googleapis.com/google.protobuf.StringValue", value: "{}" } },
  },
};

/**
 * Listeners `cached` and `plain`; with `baselines`, also `none` (router only) and `noop` (the no-op
 * wasm filter only), and every listener answers with a direct response (benchmarks).
 */
export function cacheEnvoyConfig(authz: RunningAuthz, app: EchoUpstream, filterOverrides: Record<string, unknown> = {}, baselines = false): Record<string, unknown> {
  const extra = baselines ? [listener("none", [], true), listener("noop", [noopFilter], true)] : [];
  return {
    static_resources: {
      listeners: [listener("cached", [wasmFilter("authz-http", filterOverrides), skippableExtAuthz()], baselines), listener("plain", [extAuthz()], baselines), ...extra],
      clusters: [cluster("authz", authz.grpcAddress, true), cluster("authz-http", authz.httpAddress, false), cluster("app", app.address, false)],
    },
  };
}

export interface CacheWorld {
  readonly issuer: Issuer;
  readonly authz: RunningAuthz;
  readonly app: EchoUpstream;
  readonly envoys: RunningEnvoy[];
  readonly dir: string;
  readonly policyFile: string;
  checks(): number;
  stop(): Promise<void>;
}

/** Starts issuer, authz-server (with `policy(jwks, secretFile)`), echo upstream and `envoyCount` Envoys. */
export async function startCacheWorld(opts: { envoyCount?: number; concurrency?: number; policy?: (jwks: string, secret: string) => string; filter?: Record<string, unknown>; baselines?: boolean } = {}): Promise<CacheWorld> {
  const tmp = tempDir();
  const issuer = await createIssuer(tmp.dir);
  const secretFile = join(tmp.dir, "cache-secret");
  writeFileSync(secretFile, CACHE_SECRET);
  const authz = await startAuthz(tmp.dir, (opts.policy ?? cachePolicy)(issuer.jwksFile, secretFile));
  // A hostile upstream on request: `x-test-forge: <value>` comes back as a directive header.
  const app = await startEcho("app", (h): Record<string, string> => (typeof h["x-test-forge"] === "string" ? { "x-meshward-cache": h["x-test-forge"] } : {}));
  const envoys: RunningEnvoy[] = [];
  try {
    for (let i = 0; i < (opts.envoyCount ?? 1); i++) {
      envoys.push(await startEnvoy({ config: cacheEnvoyConfig(authz, app, opts.filter, opts.baselines), concurrency: opts.concurrency ?? 2 }));
    }
  } catch (err) {
    for (const e of envoys) await e.stop();
    await Promise.all([authz.stop(), app.close()]);
    tmp.remove();
    throw err;
  }
  return {
    issuer,
    authz,
    app,
    envoys,
    dir: tmp.dir,
    policyFile: join(tmp.dir, "policy.yaml"),
    /** Checks answered by authz-server so far (its decision log). */
    checks: () => authz.logs.filter((l) => typeof l["decisionId"] === "string").length,
    async stop() {
      for (const e of envoys) await e.stop();
      await Promise.all([authz.stop(), app.close()]);
      tmp.remove();
    },
  };
}
