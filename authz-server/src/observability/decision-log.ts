// One JSON log line per decision: id, result, reason, rule, who, what and latency — never headers,
// query values or credentials.
import type { Logger } from "pino";
import type { Attributes, Decision } from "../model.js";

export function logDecision(logger: Logger, d: Decision, attrs: Attributes, latencyUs: number, policyVersion: string): void {
  if (!logger.isLevelEnabled("info")) return;
  const { user, peer } = d.identity;
  logger.info(
    {
      decisionId: d.id,
      allowed: d.allowed,
      status: d.httpStatus,
      reason: d.reason,
      rule: d.rule,
      subject: user?.subject,
      provider: user?.provider,
      peer: peer?.principal,
      method: attrs.method,
      host: attrs.host,
      path: attrs.path,
      source: attrs.source.address,
      dryRun: d.dryRun.length ? d.dryRun : undefined,
      latencyUs: Math.round(latencyUs),
      policy: policyVersion,
    },
    "decision",
  );
}
