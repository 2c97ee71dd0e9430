// A real Envoy with two listeners over one authz-server: `cached` (authz-cache.wasm in front of
// ext_authz wrapped in an ExtensionWithMatcher that skips it on the filter's marker) and `plain`
// (ext_authz alone), both routing to an echo upstream. For the authz-cache e2e and differential tests.
import { globalAgent } from "node:http";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileAccessLog, httpListener, loopbackCluster, wasmFilter } from "../envoy/bootstrap.js";
import { startEnvoy, type RunningEnvoy } from "../envoy/harness.js";
import { send as sendThroughEnvoy, type Reply } from "../envoy/with-envoy.js";
import { startEcho, type EchoUpstream } from "./echo-upstream.js";
import { createIssuer, e2eJwtProvider, startAuthz, tempDir, type Issuer, type RunningAuthz } from "./e2e-authz.js";
import { policyYaml } from "./policy.js";

export const CACHE_SECRET = "test-cache-secret-0123456789abcdef";
export const SKIP_TOKEN = "skip-token-0123456789abcdef0123";
export const SKIP_HEADER = "x-meshward-authz-skip";
/** The dynamic metadata keys authz-server sets (authz-server/src/response/check-response.ts), replayed on hits. */
export const AUTHZ_METADATA_KEYS = ["decisionId", "decision", "reason", "rule", "subject", "provider", "peer", "roles"];
export const METADATA_HEADER_PREFIX = "x-meshward-authz-md-";
const EXT_AUTHZ_NAMESPACE = "envoy.filters.http.ext_authz";

export type { Reply } from "../envoy/with-envoy.js";

