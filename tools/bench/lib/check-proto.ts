// The ext_authz v3 Check method for benchmarks: the service definition and pre-serialized requests.
import protoLoader from "@grpc/proto-loader";
import { PROTO_OPTIONS, envoyProtoDirs } from "../../../authz-server/src/grpc/protos.js";

export { CHECK_PATH, checkResponseCode, grpcFrame } from "./check-status.js";
export const AUTHORIZATION_SERVICE = "envoy.service.auth.v3.Authorization";

let cached: protoLoader.PackageDefinition | undefined;

/** Envoy's Authorization service loaded from the protos shipped in @grpc/grpc-js-xds (loaded once). */
export function authorizationPackage(): protoLoader.PackageDefinition {
  if (cached) return cached;
  cached = protoLoader.loadSync("envoy/service/auth/v3/external_auth.proto", { ...PROTO_OPTIONS, includeDirs: envoyProtoDirs() });
  return cached;
}

function checkMethod(): protoLoader.MethodDefinition<object, object> {
  const service = authorizationPackage()[AUTHORIZATION_SERVICE] as protoLoader.ServiceDefinition;
  return service["Check"] as protoLoader.MethodDefinition<object, object>;
}

export interface HttpRequestAttributes {
  readonly method: string;
  readonly path: string;
  readonly host: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly sourceAddress?: string;
}

/** A serialized CheckRequest for one HTTP request, as Envoy's ext_authz filter would send it. */
export function encodeCheckRequest(http: HttpRequestAttributes): Buffer {
  const attributes: Record<string, unknown> = {
    request: { http: { method: http.method, path: http.path, host: http.host, scheme: "http", protocol: "HTTP/1.1", headers: { ...http.headers } } },
  };
  if (http.sourceAddress) attributes["source"] = { address: { socketAddress: { address: http.sourceAddress, portValue: 40000 } } };
  return checkMethod().requestSerialize({ attributes });
}

/** A serialized CheckResponse with the given google.rpc status code (0 = allow). */
export function encodeCheckResponse(code: number): Buffer {
  return checkMethod().responseSerialize({ status: { code } });
}
