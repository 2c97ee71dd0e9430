// A loopback HTTP server that counts every request it receives: the target for jku/x5u/kid URLs
// that the server must never fetch.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface HitCounter {
  readonly origin: string;
  readonly hits: string[];
  stop(): Promise<void>;
}

export async function startHitCounter(body = "{}"): Promise<HitCounter> {
  const hits: string[] = [];
  const server: Server = createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    res.writeHead(200, { "content-type": "application/json" }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
