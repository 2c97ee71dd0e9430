// The real quota service (authz-server/src/quota, in-memory buckets on the test clock, or Redis)
// behind a loopback HTTP server, and a stand-in cluster handler that forwards http_calls to it
// while counting calls in flight so tests can wait for them on a manual clock.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { Registry } from "prom-client";
import { createQuotaService } from "../../../authz-server/src/quota/index.js";
import type { QuotaService, RateLimitSpec } from "../../../authz-server/src/quota/contract.js";
import type { HttpCallHandler } from "../../../tools/standin/index.js";

export interface QuotaHarness {
  readonly quota: QuotaService;
  readonly url: string;
  /** Stand-in cluster handler forwarding to the server over a real loopback socket. */
  readonly handler: HttpCallHandler;
  /** Lease calls received so far. */
  calls(): number;
  /** Resolves once no forwarded call is in flight. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

export async function startQuota(limits: RateLimitSpec[], opts: { clock?: () => number; redisUrl?: string; leaseTtlMs?: number } = {}): Promise<QuotaHarness> {
  const quota = createQuotaService({
    limits, logger: pino({ level: "silent" }), registry: new Registry(),
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.redisUrl ? { redisUrl: opts.redisUrl } : {}),
    ...(opts.leaseTtlMs ? { leaseTtlMs: opts.leaseTtlMs } : {}),
  });
  const server: Server = createServer((req, res) => {
    quota.handleHttp(req, res).then((handled) => {
      if (!handled) {
        res.statusCode = 404;
        res.end();
      }
    }, () => {
      res.statusCode = 500;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let inFlight = 0;
  let total = 0;
  const handler: HttpCallHandler = async (req) => {
    inFlight++;
    total++;
    try {
      const res = await fetch(url + req.headers.get(":path"), {
        method: req.headers.get(":method") ?? "POST",
        headers: { "content-type": "application/json" },
        body: Buffer.from(req.body),
      });
      return { status: res.status, headers: { "content-type": "application/json" }, body: await res.text() };
    } finally {
      inFlight--;
    }
  };
  return {
    quota, url, handler,
    calls: () => total,
    async idle() {
      for (let round = 0; round < 50; round++) {
        for (let i = 0; i < 2000 && inFlight > 0; i++) await new Promise((r) => setTimeout(r, 1));
        for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
        if (inFlight === 0) return;
      }
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await quota.close();
    },
  };
}