/** A request to 127.0.0.1:`port` over Node's default (keep-alive) agent, host api.example.com. */
export function send(port: number, path: string, headers: Record<string, string> = {}, method = "GET"): Promise<Reply> {
  return sendThroughEnvoy(port, path, { headers, method, agent: globalAgent });
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

/** The filter; a `name` other than the default also gives it its own VM (vm_id) and so its own shared data. */
function cacheFilter(epochCluster: string, overrides: Record<string, unknown>, plugin = "authz-cache", name?: string): Record<string, unknown> {
  return wasmFilter({ plugin, rootId: "authz-cache", ...(name ? { name, vmId: name } : {}), config: { secret: CACHE_SECRET, skipToken: SKIP_TOKEN, epochCluster, epochAuthority: "authz", pollMs: 100, maxStalenessMs: 1000, metadataKeys: AUTHZ_METADATA_KEYS, ...overrides } });
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

const hitMarker = { name: "cache-hit", typed_config: { "@type": "type.googleapis.com/envoy.type.matcher.v3.HttpRequestHeaderMatchInput", header_name: SKIP_HEADER } };
const skipAction = { action: { name: "skip", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.common.matcher.action.v3.SkipFilter" } } };

function skippableExtAuthz(): Record<string, unknown> {
  return {
    name: "authz-unless-cached",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.common.matching.v3.ExtensionWithMatcher",
      extension_config: extAuthz(),
      xds_matcher: {
        matcher_tree: {
          input: hitMarker,
          exact_match_map: { map: { [SKIP_TOKEN]: skipAction } },
        },
      },
    },
  };
}

/**
 * ext_authz behind Envoy's composite filter: instantiated only when the marker is absent, so a hit
 * never constructs it (ExtensionWithMatcher builds its filter on every stream, skip or not).
 */
export function compositeExtAuthz(): Record<string, unknown> {
  return behindComposite("authz-unless-cached", {
    matcher_list: {
      matchers: [{ predicate: { not_matcher: { single_predicate: { input: hitMarker, value_match: { exact: SKIP_TOKEN } } } }, on_match: executeFilter("ext-authz", extAuthz()) }],
    },
  });
}

/** The composite filter's action: build and run `filter` on this stream. */
function executeFilter(name: string, filter: Record<string, unknown>): Record<string, unknown> {
  return { action: { name, typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.composite.v3.ExecuteFilterAction", typed_config: filter } } };
}

/** The composite filter `name` under `xdsMatcher`: a filter is built only where the matcher's action says so. */
function behindComposite(name: string, xdsMatcher: Record<string, unknown>): Record<string, unknown> {
  return {
    name,
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.common.matching.v3.ExtensionWithMatcher",
      extension_config: { name: "composite", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.composite.v3.Composite" } },
      xds_matcher: xdsMatcher,
    },
  };
}

/**
 * header_to_metadata behind the composite filter, built only on a hit (the filter's marker): turns the
 * filter's `x-meshward-authz-md-<key>` headers (base64 google.protobuf.Value) back into ext_authz's
 * dynamic metadata and removes them. Wasm cannot write dynamic metadata itself (Envoy 1.40).
 */
function metadataOnHit(): Record<string, unknown> {
  const headerToMetadata = {
    name: "envoy.filters.http.header_to_metadata",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.filters.http.header_to_metadata.v3.Config",
      request_rules: AUTHZ_METADATA_KEYS.map((key) => ({
        header: METADATA_HEADER_PREFIX + key.toLowerCase(),
        on_header_present: { metadata_namespace: EXT_AUTHZ_NAMESPACE, key, type: "PROTOBUF_VALUE", encode: "BASE64" },
        remove: true,
      })),
    },
  };
  return behindComposite("authz-metadata-on-hit", {
    matcher_tree: { input: hitMarker, exact_match_map: { map: { [SKIP_TOKEN]: executeFilter("header-to-metadata", headerToMetadata) } } },
  });
}

/** `%DYNAMIC_METADATA(envoy.filters.http.ext_authz)%` of every request, one JSON line per request. */
function accessLog(path: string): Record<string, unknown>[] {
  return [fileAccessLog(path, { path: "%REQ(:PATH)%", status: "%RESPONSE_CODE%", metadata: `%DYNAMIC_METADATA(${EXT_AUTHZ_NAMESPACE})%` })];
}

function listener(name: string, filters: Record<string, unknown>[], direct = false, logDir?: string, stripUpstreamDirectives = true): Record<string, unknown> {
  // Benchmarks answer from Envoy itself so that no upstream process limits the rate.
  const action = direct ? { direct_response: { status: 200, body: { inline_string: "ok" } } } : { route: { cluster: "app", timeout: "5s" } };
  // The hit marker and the filter's nonce never reach an upstream; an upstream's directive is removed
  // when its response arrives, before ext_authz (on a miss) adds the genuine one.
  return httpListener(name, filters, [{ match: { prefix: "/" }, ...action }], {
    routeConfig: { request_headers_to_remove: [SKIP_HEADER, "x-meshward-cache-nonce"], ...(stripUpstreamDirectives ? { response_headers_to_remove: ["x-meshward-cache"] } : {}) },
    ...(logDir ? { accessLog: accessLog(join(logDir, `${name}-access.log`)) } : {}),
  });
}

// With no configuration the SDK's onConfigure traps in Envoy 1.40 (memory access out of bounds).
const noopFilter = wasmFilter({ plugin: "noop", config: "{}" });

export interface CacheEnvoyOptions {
  /** Overrides of the filter's plugin configuration. */
  readonly filter?: Record<string, unknown>;
  /** Dynamic-metadata replay on hits (`metadataKeys` + header_to_metadata) on `cached`; default true. */
  readonly metadata?: boolean;
  /**
   * Benchmarks: also `none` (router only), `noop` (the no-op wasm filter only), `skip-only` (ext_authz
   * in its skipping wrapper, nothing in front: send the marker), `cached-md` (the cache with metadata
   * replay), and every listener answers with a direct response.
   */
  readonly baselines?: boolean;
  /** Access logs of every request, `<logDir>/<listener>-access.log`. */
  readonly logDir?: string;
  /** A/B in one Envoy: listener `cached-<name>` runs the .wasm at `path` (its own VM and shared data). */
  readonly variants?: Readonly<Record<string, string>>;
  /**
   * Leave out the route configuration's `response_headers_to_remove: [x-meshward-cache]`, so that an
   * upstream's forged directive reaches the filter (which must reject it) instead of being stripped first.
   */
  readonly keepUpstreamDirectives?: boolean;
  /** Only these listeners (e.g. under valgrind, where each wasm VM costs address space); default all. */
  readonly listeners?: readonly string[];
}

function cachedChain(filterOverrides: Record<string, unknown>, metadata: boolean, plugin = "authz-cache", name?: string): Record<string, unknown>[] {
  const overrides = metadata ? filterOverrides : { metadataKeys: [], ...filterOverrides };
  const filter = cacheFilter("authz-http", overrides, plugin, name);
  return metadata ? [filter, compositeExtAuthz(), metadataOnHit()] : [filter, compositeExtAuthz()];
}

/** Listeners `cached` and `plain`, and with `baselines` or `variants` the listeners they add. */
export function cacheEnvoyConfig(authz: RunningAuthz, app: EchoUpstream, opts: CacheEnvoyOptions = {}): Record<string, unknown> {
  const direct = opts.baselines ?? false;
  const overrides = opts.filter ?? {};
  const extra = direct
    ? [listener("none", [], true), listener("noop", [noopFilter], true), listener("skip-only", [skippableExtAuthz()], true), listener("composite-only", [compositeExtAuthz()], true), listener("cached-md", cachedChain(overrides, true, "authz-cache", "meshward-authz-cache-md"), true)]
    : [];
  for (const [name, path] of Object.entries(opts.variants ?? {})) {
    extra.push(listener(`cached-${name}`, cachedChain(overrides, opts.metadata ?? true, path, `meshward-authz-cache-${name}`), direct));
  }
  const strip = !(opts.keepUpstreamDirectives ?? false);
  const listeners = [listener("cached", cachedChain(overrides, opts.metadata ?? true), direct, opts.logDir, strip), listener("plain", [extAuthz()], direct, opts.logDir, strip), ...extra];
  return {
    static_resources: {
      listeners: listeners.filter((l) => opts.listeners?.includes(String(l["name"])) ?? true),
      clusters: [
        loopbackCluster("authz", authz.grpcAddress, { http2: true, connectTimeout: "1s" }),
        loopbackCluster("authz-http", authz.httpAddress, { connectTimeout: "1s" }),
        loopbackCluster("app", app.address, { connectTimeout: "1s" }),
      ],
    },
  };
}

/**
 * The request headers for `listener` of the cache world: `base`, plus the hit marker for the
 * baselines that have ext_authz's wrapper and no cache filter in front (`skip-only`, `composite-only`).
 */
export function listenerHeaders(listener: string, base: Record<string, string>): Record<string, string> {
  return listener === "skip-only" || listener === "composite-only" ? { ...base, [SKIP_HEADER]: SKIP_TOKEN } : base;
}

/** The filter's hit counter of `envoy` (summed over its workers). */
export async function cacheHits(envoy: RunningEnvoy): Promise<number> {
  return (await envoy.stats("authz_cache")).get("wasmcustom.meshward_authz_cache_hits") ?? 0;
}

/**
 * The hit counter once it reaches `atLeast` (or after `timeoutMs`): the filter adds hits to the counter
 * in batches, on its tick (`pollMs`) or every 64 hits, so a hit shows up there a tick later.
 */
export async function settledHits(envoy: RunningEnvoy, atLeast: number, timeoutMs = 3000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const n = await cacheHits(envoy);
    if (n >= atLeast || Date.now() > deadline) return n;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The hit counter once no batch is left to flush: two reads `quietMs` apart (over a tick) agree. */
export async function stableHits(envoy: RunningEnvoy, quietMs = 300): Promise<number> {
  let last = await cacheHits(envoy);
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, quietMs));
    const n = await cacheHits(envoy);
    if (n === last) return n;
    last = n;
  }
  return last;
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
export interface CacheWorldOptions extends Omit<CacheEnvoyOptions, "logDir"> {
  readonly envoyCount?: number;
  readonly concurrency?: number;
  readonly policy?: (jwks: string, secret: string) => string;
  readonly accessLogs?: boolean;
  /** Envoy binary (e.g. a wrapper running it under valgrind) and its start-up bound. */
  readonly envoyBin?: string;
  readonly readyTimeoutMs?: number;
}

export async function startCacheWorld(opts: CacheWorldOptions = {}): Promise<CacheWorld> {
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
      // With accessLogs, Envoy i writes <dir>/envoy-i/<listener>-access.log.
      const logDir = opts.accessLogs ? join(tmp.dir, `envoy-${i}`) : undefined;
      if (logDir) mkdirSync(logDir, { recursive: true });
      const config = cacheEnvoyConfig(authz, app, { ...opts, ...(logDir ? { logDir } : {}) });
      envoys.push(await startEnvoy({ config, concurrency: opts.concurrency ?? 2, ...(opts.envoyBin ? { bin: opts.envoyBin } : {}), ...(opts.readyTimeoutMs ? { readyTimeoutMs: opts.readyTimeoutMs } : {}) }));
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
