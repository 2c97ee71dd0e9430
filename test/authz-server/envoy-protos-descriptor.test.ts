// The Envoy protos the server ships as a build-generated JSON descriptor (authz-server/build-protos.mjs):
// present in dist after `npm run build`, never in git, and equivalent to loading the .proto files.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { fromJSON, loadSync, type PackageDefinition } from "@grpc/proto-loader";
import { ENVOY_PROTO_FILES, PROTO_OPTIONS, envoyProtoDirs } from "../../authz-server/src/grpc/protos.js";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const DIST = new URL("../../authz-server/dist/grpc/envoy-protos.json", import.meta.url);

describe("Envoy protos as a generated JSON descriptor", () => {
  let fromDescriptor: PackageDefinition;
  let fromProtos: PackageDefinition;
  before(() => {
    assert.ok(existsSync(DIST), "npm run build writes authz-server/dist/grpc/envoy-protos.json");
    fromDescriptor = fromJSON(JSON.parse(readFileSync(DIST, "utf8")), PROTO_OPTIONS);
    fromProtos = loadSync([...ENVOY_PROTO_FILES], { ...PROTO_OPTIONS, includeDirs: envoyProtoDirs() });
  });

  it("is not committed", () => {
    const tracked = execFileSync("git", ["ls-files", "*envoy-protos.json"], { cwd: repo, encoding: "utf8" });
    assert.equal(tracked, "");
  });

  it("defines the same types as the .proto files", () => {
    assert.deepEqual(Object.keys(fromDescriptor).sort(), Object.keys(fromProtos).sort());
  });

  it("encodes and decodes a CheckRequest, a CheckResponse and a RateLimitResponse byte for byte as the .proto files do", () => {
    const check = (d: PackageDefinition) => (d["envoy.service.auth.v3.Authorization"] as any).Check;
    const rls = (d: PackageDefinition) => (d["envoy.service.ratelimit.v3.RateLimitService"] as any).ShouldRateLimit;
    const request = {
      attributes: {
        source: { address: { socketAddress: { address: "10.1.2.3", portValue: 40000 } }, principal: "spiffe://cluster.local/ns/a/sa/b" },
        request: { http: { method: "GET", path: "/api?x=1", host: "api.example.com", headers: { ":method": "GET", authorization: "Bearer x" }, headerMap: { headers: [{ key: "a", rawValue: Buffer.from("b") }] } } },
        contextExtensions: { listener: "edge" },
      },
    };
    const a = check(fromDescriptor).requestSerialize(request);
    assert.deepEqual(a, check(fromProtos).requestSerialize(request));
    assert.deepEqual(check(fromDescriptor).requestDeserialize(a), check(fromProtos).requestDeserialize(a));
    const denied = { status: { code: 7 }, deniedResponse: { status: { code: "Forbidden" }, headers: [{ header: { key: "x-a", value: "1" }, appendAction: "OVERWRITE_IF_EXISTS_OR_ADD" }], body: "no" } };
    assert.deepEqual(check(fromDescriptor).responseSerialize(denied), check(fromProtos).responseSerialize(denied));
    const limited = { overallCode: "OVER_LIMIT", statuses: [{ code: "OVER_LIMIT", currentLimit: { requestsPerUnit: 10, unit: "SECOND" }, limitRemaining: 0 }] };
    assert.deepEqual(rls(fromDescriptor).responseSerialize(limited), rls(fromProtos).responseSerialize(limited));
  });
});
