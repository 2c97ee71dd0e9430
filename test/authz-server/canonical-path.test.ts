// One path rule for authz-server and header-router: the same table of paths through both (the
// TypeScript rule and the filter's AssemblyScript matcher via the loader), and through a Check.
import assert from "node:assert/strict";
import { nonCanonicalPath } from "../../authz-server/src/attributes/canonical-path.js";
import { loadAsLib, type AsLib } from "../../tools/testing/as-lib.js";
import { PATH_CASES } from "../fixtures/canonical-paths.js";

describe("canonical path rule (authz-server and header-router)", function () {
  this.timeout(120_000);
  let lib: AsLib;
  before(async () => {
    lib = await loadAsLib();
  });

  for (const [path, canonical] of PATH_CASES) {
    it(`${JSON.stringify(path)} is ${canonical ? "canonical" : "not canonical"} for authz-server and for header-router`, () => {
      const why = nonCanonicalPath(path);
      assert.equal(why === undefined, canonical, `authz-server: ${why ?? "canonical"}`);
      // header-router: a non-canonical path matches no path matcher, not even prefix "/" or glob "/**".
      assert.equal(lib.pathMatches("prefix", "/", path), canonical);
      assert.equal(lib.pathMatches("glob", "/**", path), canonical);
    });
  }

  it("names the problem", () => {
    assert.equal(nonCanonicalPath("/public/../admin"), 'dot segment ".."');
    assert.equal(nonCanonicalPath("/%61dmin"), "escaped unreserved character (%61)");
    assert.equal(nonCanonicalPath("/admin%2Fusers"), "escaped delimiter (%2F)");
    assert.equal(nonCanonicalPath("/admin;x/users"), "path parameter (;)");
    assert.equal(nonCanonicalPath("//admin"), "empty segment (//)");
  });

  it("accepts a 100k-character canonical path and finds a dot segment at its end", () => {
    const long = "/" + "a/".repeat(50_000) + "b";
    assert.equal(nonCanonicalPath(long), undefined);
    assert.equal(nonCanonicalPath(long + "/.."), 'dot segment ".."');
  });
});
