// Loads the gRPC service definitions the server exposes: ext_authz v3 and rate limit v3 from the JSON
// descriptor the build generates (authz-server/build-protos.mjs) — or, running from source, from the
// Envoy API protos in the @grpc/grpc-js-xds devDependency — and grpc.health.v1 declared in code.
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fromJSON, loadSync, type Options, type PackageDefinition } from "@grpc/proto-loader";
import { loadPackageDefinition, type ServiceDefinition } from "@grpc/grpc-js";

const require = createRequire(import.meta.url);

/** Options shared by the server and by tests/benchmarks that encode the same messages. */
export const PROTO_OPTIONS: Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
};

/** The Envoy protos the server needs; the build compiles exactly these into DESCRIPTOR_URL. */
export const ENVOY_PROTO_FILES = ["envoy/service/auth/v3/external_auth.proto", "envoy/service/ratelimit/v3/rls.proto"] as const;

/** Generated at build time next to the compiled module (dist/grpc/envoy-protos.json); absent in src/. */
export const DESCRIPTOR_URL = new URL("./envoy-protos.json", import.meta.url);

/** Include folders for Envoy's API protos as @grpc/grpc-js-xds (a devDependency) ships them (the one place that knows where). */
export function envoyProtoDirs(): string[] {
  const root = join(dirname(require.resolve("@grpc/grpc-js-xds/package.json")), "deps");
  return ["envoy-api", "googleapis", "protoc-gen-validate", "xds"].map((d) => join(root, d));
}

let envoy: PackageDefinition | undefined;

/** ext_authz v3 and rate limit v3 message and service definitions (loaded once). */
export function envoyPackageDefinition(): PackageDefinition {
  envoy ??= existsSync(DESCRIPTOR_URL)
    ? fromJSON(JSON.parse(readFileSync(DESCRIPTOR_URL, "utf8")) as Parameters<typeof fromJSON>[0], PROTO_OPTIONS)
    : loadSync([...ENVOY_PROTO_FILES], { ...PROTO_OPTIONS, includeDirs: envoyProtoDirs() });
  return envoy;
}

// grpc-js-xds ships no grpc/health/v1/health.proto, so the two-message service is declared here.
const HEALTH_JSON = {
  nested: {
    grpc: {
      nested: {
        health: {
          nested: {
            v1: {
              nested: {
                HealthCheckRequest: { fields: { service: { type: "string", id: 1 } } },
                HealthCheckResponse: {
                  fields: { status: { type: "ServingStatus", id: 1 } },
                  nested: {
                    ServingStatus: { values: { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } },
                  },
                },
                Health: {
                  methods: {
                    Check: { requestType: "HealthCheckRequest", responseType: "HealthCheckResponse" },
                    Watch: { requestType: "HealthCheckRequest", responseType: "HealthCheckResponse", responseStream: true },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
};

let health: PackageDefinition | undefined;

export function healthPackageDefinition(): PackageDefinition {
  health ??= fromJSON(HEALTH_JSON as Parameters<typeof fromJSON>[0], PROTO_OPTIONS);
  return health;
}

function service(def: PackageDefinition, name: string): ServiceDefinition {
  const svc = def[name];
  if (!svc || !("Check" in svc || "ShouldRateLimit" in svc)) throw new Error(`service ${name} not found in protos`);
  return svc as unknown as ServiceDefinition;
}

export function authorizationService(): ServiceDefinition {
  return service(envoyPackageDefinition(), "envoy.service.auth.v3.Authorization");
}

export function rateLimitService(): ServiceDefinition {
  return service(envoyPackageDefinition(), "envoy.service.ratelimit.v3.RateLimitService");
}

export function healthService(): ServiceDefinition {
  return service(healthPackageDefinition(), "grpc.health.v1.Health");
}

/** Client constructors for tests and benchmarks (same definitions as the server). */
export function grpcClients(): {
  Authorization: ReturnType<typeof loadPackageDefinition>[string];
  Health: ReturnType<typeof loadPackageDefinition>[string];
  RateLimitService: ReturnType<typeof loadPackageDefinition>[string];
} {
  const envoyPkg = loadPackageDefinition(envoyPackageDefinition()) as any;
  const healthPkg = loadPackageDefinition(healthPackageDefinition()) as any;
  return {
    Authorization: envoyPkg.envoy.service.auth.v3.Authorization,
    Health: healthPkg.grpc.health.v1.Health,
    RateLimitService: envoyPkg.envoy.service.ratelimit.v3.RateLimitService,
  };
}
