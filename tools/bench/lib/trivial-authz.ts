// The trivial grpc-js Check handler (always OK): the transport ceiling our authz-server is measured against.
// Runs in-process (startTrivialAuthz) or in its own process (spawnTrivialAuthz, or `node --import tsx bench/lib/trivial-authz.ts`).
import * as grpc from "@grpc/grpc-js";
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { AUTHORIZATION_SERVICE, authorizationPackage } from "./check-proto.js";

export interface RunningServer {
  readonly port: number;
  /** host:port to dial. */
  readonly target: string;
  /** The serving process, when it is a child of its own. */
  readonly pid?: number;
  stop(): Promise<void>;
}

export type CheckHandler = grpc.handleUnaryCall<object, object>;

/** Serves Authorization/Check with `handle` on 127.0.0.1 (port 0 = any free port). */
export async function startCheckServer(handle: CheckHandler, port = 0): Promise<RunningServer> {
  const server = new grpc.Server();
  server.addService(authorizationPackage()[AUTHORIZATION_SERVICE] as grpc.ServiceDefinition, { Check: handle });
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    port: bound,
    target: `127.0.0.1:${bound}`,
    stop: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

const allow: CheckHandler = (_call, callback) => callback(null, { status: { code: 0 } });

/** The trivial handler in this process. */
export function startTrivialAuthz(port = 0): Promise<RunningServer> {
  return startCheckServer(allow, port);
}

/** The trivial handler in a child process of its own (as our server runs), so it gets its own event loop. */
export function spawnTrivialAuthz(): Promise<RunningServer> {
  return spawnChild(fileURLToPath(import.meta.url), "trivial authz");
}

/** The same always-OK answer from bare node:http2 (lib/bare-h2-authz.ts): what grpc-js itself costs. */
export function spawnBareHttp2Authz(): Promise<RunningServer> {
  return spawnChild(fileURLToPath(new URL("./bare-h2-authz.ts", import.meta.url)), "bare node:http2 authz");
}

function spawnChild(script: string, what: string): Promise<RunningServer> {
  const child = fork(script, [], { execArgv: ["--import", "tsx"], stdio: ["ignore", "ignore", "inherit", "ipc"] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill("SIGKILL"); reject(new Error(`${what} child did not start within 20 s`)); }, 20_000);
    child.once("error", (err) => { clearTimeout(timer); reject(err); });
    child.once("exit", (code) => { clearTimeout(timer); reject(new Error(`${what} child exited with ${code} before listening`)); });
    child.once("message", (msg: { port: number }) => {
      clearTimeout(timer);
      child.removeAllListeners("exit");
      resolve({
        port: msg.port,
        target: `127.0.0.1:${msg.port}`,
        ...(child.pid ? { pid: child.pid } : {}),
        stop: () => new Promise<void>((done) => {
          if (child.exitCode !== null || child.signalCode !== null) return done();
          child.once("exit", () => done());
          child.kill("SIGTERM");
        }),
      });
    });
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const server = await startTrivialAuthz(Number(process.env.PORT ?? 0));
  if (process.send) {
    process.send({ port: server.port });
    process.on("disconnect", () => void server.stop().then(() => process.exit(0)));
  } else {
    console.log(`trivial authz listening on ${server.target}`);
  }
  process.on("SIGTERM", () => void server.stop().then(() => process.exit(0)));
}
