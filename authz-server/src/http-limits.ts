// Time and connection limits for every HTTP listener (public and admin): a slow or idle client cannot
// hold a socket longer than these, and the number of open sockets is capped.
import { createServer, type RequestListener, type Server } from "node:http";

export interface HttpLimits {
  /** Whole request (headers and body) must arrive within this. */
  readonly requestTimeoutMs: number;
  /** Headers must arrive within this (slowloris). */
  readonly headersTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  readonly keepAliveTimeoutMs: number;
  /** Open connections per listener; further ones are closed on accept. */
  readonly maxConnections: number;
}

export const HTTP_LIMITS: HttpLimits = Object.freeze({ requestTimeoutMs: 10_000, headersTimeoutMs: 5_000, keepAliveTimeoutMs: 5_000, maxConnections: 4_096 });

/**
 * An HTTP server with `limits`. Node enforces the request and headers timeouts only when its connection
 * check runs (default every 30 s, which would let a slow client stay ~40 s): run it every second.
 */
export function createLimitedHttpServer(handler: RequestListener, limits: HttpLimits = HTTP_LIMITS): Server {
  const server = createServer(
    {
      requestTimeout: limits.requestTimeoutMs,
      headersTimeout: Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs),
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: Math.min(1_000, limits.headersTimeoutMs),
    },
    handler,
  );
  server.maxConnections = limits.maxConnections;
  return server;
}
