// The verified-token cache: bounded, keyed by digest, expiring, and keeping tokens in use over idle ones.
import assert from "node:assert/strict";
import { TokenCache } from "../../../authz-server/src/credentials/token-cache.js";
import type { UserIdentity } from "../../../authz-server/src/model.js";

const user = (subject: string) => ({ kind: "user", provider: "p", providerType: "jwt", subject, claims: {}, roles: [], scopes: [] }) as unknown as UserIdentity;

describe("credentials/token-cache", () => {
  it("keys by a SHA-256 digest, never by the token text", () => {
    const key = TokenCache.keyOf("header.payload.signature");
    assert.equal(Buffer.from(key, "base64").length, 32);
    assert.ok(!key.includes("payload"));
    assert.notEqual(TokenCache.keyOf("a.b.c"), TokenCache.keyOf("a.b.d"));
  });

  it("stays within maxEntries and keeps a token that is in use while idle ones are evicted", () => {
    const c = new TokenCache(100);
    c.set("hot", user("hot"), Infinity);
    for (let i = 0; i < 10_000; i++) {
      c.set(`k${i}`, user(`u${i}`), Infinity);
      if (i % 10 === 0) assert.equal(c.get("hot", 0)?.subject, "hot", `hot entry lost after ${i} insertions`);
      assert.ok(c.size <= 100);
    }
    assert.equal(c.get("k0", 0), undefined);
    assert.equal(c.get("k9999", 0)?.subject, "u9999");
  });

  it("expires an entry at its expiry time", () => {
    const c = new TokenCache(10);
    c.set("k", user("u"), 1000);
    assert.equal(c.get("k", 999)?.subject, "u");
    assert.equal(c.get("k", 1000), undefined);
    assert.equal(c.size, 0);
  });
});
