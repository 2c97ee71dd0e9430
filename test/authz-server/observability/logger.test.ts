// The logger never writes credentials: known secret fields and headers are blanked.
import assert from "node:assert/strict";
import { createLogger } from "../../../authz-server/src/observability/logger.js";

describe("observability/logger", () => {
  it("blanks credentials wherever a log line carries them", () => {
    const lines: string[] = [];
    const logger = createLogger("info", { write: (l: string) => void lines.push(l) });
    logger.info({ headers: { authorization: "Bearer abc.def.ghi", cookie: "s=1", "x-api-key": "k", accept: "*/*" }, token: "abc", clientSecret: "cs" }, "m");
    const line = JSON.parse(lines[0]!);
    assert.deepEqual(line.headers, { authorization: "[redacted]", cookie: "[redacted]", "x-api-key": "[redacted]", accept: "*/*" });
    assert.equal(line.token, "[redacted]");
    assert.equal(line.clientSecret, "[redacted]");
    assert.ok(!lines[0]!.includes("abc"));
  });
});
