// Envoy YAML is validated strictly against Envoy's own protos: the shipped bootstraps pass, and one
// fixture per kind of mistake is caught with its exact message.
import { strict as assert } from "node:assert";
import { fileURLToPath } from "node:url";
import { checkPaths } from "../../tools/check-config/check-files.js";
import { EnvoyJsonValidator, loadEnvoyProtos } from "../../tools/check-config/envoy-proto.js";
import { formatProblem, isError } from "../../tools/check-config/problem.js";

const repo = (p: string): string => fileURLToPath(new URL(`../../${p}`, import.meta.url));
const fixture = (name: string): string => repo(`test/envoy/fixtures/envoy/${name}`);
const HCM = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config";

function errorsOf(file: string): string[] {
  return checkPaths([file], { schemasDir: undefined }).problems.filter(isError).map((p) => formatProblem({ ...p, file: "F" }));
}

describe("Envoy bootstrap validation against Envoy's protos", function () {
  let validator: EnvoyJsonValidator;
  before(function () {
    validator = new EnvoyJsonValidator(loadEnvoyProtos());
  });

  for (const shipped of ["envoy/local/edge.yaml", "envoy/local/sidecar.yaml", "envoy/k8s/gateway/envoy-configmap.yaml"]) {
    it(`accepts the shipped ${shipped} with no errors`, function () {
      assert.deepEqual(errorsOf(repo(shipped)), []);
    });
  }

  it("accepts lowerCamelCase field names as Envoy's JSON parser does", function () {
    assert.deepEqual(errorsOf(fixture("camel-case.yaml")), []);
  });

  const mistakes: [spec: string, fixture: string, message: string][] = [
    ["an unknown field", "unknown-field.yaml", `F: ${HCM}.stat_prefixx: unknown field "stat_prefixx" in envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`],
    ["a value of the wrong type", "wrong-type.yaml", `F: ${HCM}.http_filters[0].typed_config.failure_mode_allow: expected boolean, got string "no"`],
    ["an unresolvable @type", "unresolvable-type.yaml", `F: ${HCM}.http_filters[0].typed_config.@type: unresolvable @type "type.googleapis.com/envoy.extensions.filters.http.router.v4.Router"`],
    ["a duration without its unit", "bad-duration.yaml", `F: ${HCM}.http_filters[0].typed_config.grpc_service.timeout: invalid duration "5" (expected e.g. "0.25s")`],
    [
      "an enum name that does not exist",
      "bad-enum.yaml",
      'F: static_resources.clusters[0].lb_policy: invalid enum value "LEAST_REQUESTS" for envoy.config.cluster.v3.Cluster.LbPolicy (expected one of ROUND_ROBIN, LEAST_REQUEST, RING_HASH, RANDOM, MAGLEV, CLUSTER_PROVIDED, LOAD_BALANCING_POLICY_CONFIG)',
    ],
    ["two members of one oneof", "oneof-conflict.yaml", `F: ${HCM}.route_config.virtual_hosts[0].routes[0].route: oneof "cluster_specifier" of envoy.config.route.v3.RouteAction has more than one member set: cluster, cluster_header`],
    ["an ext_authz cluster that is not defined", "unknown-cluster.yaml", `F: ${HCM}.http_filters[0].typed_config.grpc_service.envoy_grpc.cluster_name: ext_authz cluster "meshward-authz" is not defined in static_resources.clusters`],
    ["a router that is not the last HTTP filter", "router-not-last.yaml", `F: ${HCM}.http_filters: the router filter must be the last HTTP filter`],
    ["header-router placed before ext_authz", "header-router-before-authz.yaml", `F: ${HCM}.http_filters[1]: header-router must come after ext_authz (it may route on identity headers, and authz must see the request first)`],
    ["a header-router route with no Envoy route on the route header", "router-route-unmatched.yaml", `F: ${HCM}.route_config: header-router route "v9" has no Envoy route matching header x-route: v9`],
    ["a rate-limit quota cluster that is not defined", "quota-cluster-unknown.yaml", `F: ${HCM}.http_filters[3].typed_config.config.configuration.value: rate-limit quota cluster "meshward-quotas" is not defined in static_resources.clusters`],
    ["an invalid plugin configuration inside the StringValue", "plugin-config-invalid.yaml", `F: ${HCM}.http_filters[0].typed_config.config.configuration.value.failureMode: rate-limit: must be one of "allow", "deny", "local"`],
  ];
  for (const [spec, file, message] of mistakes) {
    it(`reports ${spec} with its path and exact message (${file})`, function () {
      assert.deepEqual(errorsOf(fixture(file)), [message]);
    });
  }

  describe("protobuf JSON mapping", function () {
    const cluster = (extra: Record<string, unknown>): Record<string, unknown> => ({ name: "c", connect_timeout: "1s", ...extra });
    const check = (value: unknown): string[] => validator.validate("envoy.config.cluster.v3.Cluster", value, "F").map((p) => formatProblem(p));

    it("accepts wrappers as bare scalars, int64 as strings and Struct as any object", function () {
      assert.deepEqual(
        check(cluster({
          per_connection_buffer_limit_bytes: "32768",
          metadata: { filter_metadata: { meshward: { team: "edge", nested: [1, { a: null }] } } },
          circuit_breakers: { thresholds: [{ max_connections: 10, retry_budget: { budget_percent: { value: 25.5 } } }] },
        })),
        [],
      );
      assert.deepEqual(validator.validate("envoy.type.v3.Int64Range", { start: "-9007199254740993", end: 5 }, "F"), []);
    });

    it("rejects a wrapper given as an object of its own field", function () {
      assert.deepEqual(check(cluster({ per_connection_buffer_limit_bytes: { value: 1 } })), ["F: per_connection_buffer_limit_bytes: expected integer (uint32), got object"]);
    });

    it("rejects an integer out of range for its proto type", function () {
      assert.deepEqual(check(cluster({ per_connection_buffer_limit_bytes: -1 })), ["F: per_connection_buffer_limit_bytes: integer -1 out of range for uint32"]);
    });

    it("rejects a single value where the field is repeated", function () {
      assert.deepEqual(check(cluster({ health_checks: { timeout: "1s" } })), ["F: health_checks: expected array, got object"]);
    });

    it("rejects an Any without @type", function () {
      const v = cluster({ typed_extension_protocol_options: { x: { explicit_http_config: {} } } });
      assert.deepEqual(check(v), ['F: typed_extension_protocol_options.x.@type: missing "@type" in google.protobuf.Any']);
    });

    it("rejects the same field given in both spellings", function () {
      assert.deepEqual(check(cluster({ connectTimeout: "2s" })), ['F: connectTimeout: field "connectTimeout" duplicates "connect_timeout"']);
    });

    it("warns about a deprecated field and still validates its content", function () {
      const problems = validator.validate("envoy.config.cluster.v3.Cluster", cluster({ http2_protocol_options: { max_concurrent_streams: "many" } }), "F");
      assert.deepEqual(problems.map((p) => [p.severity ?? "error", formatProblem(p)]), [
        ["warning", 'F: http2_protocol_options: warning: field "http2_protocol_options" of envoy.config.cluster.v3.Cluster is deprecated'],
        ["error", 'F: http2_protocol_options.max_concurrent_streams: expected integer (uint32), got string "many"'],
      ]);
    });

    it("warns, rather than fails, on an Envoy type whose proto imports files grpc-js-xds does not ship", function () {
      const otel = { "@type": "type.googleapis.com/envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig" };
      const problems = validator.validate("envoy.config.accesslog.v3.AccessLog", { name: "otel", typed_config: otel }, "F");
      assert.deepEqual(problems.map((p) => [p.severity ?? "error", p.code]), [["warning", "ERR_ENVOY_TYPE_NOT_VALIDATED"]]);
    });

    it("accepts an Any holding a well-known type under value", function () {
      const wasmConfig = { "@type": "type.googleapis.com/google.protobuf.StringValue", value: "{}" };
      assert.deepEqual(validator.validate("envoy.extensions.wasm.v3.PluginConfig", { root_id: "x", configuration: wasmConfig }, "F"), []);
      const bad = { "@type": "type.googleapis.com/google.protobuf.StringValue", value: 5 };
      assert.deepEqual(
        validator.validate("envoy.extensions.wasm.v3.PluginConfig", { configuration: bad }, "F").map((p) => formatProblem(p)),
        ["F: configuration.value: expected string, got number"],
      );
    });
  });
});
