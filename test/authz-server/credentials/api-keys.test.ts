// API keys: digest lookup, header/query sources, keys files, and the hash-api-key command.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Registry } from "prom-client";
import { apiKeysPlugin, ApiKeyStore, createApiKeyVerifier, hashApiKey, loadApiKeysFile } from "../../../authz-server/src/credentials/api-keys.js";
import { hashApiKeyInput, parseArgs } from "../../../authz-server/src/cli/hash-api-key.js";
import { AuthzError } from "../../../authz-server/src/errors.js";
import { createLogger } from "../../../authz-server/src/observability/logger.js";
import { runPipeline } from "../../../authz-server/src/pipeline.js";
import { buildRuntime } from "../../../authz-server/src/policy-holder.js";
import { loadPolicyFile } from "../../../authz-server/src/policy/load-policy.js";
import { checkRequest } from "../../../tools/testing/authz-harness.js";
import { attributes } from "./fixtures/attributes.js";
import { systemClock } from "../../../authz-server/src/clock.js";

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
const ACME_KEY = "mk_live_0f3c2a9e7d5b41c8a6e2";
const GLOBEX_KEY = "mk_live_99aa77bb55cc33dd11ee";

describe("credentials/api-keys: keys stored as SHA-256 digests", () => {
  const store = new ApiKeyStore("partners", [
    { id: "acme", sha256: hashApiKey(ACME_KEY), roles: ["partner"] },
    { id: "globex", sha256: hashApiKey(GLOBEX_KEY) },
  ]);

  it("accepts a known key and returns its id as subject with the key's roles", () => {
    const user = store.lookup(ACME_KEY);
    assert.equal(user?.subject, "acme");
    assert.equal(user?.provider, "partners");
    assert.equal(user?.providerType, "apiKey");
    assert.deepEqual(user?.roles, ["partner"]);
    assert.deepEqual(store.lookup(GLOBEX_KEY)?.roles, []);
  });

  it("refuses unknown keys, near misses and case variants", () => {
    assert.equal(store.lookup("mk_live_0f3c2a9e7d5b41c8a6e3"), undefined);
    assert.equal(store.lookup(ACME_KEY.toUpperCase()), undefined);
    assert.equal(store.lookup(`${ACME_KEY} `), undefined);
    assert.equal(store.lookup(""), undefined);
  });

  it("compares digests of the presented key, never the presented value itself: sending a stored digest is refused", () => {
    assert.equal(store.lookup(hashApiKey(ACME_KEY)), undefined);
    assert.equal(store.lookup(Buffer.from(hashApiKey(ACME_KEY), "hex").toString("latin1")), undefined);
  });

  it("rejects a malformed or duplicate digest at construction", () => {
    assert.throws(() => new ApiKeyStore("p", [{ id: "x", sha256: "ABC" }]), /64 lower-case hex/);
    assert.throws(() => new ApiKeyStore("p", [{ id: "x", sha256: hashApiKey("k") }, { id: "y", sha256: hashApiKey("k") }]), /appears twice/);
  });

  it("reads the key from a header or a query parameter and answers invalid_api_key (401 class) for a wrong one", async () => {
    const registry = new Registry();
    const v = createApiKeyVerifier(store, [{ header: "x-api-key" }, { query: "api_key" }], registry);
    const fromHeader = v.extract(attributes({ headers: { "x-api-key": ACME_KEY } }));
    assert.deepEqual(fromHeader, { value: ACME_KEY, location: "header:x-api-key" });
    assert.equal((await v.verify(fromHeader!, attributes({}))).subject, "acme");
    const fromQuery = v.extract(attributes({ query: { api_key: GLOBEX_KEY } }));
    assert.equal(fromQuery?.location, "query:api_key");
    assert.equal((await v.verify(fromQuery!, attributes({}))).subject, "globex");
    assert.equal(v.extract(attributes({ headers: { authorization: "Bearer x" } })), undefined);
    await assert.rejects(v.verify({ value: "wrong", location: "header:x-api-key" }, attributes({})), (err: unknown) => err instanceof AuthzError && err.kind === "unauthenticated" && err.reason === "invalid_api_key" && !err.message.includes("wrong"));
    const text = await registry.metrics();
    assert.match(text, /meshward_api_key_checks_total\{provider="partners",result="valid"\} 2/);
    assert.match(text, /meshward_api_key_checks_total\{provider="partners",result="invalid"\} 1/);
  });
});

