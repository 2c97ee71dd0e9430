// Strict JSON reader and config-reader messages (filters/lib/json.ts, config-reader.ts) via the loader.
import assert from "node:assert/strict";
import { AsLib, loadAsLib } from "../../../tools/testing/as-lib.js";

describe("filters/lib json reader", function () {
  this.timeout(120_000);
  let lib: AsLib;
  before(async () => {
    lib = await loadAsLib();
  });

  it("parses every JSON type and keeps object key order", () => {
    assert.equal(lib.jsonRoundTrip(' { "b" : [1, -2.5, 3e2, true, false, null], "a": {"x": ""} } '),
      '{"b":[1.0,-2.5,300.0,true,false,null],"a":{"x":""}}');
  });

  it("decodes every string escape including \\u escapes and surrogate pairs", () => {
    assert.equal(lib.jsonRoundTrip(String.raw`["\"\\\/\b\f\n\r\t", "\u00e9\ud83d\ude00"]`),
      String.raw`["\"\\/\u0008\u000c\u000a\u000d\u0009","\u00e9\ud83d\ude00"]`);
  });

  const rejects: Array<[string, string, string]> = [
    ["trailing comma in an array", '{"a": [1, 2,]}', "error: a[2]: unexpected character ']' at offset 12"],
    ["trailing comma in an object", '{"a": 1,}', "error: (root): expected a string key at offset 8"],
    ["a duplicate key", '{"rules": [{"name": "x", "name": "y"}]}', "error: rules[0].name: duplicate key at offset 31"],
    ["a comment", '{"a": 1 // no\n}', "error: (root): expected ',' or '}' at offset 8"],
    ["single quotes", "{'a': 1}", "error: (root): expected a string key at offset 1"],
    ["a bad escape", '{"a": "\\x"}', "error: a: invalid escape '\\x' at offset 8"],
    ["a raw control character in a string", '{"a": "x\ny"}', "error: a: control character in string at offset 8"],
    ["a number with a leading zero", '{"n": 01}', "error: (root): expected ',' or '}' at offset 7"],
    ["a bare minus sign", '{"n": -}', "error: n: invalid number at offset 7"],
    ["trailing garbage after the value", '{} x', "error: (root): unexpected trailing characters at offset 3"],
    ["an unterminated string", '{"a": "abc', "error: a: unterminated string at offset 10"],
    ["empty input", "   ", "error: configuration is empty (expected a JSON object)"],
    ["a bare word", '{"a": nope}', "error: a: unexpected character 'n' at offset 6"],
  ];
  for (const [what, text, message] of rejects) {
    it(`rejects ${what} with the JSON path and offset`, () => {
      assert.equal(lib.jsonRoundTrip(text), message);
    });
  }

  it("rejects nesting deeper than 64 levels", () => {
    const deep = "[".repeat(70) + "]".repeat(70);
    assert.match(lib.jsonRoundTrip(deep), /^error: .*nesting deeper than 64/);
  });

  it("config reader names the field and the expected type", () => {
    assert.equal(lib.readField('{"k": 3}', "k", "string"), "error: cfg.k: expected a string, got a number");
    assert.equal(lib.readField('{"k": ""}', "k", "string"), "error: cfg.k: must not be empty");
    assert.equal(lib.readField("{}", "k", "string"), "error: cfg.k: required");
    assert.equal(lib.readField('{"k": "yes"}', "k", "bool"), "error: cfg.k: expected a boolean, got a string");
    assert.equal(lib.readField('{"k": 2.5}', "k", "int"), "error: cfg.k: expected an integer");
    assert.equal(lib.readField('{"k": 101}', "k", "int"), "error: cfg.k: must be between 1 and 100");
    assert.equal(lib.readField('{"k": ["a", 1]}', "k", "array"), "error: cfg.k[1]: expected a string, got a number");
    assert.equal(lib.readField('{"k": "v", "other": 1}', "k", "string"), "error: cfg.other: unknown key (allowed: k)");
    assert.equal(lib.readField("[]", "k", "string"), "error: cfg: expected an object, got an array");
  });

  it("config reader returns valid values", () => {
    assert.equal(lib.readField('{"k": "v"}', "k", "string"), "v");
    assert.equal(lib.readField('{"k": true}', "k", "bool"), "true");
    assert.equal(lib.readField('{"k": 42}', "k", "int"), "42");
    assert.equal(lib.readField('{"k": ["a", "b"]}', "k", "array"), "a|b");
  });
});
