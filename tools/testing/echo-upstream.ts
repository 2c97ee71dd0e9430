// Loopback echo upstreams for the e2e chains: each answers with its name and the request it received.
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface EchoUpstream {
  readonly name: string;
  readonly address: string;
  /** Requests received, newest last (bounded). */
  readonly received: { method: string; path: string; headers: Record<string, string | string[] | undefined> }[];
  close(): Promise<void>;
}

/** `extraHeaders` adds response headers computed from the request (e.g. a hostile upstream's). */
export async function startEcho(name: string, extraHeaders?: (headers: IncomingHttpHeaders) => Record<string, string>): Promise<EchoUpstream> {
  const received: EchoUpstream["received"] = [];
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      if (received.length < 10_000) received.push({ method: req.method ?? "", path: req.url ?? "", headers: req.headers });
      res.writeHead(200, { "content-type": "application/json", "x-upstream": name, ...extraHeaders?.(req.headers) });
      res.end(JSON.stringify({ upstream: name, path: req.url, headers: req.headers }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    name,
    address: `127.0.0.1:${port}`,
    received,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
