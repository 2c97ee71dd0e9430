// Loopback servers of the conformance runs: recording upstreams (one port per cluster label) and
// quota servers whose every lease answer is fixed by a mode (grant, short, 503, hang, garbage, refused).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { QUOTA_MODES, UPSTREAM_LABELS, type QuotaMode } from "./corpus.js";

/** The header that names a case; the upstream files what it received under it. */
export const CASE_HEADER = "x-conformance-case";

export interface Received {
  readonly label: string;
  readonly method: string;
  readonly path: string;
  /** [name, value] as received (lower-case names), in wire order. */
  readonly headers: readonly [string, string][];
  readonly body: string;
}

export interface Loopback {
  /** Cluster name → "127.0.0.1:port" for every upstream and quota cluster. */
  readonly endpoints: Readonly<Record<string, string>>;
  /** Requests received per case id (cleared by reset()). */
  readonly received: Map<string, Received>;
  /** Lease calls received per quota mode. */
  readonly leaseCalls: Map<QuotaMode, number>;
  reset(): void;
  close(): Promise<void>;
}

function listen(handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>): Promise<{ server: Server; port: number; sockets: Set<Socket> }> {
  // A handler that throws resets its connection, so the case shows up as a disagreement, not a hang.
  const server = createServer((req, res) => void handler(req, res).catch((err: unknown) => res.destroy(err instanceof Error ? err : new Error(String(err)))));
  const sockets = new Set<Socket>();
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ server, port: (server.address() as AddressInfo).port, sockets })));
}

function readBody(req: IncomingMessage, limit = 65536): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size <= limit) chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
  });
}

/** What a quota server in `mode` answers to a lease call for `want` tokens (null: never answers). */
function leaseAnswer(mode: QuotaMode, want: number): { status: number; body: string } | null {
  switch (mode) {
    case "grant":
      return { status: 200, body: JSON.stringify({ granted: want, expiresInMs: 60_000, resetInMs: 1000 }) };
    case "short":
      return { status: 200, body: JSON.stringify({ granted: Math.min(want, 2), expiresInMs: 60_000, resetInMs: 5000, retryAfterMs: 900 }) };
    case "status-503":
      return { status: 503, body: "quota unavailable" };
    case "garbage":
      return { status: 200, body: "<html>not a lease</html>" };
    case "hang":
    case "refused":
      return null;
  }
}

export async function startLoopback(): Promise<Loopback> {
  const received = new Map<string, Received>();
  const leaseCalls = new Map<QuotaMode, number>();
  const servers: { server: Server; sockets: Set<Socket> }[] = [];
  const endpoints: Record<string, string> = {};

  for (const label of UPSTREAM_LABELS) {
    const s = await listen(async (req, res) => {
      const body = await readBody(req);
      const id = req.headers[CASE_HEADER];
      const headers: [string, string][] = [];
      for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) headers.push([(req.rawHeaders[i] as string).toLowerCase(), req.rawHeaders[i + 1] as string]);
      if (typeof id === "string" && received.size < 100_000) received.set(id, { label, method: req.method ?? "", path: req.url ?? "", headers, body });
      res.writeHead(200, { "content-type": "text/plain", "x-upstream": label });
      res.end(`ok ${label}`);
    });
    servers.push(s);
    endpoints[`up-${label}`] = `127.0.0.1:${s.port}`;
  }

  for (const mode of QUOTA_MODES) {
    if (mode === "refused") continue;
    const s = await listen(async (req, res) => {
      const body = await readBody(req);
      leaseCalls.set(mode, (leaseCalls.get(mode) ?? 0) + 1);
      let want = 1;
      try {
        want = Number((JSON.parse(body) as { want?: number }).want ?? 1);
      } catch {
        // a malformed lease request still gets the mode's answer
      }
      const answer = leaseAnswer(mode, want);
      if (!answer) return; // hang: the caller's timeout decides
      res.writeHead(answer.status, { "content-type": "application/json" });
      res.end(answer.body);
    });
    servers.push(s);
    endpoints[`quota-${mode}`] = `127.0.0.1:${s.port}`;
  }
  // "refused": a port that was just free and is closed again.
  const gone = await listen(() => new Promise<void>(() => undefined));
  endpoints["quota-refused"] = `127.0.0.1:${gone.port}`;
  await new Promise<void>((r) => gone.server.close(() => r()));

  return {
    endpoints,
    received,
    leaseCalls,
    reset() {
      received.clear();
      leaseCalls.clear();
    },
    async close() {
      for (const s of servers) {
        for (const sock of s.sockets) sock.destroy();
        await new Promise<void>((r) => s.server.close(() => r()));
      }
    },
  };
}
