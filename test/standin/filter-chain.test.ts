// The filter chain driver (Envoy FilterManager semantics): decoders in order, encoders in reverse, one shared
// header map, asynchronous filters pausing and resuming, and local replies skipping filters that saw nothing.
import { strict as assert } from "node:assert";
import { watModule } from "./fixtures/wat-module.js";
import type { HeaderMap } from "../../tools/standin/header-map.js";
import type { DataStatus, FilterCallbacks, HeadersStatus, HttpFilter, HttpFilterFactory, TrailersStatus } from "../../tools/standin/http-filter.js";
import { StandIn } from "../../tools/standin/stand-in.js";

type Behaviour = { onDecodeHeaders?: (h: HeaderMap, cb: FilterCallbacks) => HeadersStatus };

function recorder(name: string, trace: string[], b: Behaviour = {}): HttpFilterFactory {
  return {
    createFilter: (cb): HttpFilter => ({
      name,
      decodeHeaders: (h) => (trace.push(`${name}.decodeHeaders`), b.onDecodeHeaders?.(h, cb) ?? "Continue"),
      decodeData: (): DataStatus => (trace.push(`${name}.decodeData`), "Continue"),
      decodeTrailers: (): TrailersStatus => (trace.push(`${name}.decodeTrailers`), "Continue"),
      encodeHeaders: (): HeadersStatus => (trace.push(`${name}.encodeHeaders`), "Continue"),
      encodeData: (): DataStatus => (trace.push(`${name}.encodeData`), "Continue"),
      encodeTrailers: (): TrailersStatus => (trace.push(`${name}.encodeTrailers`), "Continue"),
      onStreamComplete: () => trace.push(`${name}.complete`),
    }),
  };
}

describe("stand-in filter chain", function () {
  this.timeout(60_000);

  it("decodes in order, encodes in reverse, and shares one mutable request header map", async () => {
    const trace: string[] = [];
    const host = new StandIn();
    const chain = host.chain([
      recorder("a", trace, { onDecodeHeaders: (h) => (h.set("x-from-a", "1"), "Continue") }),
      recorder("b", trace, { onDecodeHeaders: (h) => (trace.push(`b sees ${h.get("x-from-a")}`), "Continue") }),
    ], (req) => (trace.push(`upstream ${req.headers.get("x-from-a")}`), { status: 200, body: "x", trailers: { "grpc-status": "0" } }));
    const res = await chain.run({ method: "POST", body: "p" });
    assert.deepEqual(trace, [
      "a.decodeHeaders", "b.decodeHeaders", "b sees 1", "a.decodeData", "b.decodeData", "upstream 1",
      "b.encodeHeaders", "a.encodeHeaders", "b.encodeData", "a.encodeData", "b.encodeTrailers", "a.encodeTrailers",
      "a.complete", "b.complete",
    ]);
    assert.equal(res.responseTrailers?.get("grpc-status"), "0");
  });

  it("lets an asynchronous filter stop the request and resume it later (ext_authz style)", async () => {
    const trace: string[] = [];
    const host = new StandIn();
    let resume: (() => void) | undefined;
    const chain = host.chain([
      recorder("authz", trace, { onDecodeHeaders: (h, cb) => {
        resume = () => { h.set("x-user", "alice"); cb.continueDecoding(); };
        return "StopAllIterationAndWatermark";
      } }),
      recorder("router", trace),
    ], (req) => ({ status: 200, headers: { "x-user-seen": req.headers.get("x-user") ?? "" } }));
    const s = chain.newStream({ path: "/x" });
    s.start();
    assert.equal(s.decodingStoppedAt, 0);
    assert.deepEqual(trace, ["authz.decodeHeaders"]);
    resume!();
    const res = await s.completion;
    assert.equal(res.responseHeaders?.get("x-user-seen"), "alice");
    assert.deepEqual(trace.slice(1, 2), ["router.decodeHeaders"]);
  });

  it("runs a local reply through the encoders of filters that saw the request; a later wasm filter only logs", async () => {
    const trace: string[] = [];
    const host = new StandIn();
    const wasm = await host.loadPlugin({ wasm: await watModule(), rootId: "late" });
    const chain = host.chain([
      recorder("first", trace),
      recorder("deny", trace, { onDecodeHeaders: (_h, cb) => {
        cb.sendLocalReply({ status: 401, body: Buffer.from("who?"), headers: [["www-authenticate", "Bearer"]], details: "jwt_missing", from: "deny" });
        return "StopAllIterationAndWatermark";
      } }),
      wasm.worker(0),
    ], () => assert.fail("upstream must not be contacted"));
    const res = await chain.run({});
    assert.deepEqual(trace, ["first.decodeHeaders", "deny.decodeHeaders", "deny.encodeHeaders", "first.encodeHeaders",
      "deny.encodeData", "first.encodeData", "first.complete", "deny.complete"]);
    assert.deepEqual(res.logs.map((l) => l.message), ["context_create", "log", "done", "delete"]);
    assert.equal(res.responseStatus, 401);
    assert.equal(res.responseHeaders?.get("www-authenticate"), "Bearer");
    assert.equal(res.responseBodyText, "who?");
  });

  it("holds a NoBuffer chunk and delivers the next chunk alone; a Buffer stop re-delivers the accumulated body", async () => {
    const seen: string[] = [];
    const host = new StandIn();
    const mk = (name: string, first: DataStatus): HttpFilterFactory => ({
      createFilter: (): HttpFilter => {
        let n = 0;
        return {
          name,
          decodeHeaders: () => "Continue",
          decodeData: (d) => (seen.push(`${name}:${Buffer.from(d.bytes).toString()}`), n++ === 0 ? first : "Continue"),
          decodeTrailers: () => "Continue",
          encodeHeaders: () => "Continue",
          encodeData: () => "Continue",
          encodeTrailers: () => "Continue",
          onStreamComplete: () => undefined,
        };
      },
    });
    const res = await host.chain([mk("nobuf", "StopIterationNoBuffer"), mk("buf", "StopIterationAndBuffer")]).run({ method: "POST", body: ["a", "b", "c"] });
    assert.deepEqual(seen, ["nobuf:a", "nobuf:b", "buf:a", "buf:ab", "nobuf:c", "buf:c"]);
    assert.equal(Buffer.from(res.upstreamRequest!.body).toString(), "abc");
  });

  it("answers gRPC requests' local replies in gRPC form", async () => {
    const host = new StandIn();
    const chain = host.chain([recorder("deny", [], { onDecodeHeaders: (_h, cb) => {
      cb.sendLocalReply({ status: 429, body: Buffer.from("slow down"), headers: [], details: "rl", grpcStatus: undefined, from: "deny" });
      return "StopAllIterationAndWatermark";
    } })]);
    const res = await chain.run({ method: "POST", headers: { "content-type": "application/grpc" } });
    assert.equal(res.responseStatus, 200);
    assert.equal(res.responseHeaders?.get("grpc-status"), "14");
    assert.equal(res.responseHeaders?.get("grpc-message"), "slow down");
  });

  it("turns an upstream failure into a 503 from the router", async () => {
    const host = new StandIn();
    const res = await host.chain([], () => { throw new Error("ECONNREFUSED"); }).run({});
    assert.equal(res.responseStatus, 503);
    assert.match(res.responseBodyText, /upstream connect error/);
  });
});
