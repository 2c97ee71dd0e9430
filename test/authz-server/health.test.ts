// grpc.health.v1 on a real listener: Check honours `service` (NOT_FOUND for services we do not serve),
// and Watch pushes each change — NOT_SERVING as soon as a drain starts — instead of ending the stream.
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { pino } from "pino";
import { Registry } from "prom-client";
import { grpcClients } from "../../authz-server/src/grpc/protos.js";
import { wireProcess, type WiredProcess } from "../../authz-server/src/wiring.js";
import { writePolicyFile, type PolicyFile } from "../../tools/testing/policy.js";

describe("grpc.health.v1", function () {
  this.timeout(30_000);
  let policy: PolicyFile;
  let wired: WiredProcess;
  let client: any;

  beforeEach(async () => {
    policy = writePolicyFile("apiVersion: meshward.io/v1\nkind: AuthzPolicy\nspec:\n  rules: []\n");
    wired = await wireProcess({ policyFile: policy.file, grpcAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", logger: pino({ level: "silent" }), registry: new Registry(), clock: { now: () => Date.now() } });
    const { grpcPort } = await wired.start();
    client = new (grpcClients().Health as any)(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure());
  });

  afterEach(async () => {
    client?.close();
    await wired?.stop(100);
    policy.remove();
  });

  const check = (service: string): Promise<string> =>
    new Promise((resolve, reject) => client.Check({ service }, { deadline: Date.now() + 5000 }, (err: grpc.ServiceError | null, res: { status: string }) => (err ? reject(err) : resolve(res.status))));

  it("answers for the server, for each service it serves, and NOT_FOUND for others", async () => {
    assert.equal(await check(""), "SERVING");
    assert.equal(await check("envoy.service.auth.v3.Authorization"), "SERVING");
    assert.equal(await check("envoy.service.ratelimit.v3.RateLimitService"), "SERVING");
    await assert.rejects(check("no.such.Service"), (err: grpc.ServiceError) => err.code === grpc.status.NOT_FOUND);
  });

  it("Watch sends SERVING, then NOT_SERVING when the drain starts, then ends; an unknown service is SERVICE_UNKNOWN", async () => {
    const seen: string[] = [];
    const call = client.Watch({ service: "envoy.service.auth.v3.Authorization" });
    const ended = new Promise<void>((resolve) => {
      call.on("end", () => resolve());
      call.on("error", () => resolve());
    });
    call.on("data", (m: { status: string }) => seen.push(m.status));
    const unknown: string[] = [];
    const other = client.Watch({ service: "no.such.Service" });
    other.on("data", (m: { status: string }) => unknown.push(m.status));
    other.on("error", () => undefined);
    for (let i = 0; i < 100 && (seen.length === 0 || unknown.length === 0); i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(seen, ["SERVING"]);
    assert.deepEqual(unknown, ["SERVICE_UNKNOWN"]);
    await wired.stop(100);
    await ended;
    assert.deepEqual(seen, ["SERVING", "NOT_SERVING"]);
  });
});
