// The direct Check transport (grpc/unary-fast-path.ts) keeps gRPC's contract on grpc-js's sessions: deadlines,
// cancellation, the 4 MiB limit, one message per call; what it does not take goes to grpc-js on the same port.
import assert from "node:assert/strict";
import http2 from "node:http2";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { pino } from "pino";
import { Registry } from "prom-client";
import { grpcClients } from "../../authz-server/src/grpc/protos.js";
import { MAX_RECEIVE_MESSAGE_BYTES, serveUnaryDirectly, type UnaryCallback, type UnaryHandler } from "../../authz-server/src/grpc/unary-fast-path.js";
import { wireProcess, type WiredProcess } from "../../authz-server/src/wiring.js";

const PATH = "/test.Echo/Length";
const id = (b: Buffer): Buffer => b;
/** The method's deserializer: refuses the bytes `bad!`, as a protobuf decoder refuses a malformed message. */
const read = (b: Buffer): Buffer => {
  if (b.toString() === "bad!") throw new RangeError("unreadable");
  return b;
};
const length = (b: Buffer): Buffer => Buffer.from(String(b.length));

interface Seen {
  calls: number;
  grpcJsCalls: number;
  last?: { callback: UnaryCallback<Buffer>; metadata: (k: string) => grpc.MetadataValue[] };
}

/** A grpc-js server with one unary method answering the request's length; `hold` keeps the answer back. */
async function startEcho(hold = false): Promise<{ port: number; seen: Seen; direct: boolean; server: grpc.Server }> {
  const seen: Seen = { calls: 0, grpcJsCalls: 0 };
  const handler: UnaryHandler<Buffer, Buffer> = (call, callback) => {
    seen.calls++;
    seen.last = { callback, metadata: (k) => call.metadata.get(k) };
    if (call.request.toString() === "fail") callback({ code: grpc.status.UNAVAILABLE, details: "not now: try later" });
    else if (!hold) callback(null, call.request);
  };
  const server = new grpc.Server({ "grpc.enable_channelz": 0 });
  const method = { path: PATH, requestStream: false, responseStream: false, requestSerialize: id, requestDeserialize: read, responseSerialize: length, responseDeserialize: id };
  server.addService({ Length: method } as grpc.ServiceDefinition, {
    Length: ((call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      seen.grpcJsCalls++;
      handler(call, callback as UnaryCallback<Buffer>);
    }) as grpc.handleUnaryCall<Buffer, Buffer>,
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  const direct = serveUnaryDirectly(server, { path: PATH, deserialize: read, serialize: length, handler });
  return { port, seen, direct, server };
}

function call(client: grpc.Client, path: string, body: Buffer, options: grpc.CallOptions = {}, metadata = new grpc.Metadata()): Promise<{ err: grpc.ServiceError | null; value?: string }> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(path, id, id, body, metadata, { deadline: Date.now() + 10_000, ...options }, (err, value) => resolve({ err, ...(value ? { value: value.toString() } : {}) }));
  });
}

/** Raw HTTP/2: sends `frames` as the request body and returns the response headers and trailers. */
function raw(port: number, headers: http2.OutgoingHttpHeaders, frames: Buffer[]): Promise<{ headers: http2.IncomingHttpHeaders; trailers?: http2.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on("error", reject);
    const req = session.request({ ":method": "POST", ":path": PATH, "content-type": "application/grpc", te: "trailers", ...headers });
    let got: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | undefined;
    const body: Buffer[] = [];
    req.on("response", (h) => (got = h));
    req.on("trailers", (t) => (trailers = t));
    req.on("data", (d: Buffer) => body.push(d));
    req.on("close", () => {
      session.close();
      resolve({ headers: got, ...(trailers ? { trailers } : {}), body: Buffer.concat(body) });
    });
    req.on("error", () => undefined);
    for (const f of frames) req.write(f);
    req.end();
  });
}

