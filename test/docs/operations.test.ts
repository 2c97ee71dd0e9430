// docs/operations.md's table of flags is the parser's FLAGS table, row for row: docs and code cannot drift.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { FLAGS } from "../../authz-server/src/cli/args.js";

const DOC = new URL("../../docs/operations.md", import.meta.url);

/** The table cells FLAGS gives: flag, variable, default, meaning. */
function flagCells(): string[][] {
  return FLAGS.map((f) => [`\`--${f.name}${f.value ? ` ${f.value}` : ""}\``, f.env ? `\`${f.env}\`` : "", f.default ? `\`${f.default}\`` : "", f.help]);
}

describe("docs/operations.md", () => {
  it("lists exactly the flags the parser defines, with their variables, defaults and help", () => {
    const text = readFileSync(DOC, "utf8");
    const block = /<!-- flags:begin -->\n([\s\S]*?)\n<!-- flags:end -->/.exec(text);
    assert.ok(block, "the flags table is marked");
    const rows = block[1]!.split("\n").slice(2).map((r) => r.split("|").slice(1, -1).map((c) => c.trim()));
    assert.deepEqual(rows, flagCells());
  });
});
