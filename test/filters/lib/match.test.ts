// Request matchers (path, methods, headers, query, cookies) and their parsing, via the loader.
import assert from "node:assert/strict";
import { AsLib, loadAsLib } from "../../../tools/testing/as-lib.js";

describe("filters/lib request matchers", function () {
  this.timeout(120_000);
  let lib: AsLib;
  before(async () => {
    lib = await loadAsLib();
  });

  describe("path", () => {
    it("exact compares the whole path and ignores the query string", () => {
      assert.equal(lib.pathMatches("exact", "/api/orders", "/api/orders?x=1"), true);
      assert.equal(lib.pathMatches("exact", "/api/orders", "/api/orders#frag"), true);
      assert.equal(lib.pathMatches("exact", "/api/orders", "/api/orders/"), false);
      assert.equal(lib.pathMatches("exact", "/api/orders", "/API/orders"), false);
    });

    it("prefix compares the leading characters of the path only", () => {
      assert.equal(lib.pathMatches("prefix", "/api/", "/api/x"), true);
      assert.equal(lib.pathMatches("prefix", "/api/", "/api"), false);
      assert.equal(lib.pathMatches("prefix", "/api/", "/x?next=/api/"), false);
    });

    const globs: Array<[string, string, boolean]> = [
      ["/api/*/items", "/api/v1/items", true],
      ["/api/*/items", "/api/v1/v2/items", false],
      ["/api/*/items", "/api//items", false],
      ["/api/*", "/api/", false],
      ["/api/*", "/api/x?y=/z", true],
      ["/api/**", "/api", true],
      ["/api/**", "/api/", true],
      ["/api/**", "/api/a/b/c", true],
      ["/api/**", "/apix", false],
      ["/**/edit", "/edit", true],
      ["/**/edit", "/a/b/edit", true],
      ["/**/edit", "/a/b/edit/x", false],
      ["/a/**/b/*", "/a/x/y/b/z", true],
      ["/a/**/b/*", "/a/b/z", true],
      ["/a/**/b/*", "/a/b", false],
      ["/a/**/**/c", "/a/c", true],
      ["/**", "/", true],
      ["/x", "relative/x", false],
    ];
    for (const [pattern, path, expected] of globs) {
      it(`glob ${pattern} ${expected ? "matches" : "does not match"} ${path}`, () => {
        assert.equal(lib.pathMatches("glob", pattern, path), expected);
      });
    }

    it("glob matching of an adversarial path finishes (no exponential backtracking)", () => {
      const path = "/" + Array.from({ length: 2000 }, () => "a").join("/") + "/b";
      assert.equal(lib.pathMatches("glob", "/**/a/**/a/**/a/**/c", path), false);
    });

    it("rejects globs with '*' inside a segment or without a leading slash", () => {
      assert.equal(lib.checkGlob("/api/*.png"), "segment '*.png': '*' and '**' must be whole segments");
      assert.equal(lib.checkGlob("api/**"), "must start with '/'");
      assert.equal(lib.checkGlob("/api/**/x/*"), "");
    });
  });

  describe("string matchers", () => {
    const cases: Array<[string, string, string | null, boolean]> = [
      ["exact", "beta", "beta", true], ["exact", "beta", "Beta", false], ["exact", "beta", null, false],
      ["prefix", "be", "beta", true], ["prefix", "et", "beta", false],
      ["suffix", "ta", "beta", true], ["suffix", "be", "beta", false],
      ["contains", "et", "beta", true], ["contains", "x", "beta", false],
      ["contains", "", "x", true], ["suffix", "längere", "ä", false], ["contains", "ü", "grün", true], ["prefix", "", "", true],
      ["present", "", "", true], ["present", "", null, false],
      ["absent", "", null, true], ["absent", "", "", false],
    ];
    for (const [kind, operand, actual, expected] of cases) {
      it(`${kind} '${operand}' against ${actual === null ? "a missing item" : `'${actual}'`} is ${expected}`, () => {
        assert.equal(lib.stringMatches(kind, operand, actual), expected);
      });
    }
  });

  describe("query and cookie parsing", () => {
    it("finds query parameters, percent-decoded, first occurrence wins", () => {
      assert.equal(lib.query("/p?a=1&v=2&v=3", "v"), "2");
      assert.equal(lib.query("/p?name=J%C3%BCrgen+X", "name"), "Jürgen X");
      assert.equal(lib.query("/p?fl%61g&b=", "flag"), "");
      assert.equal(lib.query("/p?b=", "b"), "");
      assert.equal(lib.query("/p?a=1#v=2", "v"), null);
      assert.equal(lib.query("/p", "a"), null);
      assert.equal(lib.query("/p?va=1", "v"), null);
    });

    it("keeps malformed percent escapes verbatim", () => {
      assert.equal(lib.decode("100%"), "100%");
      assert.equal(lib.decode("%zz%41"), "%zzA");
    });

    it("finds cookies by exact name, trimming spaces and quotes", () => {
      assert.equal(lib.cookie("a=1; canary=yes; b=2", "canary"), "yes");
      assert.equal(lib.cookie("a=1;canary = \"q\" ;b=2", "canary"), "q");
      assert.equal(lib.cookie("xcanary=1; canaryx=2", "canary"), null);
      assert.equal(lib.cookie("canary=", "canary"), "");
      assert.equal(lib.cookie("", "canary"), null);
    });
  });

  describe("request match blocks", () => {
    const request: Array<[string, string]> = [
      [":authority", "api.example.com"], [":path", "/api/orders/7?v=2&debug"], [":method", "GET"],
      ["x-user-tier", "beta"], ["cookie", "session=abc"], ["cookie", "canary=1"], ["x-user-tier", "gold"],
    ];

    it("matches when every condition holds", () => {
      assert.equal(lib.requestMatches({
        path: { prefix: "/api/" }, methods: ["get", "POST"],
        headers: [{ name: "X-User-Tier", exact: "beta" }, { name: "x-missing", absent: true }],
        query: [{ name: "v", exact: "2" }, { name: "debug", present: true }],
        cookies: [{ name: "canary", present: true }, { name: "session", prefix: "ab" }],
      }, request), "match");
    });

    it("matches pseudo-headers such as :authority", () => {
      assert.equal(lib.requestMatches({ headers: [{ name: ":authority", suffix: ".example.com" }] }, request), "match");
      assert.equal(lib.requestMatches({ headers: [{ name: ":authority", exact: "other" }] }, request), "no match");
    });

    it("an empty match block matches everything", () => {
      assert.equal(lib.requestMatches({}, request), "match");
    });

    const misses: Array<[string, unknown]> = [
      ["the path", { path: { glob: "/api/*" } }],
      ["the method", { methods: ["POST"] }],
      ["a header (first value only)", { headers: [{ name: "x-user-tier", exact: "gold" }] }],
      ["a query parameter", { query: [{ name: "v", exact: "3" }] }],
      ["a cookie", { cookies: [{ name: "canary", exact: "2" }] }],
      ["a present: false condition", { headers: [{ name: "x-user-tier", present: false }] }],
    ];
    for (const [what, match] of misses) {
      it(`does not match when ${what} differs`, () => {
        assert.equal(lib.requestMatches(match, request), "no match");
      });
    }

    const invalid: Array<[string, unknown, string]> = [
      ["an unknown key", { paths: [] }, "error: match.paths: unknown key (allowed: path, methods, headers, query, cookies)"],
      ["a path prefix that is not a string", { path: { prefix: 3 } }, "error: match.path.prefix: expected a string, got a number"],
      ["two path kinds", { path: { prefix: "/a", exact: "/a" } }, "error: match.path: 'exact' and 'prefix' are mutually exclusive"],
      ["a path without a leading slash", { path: { exact: "a" } }, "error: match.path.exact: must start with '/'"],
      ["a bad glob", { path: { glob: "/a/b*" } }, "error: match.path.glob: segment 'b*': '*' and '**' must be whole segments"],
      ["a method that is not a token", { methods: ["GET", "B AD"] }, "error: match.methods[1]: not a valid HTTP method"],
      ["a header without a name", { headers: [{ exact: "x" }] }, "error: match.headers[0].name: required"],
      ["a header without an operator", { headers: [{ name: "x" }] }, "error: match.headers[0]: expected one of: exact, prefix, suffix, contains, present, absent"],
      ["present given as a string", { cookies: [{ name: "c", present: "yes" }] }, "error: match.cookies[0].present: expected a boolean, got a string"],
      ["an exact operand that is not a string", { query: [{ name: "q", exact: 1 }] }, "error: match.query[0].exact: expected a string, got a number"],
      ["a header name that is not a token", { headers: [{ name: "x y", present: true }] }, "error: match.headers[0].name: not a valid header name"],
      ["headers that are not an array", { headers: { name: "x" } }, "error: match.headers: expected an array, got an object"],
    ];
    for (const [what, match, message] of invalid) {
      it(`rejects ${what}`, () => {
        assert.equal(lib.requestMatches(match, request), message);
      });
    }
  });

  describe("request view", () => {
    it("returns the first value of a header and null for a missing one", () => {
      const headers: Array<[string, string]> = [["a", "1"], ["b", "2"], ["a", "3"]];
      assert.equal(lib.headerOf(headers, "a"), "1");
      assert.equal(lib.headerOf(headers, "b"), "2");
      assert.equal(lib.headerOf(headers, "c"), "(absent)");
      assert.equal(lib.headerOf([["x", "ünï"]], "x"), "ünï");
    });

    it("counts a header's occurrences up to 2 in one pass, pointing at the first value", () => {
      const headers: Array<[string, string]> = [["x-route", "v1"], ["a", "1"], ["x-route", "v2"], ["x-route", "v3"]];
      assert.equal(lib.headerOccurrences(headers, "x-route"), "2:v1");
      assert.equal(lib.headerOccurrences(headers, "a"), "1:1");
      assert.equal(lib.headerOccurrences(headers, "b"), "0");
      assert.equal(lib.headerOccurrences([["x-route", ""]], "x-route"), "1:");
    });

    it("reads a malformed pairs buffer as no headers", () => {
      const good = Uint8Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0x61, 0, 0x31, 0]);
      assert.equal(lib.pairsCount(good), 1);
      assert.equal(lib.pairsCount(good.subarray(0, 14)), 0);
      assert.equal(lib.pairsCount(Uint8Array.from([255, 255, 0, 0])), 0);
      assert.equal(lib.pairsCount(new Uint8Array(0)), 0);
    });
  });
});
