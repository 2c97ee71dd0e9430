// The trivial Check handler (always OK) on node:http2 directly, without grpc-js: the transport floor under
// grpc-js, so a run can say how much of a Check's cost is grpc-js itself. A benchmark baseline only: it
// implements none of gRPC's deadlines, cancellation, size limits or health. Runs as a child process
// (spawnBareHttp2Authz in trivial-authz.ts).
import http2 from "node:http2";

// A gRPC frame holding CheckResponse { status: {} } (status code 0: allowed).
const FRAME = Buffer.from([0, 0, 0, 0, 2, 0x0a, 0x00]);

const server = http2.createServer();
server.on("stream", (stream) => {
  stream.on("data", () => undefined);
  stream.on("end", () => {
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.end(FRAME);
  });
});
server.listen(Number(process.env["PORT"] ?? 0), "127.0.0.1", () => {
  const address = server.address();
  process.send?.({ port: typeof address === "object" && address ? address.port : 0 });
});
process.on("disconnect", () => process.exit(0));
process.on("SIGTERM", () => process.exit(0));
