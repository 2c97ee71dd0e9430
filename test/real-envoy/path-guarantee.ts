// "What was authorised is what the upstream receives" for non-canonical paths: each request is either
// refused (by Envoy or by authz-server) or reaches the service with a canonical path that is exactly
// the path authz-server decided on (matched through the decision id the service receives).
import { strict as assert } from "node:assert";
import type { World } from "../../tools/envoy/scenario.js";
import { send } from "../../tools/envoy/with-envoy.js";

/** Paths whose raw form matches `/api/orders/**` (a reader may GET it) but which name something else. */
export const NON_CANONICAL_PATHS: readonly string[] = [
  "/api/orders/../../internal/secrets",
  "/api/orders/%2e%2e/%2e%2e/internal/secrets",
  "/api/orders/%2E%2E/%2E%2E/internal/secrets",
  "/api/orders/1%2F..%2F..%2F..%2Finternal%2Fsecrets",
  "/api/orders/1%2f2",
  "//api/orders/1",
  "/api/orders//1",
  "/api/./orders/1",
];

const NON_CANONICAL = /(^|\/)\.\.?(\/|$)|%2e|%2f|%5c|\/\/|\\/i;

export interface PathOutcome {
  readonly sent: string;
  readonly status: number;
  /** The path the service received, when it received the request. */
  readonly upstreamPath?: string;
  /** The path authz-server decided on, when it was asked. */
  readonly authorisedPath?: string;
}

export async function assertPathGuarantee(o: { port: number; token: string; world: World; paths: readonly string[] }): Promise<PathOutcome[]> {
  const outcomes: PathOutcome[] = [];
  const violations: string[] = [];
  for (const sent of o.paths) {
    const before = o.world.v1.received.length + o.world.v2.received.length;
    const r = await send(o.port, sent, { headers: { authorization: `Bearer ${o.token}` } });
    const after = o.world.v1.received.length + o.world.v2.received.length;
    const decisionId = r.headers["x-meshward-decision-id"];
    const decision = o.world.authz.logs.find((l) => l["msg"] === "decision" && l["decisionId"] === decisionId);
    const authorisedPath = typeof decision?.["path"] === "string" ? (decision["path"] as string) : undefined;
    if (after === before) {
      if (r.status === 200) violations.push(`${sent}: 200 without reaching a service`);
      outcomes.push({ sent, status: r.status, ...(authorisedPath !== undefined ? { authorisedPath } : {}) });
      continue;
    }
    const seen = JSON.parse(r.body) as { path: string; headers: Record<string, string> };
    const upstreamPath = seen.path.split("?")[0] as string;
    outcomes.push({ sent, status: r.status, upstreamPath, ...(authorisedPath !== undefined ? { authorisedPath } : {}) });
    if (authorisedPath === undefined) violations.push(`${sent}: reached the service without a decision`);
    else if (upstreamPath !== authorisedPath) violations.push(`${sent}: authorised as ${authorisedPath}, the service received ${upstreamPath}`);
    if (NON_CANONICAL.test(upstreamPath)) violations.push(`${sent}: the service received the non-canonical ${upstreamPath} (authorised as ${authorisedPath ?? "?"})`);
  }
  assert.deepEqual(violations, [], `outcomes: ${JSON.stringify(outcomes, null, 1)}`);
  return outcomes;
}