describe("credentials/api-keys: keys files (e.g. a mounted Kubernetes Secret)", () => {
  const dir = mkdtempSync(join(tmpdir(), "meshward-apikeys-"));

  it("loads a YAML list or a { keys: [...] } JSON object", () => {
    writeFileSync(join(dir, "list.yaml"), `- id: acme\n  sha256: "${hashApiKey(ACME_KEY)}"\n  roles: [partner]\n`);
    writeFileSync(join(dir, "obj.json"), JSON.stringify({ keys: [{ id: "globex", sha256: hashApiKey(GLOBEX_KEY) }] }));
    assert.deepEqual(loadApiKeysFile(join(dir, "list.yaml")), [{ id: "acme", sha256: hashApiKey(ACME_KEY), roles: ["partner"] }]);
    assert.deepEqual(loadApiKeysFile(join(dir, "obj.json")), [{ id: "globex", sha256: hashApiKey(GLOBEX_KEY) }]);
  });

  it("merges keysFile entries (relative to the policy file) with inline keys in the plugin", async () => {
    writeFileSync(join(dir, "mounted.yaml"), `- { id: globex, sha256: "${hashApiKey(GLOBEX_KEY)}", roles: [partner] }\n`);
    const ctx = { policy: { file: join(dir, "policy.yaml"), providers: { apiKeys: [{ name: "partners", from: [{ header: "x-api-key" }], keys: [{ id: "acme", sha256: hashApiKey(ACME_KEY) }], keysFile: "mounted.yaml" }] } }, registry: new Registry() };
    const [v] = apiKeysPlugin().build(ctx as never).verifiers!;
    assert.equal((await v!.verify({ value: GLOBEX_KEY, location: "header:x-api-key" }, attributes({}))).subject, "globex");
    assert.equal((await v!.verify({ value: ACME_KEY, location: "header:x-api-key" }, attributes({}))).subject, "acme");
  });

  it("serves keys from a policy file's keysFile alone (no inline keys), relative to the policy file, end to end", async () => {
    const sub = mkdtempSync(join(dir, "policy-"));
    writeFileSync(join(sub, "partner-keys.yaml"), `- { id: globex, sha256: "${hashApiKey(GLOBEX_KEY)}", roles: [partner] }\n`);
    const policyFile = join(sub, "policy.yaml");
    writeFileSync(
      policyFile,
      [
        "apiVersion: meshward.io/v1",
        "kind: AuthzPolicy",
        "spec:",
        "  providers:",
        "    apiKeys:",
        "      - { name: partners, from: [{ header: x-api-key }], keysFile: partner-keys.yaml }",
        "  roles: { partner: [\"orders:read\"] }",
        "  rules:",
        "    - { name: partners-read, match: { paths: [\"/api/**\"] }, require: { permissions: [\"orders:read\"] } }",
        "",
      ].join("\n"),
    );
    const runtime = buildRuntime(loadPolicyFile(policyFile), {
      clock: systemClock,
      registry: new Registry(),
      logger: createLogger("silent"),
      createKeySource: () => { throw new Error("no JWT providers here"); },
      credentialPlugins: [apiKeysPlugin()],
    });
    const deps = { clock: systemClock, newId: () => "id-1" };
    try {
      const ok = await runPipeline(checkRequest({ path: "/api/orders", headers: { "x-api-key": GLOBEX_KEY } }), runtime, deps);
      assert.equal(ok.decision.allowed, true, ok.decision.reason);
      assert.equal(ok.decision.identity.user?.subject, "globex");
      assert.deepEqual(ok.decision.identity.user?.roles, ["partner"]);
      const wrong = await runPipeline(checkRequest({ path: "/api/orders", headers: { "x-api-key": ACME_KEY } }), runtime, deps);
      assert.equal(wrong.decision.allowed, false);
      assert.equal(wrong.decision.reason, "invalid_api_key");
      assert.equal(wrong.decision.httpStatus, 401);
    } finally {
      runtime.credentials.close();
    }
  });

  it("names the file, the path and the problem for a bad entry", () => {
    const f = join(dir, "bad.yaml");
    writeFileSync(f, `keys:\n  - { id: a, sha256: "${"0".repeat(64)}" }\n  - { id: b, sha256: "NOTHEX" }\n`);
    assert.throws(() => loadApiKeysFile(f), (err: Error) => err.message === `${f}: keys[1].sha256: must be 64 lower-case hex digits (npm run hash-api-key)`);
    writeFileSync(f, `- { id: a, sha256: "${"0".repeat(64)}", role: [x] }\n`);
    assert.throws(() => loadApiKeysFile(f), (err: Error) => err.message === `${f}: [0].role: unknown key`);
    assert.throws(() => loadApiKeysFile(join(dir, "missing.yaml")), /missing\.yaml: cannot read api keys file: ENOENT/);
  });
});

describe("cli/hash-api-key", () => {
  it("hashes the key without its trailing newline and prints a policy snippet", () => {
    const r = hashApiKeyInput(`${ACME_KEY}\n`, { id: "acme", roles: ["partner", "reader"] });
    assert.equal(r.sha256, hashApiKey(ACME_KEY));
    assert.equal(r.snippet, `keys:\n  - { id: acme, sha256: "${hashApiKey(ACME_KEY)}", roles: [partner, reader] }`);
    assert.throws(() => hashApiKeyInput("\n"), /no key on stdin/);
    assert.throws(() => hashApiKeyInput("a\nb"), /line break/);
    assert.throws(() => parseArgs(["--bogus"]), /unknown argument --bogus/);
  });

  it("runs as `npm run hash-api-key`: key on stdin, digest on stdout, never the key", function () {
    this.timeout(20_000);
    const r = spawnSync(process.execPath, ["--import", "tsx", "authz-server/src/cli/hash-api-key.ts", "--id", "acme"], { cwd: repoRoot, input: `${ACME_KEY}\n`, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.split("\n")[0], hashApiKey(ACME_KEY));
    assert.match(r.stdout, /- \{ id: acme, sha256: "[0-9a-f]{64}" \}/);
    assert.ok(!r.stdout.includes(ACME_KEY));
  });
});
