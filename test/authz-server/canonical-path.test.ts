// One path rule for authz-server and header-router: the same table of paths through both (the
// TypeScript rule and the filter's AssemblyScript matcher via the loader), and through a Check.
import assert from "node:assert/strict";
import { nonCanonicalPath } from "../../authz-server/src/attributes/canonical-path.js";
import { loadAsLib, type AsLib } from "../../tools/testing/as-lib.js";

/** [path, canonical] — the confusion cases of issue 12 and what was tried beyond them. */
export const PATH_CASES: readonly [string, boolean][] = [
  ["/", true],
  ["/api/orders/1", true],
  ["/api/orders/", true],
  ["/files/a%20b", true],
  ["/files/%E2%82%AC", true],
  ["/search/%3Fq", true],
  ["/public/../admin/users", false],
  ["/public/%2e%2e/admin/users", false],
  ["/public/%2E%2E/admin/users", false],
  ["/public/.%2e/admin/users", false],
  ["/public/..%2Fadmin/users", false],
  ["/public/..%2fadmin/users", false],
  ["/public/..%5cadmin/users", false],
  ["/public/..\\admin/users", false],
  ["//admin/users", false],
  ["/public//admin", false],
  ["/./admin/users", false],
  ["/admin/.", false],
  ["/admin;x/users", false],
  ["/public/..;/admin/users", false],
  ["/%61dmin/users", false],
  ["/admin%2Fusers", false],
  ["/admin%2fusers", false],
  ["/admin%252Fusers", false],
  ["/admin%3Busers", false],
  ["/admin%00", false],
  ["/admin%zz", false],
  ["/admin%2", false],
  ["/a\tb", false],
  ["admin/users", false],
  ["/...", true],
  ["/files/%C3%A9t%C3%A9", true],
  ["/files/%F0%9F%98%80", true],
  ["/public/..%c0%afadmin/users", false],
  ["/public/%c0%ae%c0%ae/admin", false],
  ["/files/%E2%82", false],
  ["/files/%ED%A0%80", false],
  ["/files/%F4%90%80%80", false],
  ["/files/%80", false],
  ["/files/%E2%82%AC%", false],
  ["/.well-known/openid-configuration", true],
];

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
