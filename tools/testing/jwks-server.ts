// A loopback JWKS endpoint whose key set a test can change (rotation) and whose fetches it can count.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface JwksServer {
  readonly url: string;
  fetches: number;
  setKeys(keys: readonly Record<string, unknown>[]): void;
  stop(): Promise<void>;
}

export async function startJwksServer(keys: readonly Record<string, unknown>[]): Promise<JwksServer> {
  let body = JSON.stringify({ keys });
  const server: Server = createServer((req, res) => {
    state.fetches++;
    if (req.url !== "/jwks.json") {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/json", "cache-control": "max-age=300" });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const state: JwksServer = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`,
    fetches: 0,
    setKeys(next) {
      body = JSON.stringify({ keys: next });
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  return state;
}
