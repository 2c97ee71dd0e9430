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
/** One batch per destination stream (child loggers share their parent's). */
const batches = new WeakMap<object, (line: string) => void>();
/** A batch is written at the latest when it holds this many characters. */
const BATCH_CHARS = 64 * 1024;

interface Stream {
  write(s: string): unknown;
  flushSync?: () => void;
}

/**
 * The server's own destination (pino.destination, a SonicBoom with a `flushSync`) gets the decision lines
 * of one event-loop turn in a single write: SonicBoom measures and appends every string it is given (its
 * `Buffer.byteLength` of the pending chunk on each write made one line cost several µs). Lines keep their
 * order; a batch is written on setImmediate, when it grows past 64 KiB, and on process exit. Any other
 * destination (tests, transports) gets each line as it is made.
 */
function batched(stream: Stream): (line: string) => void {
  if (typeof stream.flushSync !== "function") return (line) => void stream.write(line);
  let b = batches.get(stream);
  if (b) return b;
  let pending: string[] = [];
  let chars = 0;
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (pending.length === 0) return;
    const text = pending.length === 1 ? pending[0]! : pending.join("");
    pending = [];
    chars = 0;
    stream.write(text);
  };
  process.once("exit", flush);
  b = (line) => {
    pending.push(line);
    chars += line.length;
    if (chars >= BATCH_CHARS) flush();
    else if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
  batches.set(stream, b);
  return b;
}

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
  const write = plain ? batched(l[S.streamSym] as Stream) : undefined;
  w = write
    ? (fields) => write(`${l[S.lsCacheSym][INFO]}${l[S.timeSym]()}${l[S.chindingsSym]}${fields},"msg":"decision"${l[S.endSym]}`)
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
