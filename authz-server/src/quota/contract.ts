// The contract between the server shell (server.ts) and the quota service (this folder): the
// server mounts the lease HTTP routes and the RateLimitService gRPC implementation it returns.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { UntypedServiceImplementation } from "@grpc/grpc-js";
import type { RateLimitSpec } from "../policy/document.js";

export type { RateLimitSpec } from "../policy/document.js";

export interface QuotaService {
  /** Handles `/v1/quota/*`; resolves false when the path is not a quota route. */
  handleHttp(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
  /** Implementation of `envoy.service.ratelimit.v3.RateLimitService`. */
  readonly rateLimitService: UntypedServiceImplementation;
  /** Replaces the limits atomically (policy reload). */
  setLimits(limits: readonly RateLimitSpec[]): void;
  /** For /readyz: whether the bucket store (Redis) answers. */
  ready(): Promise<{ readonly ok: boolean; readonly detail?: string }>;
  close(): Promise<void>;
}