/** A gRPC length-prefixed message (uncompressed). */
function frame(body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

describe("direct unary transport (grpc/unary-fast-path.ts)", function () {
  this.timeout(30_000);
  let echo: Awaited<ReturnType<typeof startEcho>>;
  let client: grpc.Client;

  afterEach(async () => {
    client?.close();
    echo?.server.forceShutdown();
  });

  async function start(hold = false): Promise<void> {
    echo = await startEcho(hold);
    client = new grpc.Client(`127.0.0.1:${echo.port}`, grpc.credentials.createInsecure());
  }

  it("takes the method on grpc-js's own port and answers as grpc-js does (message, OK trailers, metadata readable)", async () => {
    await start();
    assert.equal(echo.direct, true);
    const md = new grpc.Metadata();
    md.set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    assert.deepEqual(await call(client, PATH, Buffer.from("hello"), {}, md), { err: null, value: "5" });
    assert.equal(echo.seen.calls, 1);
    assert.equal(echo.seen.grpcJsCalls, 0, "grpc-js's call layer was not used");
    assert.deepEqual(echo.seen.last!.metadata("traceparent"), ["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"]);
    assert.deepEqual(echo.seen.last!.metadata("tracestate"), []);
    const r = await raw(echo.port, {}, [frame(Buffer.from("abc"))]);
    assert.equal(r.headers[":status"], 200);
    assert.equal(r.headers["content-type"], "application/grpc+proto");
    assert.equal(r.trailers?.["grpc-status"], "0");
    assert.deepEqual(r.body, frame(Buffer.from("3")));
  });

  it("reads a message spread over many DATA frames (1 MiB, flow control) and answers each of 50 concurrent calls", async () => {
    await start();
    assert.deepEqual(await call(client, PATH, Buffer.alloc(1024 * 1024, 7)), { err: null, value: String(1024 * 1024) });
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => call(client, PATH, Buffer.alloc(i + 1))));
    assert.deepEqual(answers.map((a) => a.value), Array.from({ length: 50 }, (_, i) => String(i + 1)));
  });

  it("answers an empty message (a valid request with no fields), whether its prefix comes alone or with others", async () => {
    await start();
    assert.deepEqual(await call(client, PATH, Buffer.alloc(0)), { err: null, value: "0" });
    const alone = await raw(echo.port, {}, [frame(Buffer.alloc(0))]);
    assert.equal(alone.trailers?.["grpc-status"], "0");
    assert.deepEqual(alone.body, frame(Buffer.from("0")));
    // The server keeps serving on the same port afterwards.
    assert.deepEqual(await call(client, PATH, Buffer.from("after")), { err: null, value: "5" });
    assert.equal(echo.seen.grpcJsCalls, 0);
  });

  it("refuses a message over 4 MiB with RESOURCE_EXHAUSTED, without calling the handler", async () => {
    await start();
    const r = await call(client, PATH, Buffer.alloc(MAX_RECEIVE_MESSAGE_BYTES + 1));
    assert.equal(r.err?.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(r.err!.details, /larger than max/);
    assert.equal(echo.seen.calls, 0);
    assert.deepEqual(await call(client, PATH, Buffer.alloc(MAX_RECEIVE_MESSAGE_BYTES)), { err: null, value: String(MAX_RECEIVE_MESSAGE_BYTES) });
  });

  it("answers DEADLINE_EXCEEDED when the handler is slower than grpc-timeout, and drops its late answer", async () => {
    await start(true);
    const r = await call(client, PATH, Buffer.from("x"), { deadline: Date.now() + 200 });
    assert.equal(r.err?.code, grpc.status.DEADLINE_EXCEEDED);
    echo.seen.last!.callback(null, Buffer.from("late"));
    const timedOut = await raw(echo.port, { "grpc-timeout": "1n" }, [frame(Buffer.from("x"))]);
    assert.equal(timedOut.headers["grpc-status"], String(grpc.status.DEADLINE_EXCEEDED));
  });

  it("stops a cancelled call: the handler's later answer writes nothing and the session goes on serving", async () => {
    await start(true);
    const pending = new Promise<grpc.ServiceError | null>((resolve) => {
      const c = client.makeUnaryRequest(PATH, id, id, Buffer.from("x"), new grpc.Metadata(), {}, (err) => resolve(err));
      const wait = setInterval(() => {
        if (echo.seen.calls === 1) {
          clearInterval(wait);
          c.cancel();
        }
      }, 5);
    });
    assert.equal((await pending)?.code, grpc.status.CANCELLED);
    await new Promise((r) => setTimeout(r, 50));
    echo.seen.last!.callback(null, Buffer.from("late"));
    const next = call(client, PATH, Buffer.from("ok"));
    for (let i = 0; i < 200 && echo.seen.calls < 2; i++) await new Promise((r) => setTimeout(r, 5));
    echo.seen.last!.callback(null, Buffer.from("ok"));
    assert.deepEqual(await next, { err: null, value: "2" });
  });

  it("passes a handler's error status through, and refuses calls with no message, two messages or unreadable bytes", async () => {
    echo = await startEcho();
    const failing = await raw(echo.port, {}, [frame(Buffer.from("fail"))]);
    assert.equal(failing.headers["grpc-status"], String(grpc.status.UNAVAILABLE));
    assert.equal(decodeURI(String(failing.headers["grpc-message"])), "not now: try later");
    const none = await raw(echo.port, {}, []);
    assert.equal(none.headers["grpc-status"], String(grpc.status.UNIMPLEMENTED));
    const two = await raw(echo.port, {}, [frame(Buffer.from("a")), frame(Buffer.from("b"))]);
    assert.equal(two.headers["grpc-status"], String(grpc.status.UNIMPLEMENTED));
    const unreadable = await raw(echo.port, {}, [frame(Buffer.from("bad!"))]);
    assert.equal(unreadable.headers["grpc-status"], String(grpc.status.INTERNAL));
    assert.equal(echo.seen.calls, 1, "only the well-formed call reached the handler");
  });

  it("leaves to grpc-js what it does not take: unknown methods (UNIMPLEMENTED), compressed calls, bad grpc-timeout, other content types", async () => {
    await start();
    assert.equal((await call(client, "/test.Echo/Nope", Buffer.from("x"))).err?.code, grpc.status.UNIMPLEMENTED);
    const gzip = new grpc.Client(`127.0.0.1:${echo.port}`, grpc.credentials.createInsecure(), { "grpc.default_compression_algorithm": 2 });
    try {
      assert.deepEqual(await call(gzip, PATH, Buffer.alloc(5000, 1)), { err: null, value: "5000" });
    } finally {
      gzip.close();
    }
    assert.equal(echo.seen.grpcJsCalls, 1, "the compressed call went through grpc-js");
    const badTimeout = await raw(echo.port, { "grpc-timeout": "soon" }, [frame(Buffer.from("x"))]);
    assert.equal(badTimeout.headers["grpc-status"], String(grpc.status.INTERNAL));
    const json = await raw(echo.port, { "content-type": "application/json" }, [frame(Buffer.from("x"))]);
    assert.equal(json.headers[":status"], 415);
  });
});

