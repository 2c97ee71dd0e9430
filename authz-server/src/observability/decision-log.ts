// One JSON log line per decision: id, result, reason, rule, who, what, latency and the trace it belongs
// to (trace_id, span_id) — never headers, query values or credentials.
//
// The line is the one pino would write (same keys, order, level/time/bindings prefix), but built
// directly: at thousands of decisions per second pino's generic per-key serializer loop cost several
// µs per Check. Loggers with formatters, mixins, hooks, redaction or a nested key take pino's path.
import { pino, type Logger } from "pino";
import type { Attributes, Decision } from "../model.js";
import type { TraceIds } from "./tracing.js";

const INFO = 30;
const S = pino.symbols;
const FIELDS = ["decisionId", "allowed", "status", "reason", "rule", "subject", "provider", "peer", "method", "host", "path", "source", "dryRun", "latencyUs", "policy", "trace_id", "span_id"];

type LineWriter = (fields: string) => void;
const writers = new WeakMap<Logger, LineWriter | null>();

/** A writer of pre-serialized decision fields when `logger` is a plain pino logger, else null. */
function lineWriter(logger: Logger): LineWriter | null {
  let w = writers.get(logger);
  if (w !== undefined) return w;
  const l = logger as unknown as Record<symbol, any>;
  const stringifiers = l[S.stringifiersSym] ?? {};
  const plain =
    typeof l[S.timeSym] === "function" &&
    typeof l[S.lsCacheSym]?.[INFO] === "string" &&
    typeof l[S.chindingsSym] === "string" &&
    typeof l[S.endSym] === "string" &&
    typeof l[S.streamSym]?.write === "function" &&
    l[S.streamSym][S.needsMetadataGsym] !== true &&
    !l[S.formattersSym]?.log &&
    !l[S.mixinSym] &&
    !l[S.hooksSym]?.logMethod &&
    !l[S.hooksSym]?.streamWrite &&
    !l[S.nestedKeySym] &&
    !l[(S as unknown as Record<string, symbol>).msgPrefixSym!] &&
    l[S.messageKeySym] === "msg" &&
    Object.keys(stringifiers).length === 0 &&
    !stringifiers[S.wildcardFirstSym] &&
    FIELDS.every((k) => !l[S.serializersSym]?.[k]);
  w = plain
    ? (fields) => {
        const line = `${l[S.lsCacheSym][INFO]}${l[S.timeSym]()}${l[S.chindingsSym]}${fields},"msg":"decision"${l[S.endSym]}`;
        l[S.streamSym].write(line);
      }
    : null;
  writers.set(logger, w);
  return w;
}

const str = (key: string, v: string | undefined): string => (v === undefined ? "" : `,"${key}":${JSON.stringify(v)}`);

export function logDecision(logger: Logger, d: Decision, attrs: Attributes, latencyUs: number, policyVersion: string, trace?: TraceIds): void {
  if (!logger.isLevelEnabled("info")) return;
  const { user, peer } = d.identity;
  const write = lineWriter(logger);
  if (write) {
    write(
      `,"decisionId":${JSON.stringify(d.id)},"allowed":${d.allowed},"status":${Number.isFinite(d.httpStatus) ? d.httpStatus : null}${str("reason", d.reason)}${str("rule", d.rule)}` +
        `${str("subject", user?.subject)}${str("provider", user?.provider)}${str("peer", peer?.principal)}${str("method", attrs.method)}${str("host", attrs.host)}${str("path", attrs.path)}` +
        `${str("source", attrs.source.address)}${d.dryRun.length ? `,"dryRun":${JSON.stringify(d.dryRun)}` : ""},"latencyUs":${Math.round(latencyUs)}${str("policy", policyVersion)}${str("trace_id", trace?.traceId)}${str("span_id", trace?.spanId)}`,
    );
    return;
  }
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
      trace_id: trace?.traceId,
      span_id: trace?.spanId,
    },
    "decision",
  );
}
