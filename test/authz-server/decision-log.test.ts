// The decision log line built directly must be byte-for-byte the line pino itself would write.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { logDecision } from "../../authz-server/src/observability/decision-log.js";
import { createLogger } from "../../authz-server/src/observability/logger.js";
import type { Attributes, Decision } from "../../authz-server/src/model.js";

const attrs = { method: "GET", host: "api.example.com", path: '/a"b\\c/\u00e9\u2028', source: { address: "10.1.2.3" } } as unknown as Attributes;
const decisions: Decision[] = [
  { id: "abc", allowed: true, httpStatus: 200, reason: "allowed", rule: "orders-read", identity: { user: { subject: "alice\n", provider: "corp" } } as never, dryRun: [] },
  { id: "def", allowed: false, httpStatus: 403, reason: "denied_by_rule", identity: { peer: { principal: "spiffe://cluster.local/ns/a/sa/b" } } as never, dryRun: [{ rule: "new", wouldDeny: false }] },
  { id: "ghi", allowed: false, httpStatus: 401, reason: "token_expired", identity: {}, dryRun: [] },
];

function lines(build: (write: (s: string) => void) => pino.Logger): string[] {
  const out: string[] = [];
  const logger = build((s) => void out.push(s));
  for (const d of decisions) logDecision(logger, d, attrs, 12.6, "v1");
  return out;
}

describe("observability/decision-log", () => {
  it("writes exactly pino's line (keys, order, escaping, bindings), one per decision", () => {
    const time = () => ',"time":1700000000000';
    const direct = lines((write) => pino({ timestamp: time, base: { service: "authz-server" } }, { write }).child({ component: "authz" }));
    // A mixin sends logDecision through pino's own serializer: the reference line.
    const viaPino = lines((write) => pino({ timestamp: time, base: { service: "authz-server" }, mixin: () => ({}) }, { write }).child({ component: "authz" }));
    assert.equal(direct.length, 3);
    assert.deepEqual(direct, viaPino);
    const first = JSON.parse(direct[0]!);
    assert.equal(first.msg, "decision");
    assert.equal(first.component, "authz");
    assert.equal(first.path, attrs.path);
    assert.equal(first.latencyUs, 13);
    assert.deepEqual(JSON.parse(direct[1]!).dryRun, [{ rule: "new", wouldDeny: false }]);
  });

  it("hands the server's own destination one turn's lines in one write, in order, none lost", async () => {
    const dir = mkdtempSync(join(tmpdir(), "decision-log-"));
    try {
      const file = join(dir, "log.jsonl");
      const dest = pino.destination({ dest: file, sync: false, minLength: 4096 });
      await new Promise((r) => dest.once("ready", r));
      const writes: string[] = [];
      const write = dest.write.bind(dest);
      dest.write = (s: string) => (writes.push(s), write(s));
      const logger = createLogger("info", dest);
      for (let i = 0; i < 50; i++) logDecision(logger, { ...decisions[0]!, id: `d${i}` }, attrs, 1, "v1");
      assert.equal(writes.length, 0, "nothing written before the turn ends");
      await new Promise((r) => setImmediate(r));
      assert.equal(writes.length, 1, "one write for the turn's 50 lines");
      dest.flushSync();
      const ids = readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l).decisionId);
      assert.deepEqual(ids, Array.from({ length: 50 }, (_, i) => `d${i}`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("logs nothing below info and keeps credentials out (the server's logger)", () => {
    const out: string[] = [];
    logDecision(createLogger("warn", { write: (s: string) => void out.push(s) }), decisions[0]!, attrs, 1, "v1");
    assert.equal(out.length, 0);
    logDecision(createLogger("info", { write: (s: string) => void out.push(s) }), decisions[0]!, attrs, 1, "v1");
    assert.equal(out.length, 1);
    assert.deepEqual(Object.keys(JSON.parse(out[0]!)), ["level", "time", "service", "decisionId", "allowed", "status", "reason", "rule", "subject", "provider", "method", "host", "path", "source", "latencyUs", "policy", "msg"]);
  });
});