describe("direct unary transport: a grpc-js that does not look as expected", function () {
  this.timeout(30_000);

  it("changes nothing and returns false, and grpc-js then serves the method itself", async () => {
    let grpcJsCalls = 0;
    const server = new grpc.Server();
    const method = { path: PATH, requestStream: false, responseStream: false, requestSerialize: id, requestDeserialize: read, responseSerialize: length, responseDeserialize: id };
    server.addService({ Length: method } as grpc.ServiceDefinition, {
      Length: ((call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        grpcJsCalls++;
        callback(null, call.request);
      }) as grpc.handleUnaryCall<Buffer, Buffer>,
    });
    const handler: UnaryHandler<Buffer, Buffer> = () => assert.fail("the direct handler must not be installed");
    // Not bound yet: no HTTP/2 server to take streams from.
    assert.equal(serveUnaryDirectly(server, { path: PATH, deserialize: read, serialize: length, handler }), false);
    const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    // A grpc-js whose internals were renamed: the map it reads is gone.
    const internals = server as unknown as { http2Servers: unknown };
    const saved = internals.http2Servers;
    internals.http2Servers = undefined;
    assert.equal(serveUnaryDirectly(server, { path: PATH, deserialize: read, serialize: length, handler }), false);
    internals.http2Servers = saved;
    const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      assert.deepEqual(await call(client, PATH, Buffer.from("hello")), { err: null, value: "5" });
      assert.equal(grpcJsCalls, 1);
    } finally {
      client.close();
      server.forceShutdown();
    }
  });
});

describe("authz-server serves Check directly, beside health and the rate limit service", function () {
  this.timeout(30_000);
  let dir: string;
  let wired: WiredProcess;

  afterEach(async () => {
    await wired?.stop(100);
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers Check on the direct path and grpc-js answers Health and RateLimitService on the same port", async () => {
    dir = mkdtempSync(join(tmpdir(), "meshward-fast-path-"));
    writeFileSync(join(dir, "policy.yaml"), "apiVersion: meshward.io/v1\nkind: AuthzPolicy\nspec:\n  rules:\n    - { name: open, match: { paths: [\"/open\"] }, allow: anonymous }\n");
    wired = await wireProcess({ policyFile: join(dir, "policy.yaml"), grpcAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", logger: pino({ level: "silent" }), registry: new Registry(), clock: { now: () => Date.now() } });
    const { grpcPort, checkTransport } = await wired.start();
    assert.equal(checkTransport, "direct");
    const clients = grpcClients() as any;
    const target = `127.0.0.1:${grpcPort}`;
    const authz = new clients.Authorization(target, grpc.credentials.createInsecure());
    const health = new clients.Health(target, grpc.credentials.createInsecure());
    const rls = new clients.RateLimitService(target, grpc.credentials.createInsecure());
    const unary = (c: any, m: string, req: object): Promise<any> =>
      new Promise((resolve, reject) => c[m](req, { deadline: Date.now() + 5000 }, (err: Error | null, res: unknown) => (err ? reject(err) : resolve(res))));
    try {
      const http = (path: string) => ({ attributes: { request: { http: { method: "GET", path, host: "api.example.com", headers: {} } } } });
      assert.equal((await unary(authz, "Check", http("/open"))).status.code ?? 0, 0);
      assert.equal((await unary(authz, "Check", http("/closed"))).status.code, grpc.status.PERMISSION_DENIED);
      assert.equal((await unary(health, "Check", { service: "envoy.service.auth.v3.Authorization" })).status, "SERVING");
      assert.equal((await unary(rls, "ShouldRateLimit", { domain: "none", descriptors: [{ entries: [{ key: "k", value: "v" }] }] })).overallCode, "OK");
    } finally {
      for (const c of [authz, health, rls]) c.close();
    }
  });
});
