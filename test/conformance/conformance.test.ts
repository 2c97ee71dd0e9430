// The stand-in agrees with Envoy: every case of the corpus (test/conformance/corpus) runs through the
// stand-in and a real Envoy 1.40 from the same bootstrap; what the upstream and the client receive must
// be the same (ignored headers: tools/conformance/runner.ts, docs/conformance.md).
import { strict as assert } from "node:assert";
import { requireEnvoy } from "../../tools/envoy/harness.js";
import { resolveEnvoy } from "../../tools/envoy/resolve.js";
import { caseCount } from "../../tools/conformance/corpus.js";
import { runCorpus, type CorpusResult } from "../../tools/conformance/runner.js";
import { CORPUS } from "./corpus/index.js";

describe("conformance: the stand-in agrees with a real Envoy", function () {
  this.timeout(180_000);
  let result: CorpusResult;

  before(async function () {
    const bin = requireEnvoy(this);
    result = await runCorpus(CORPUS, { bin });
    const agree = result.cases.filter((c) => c.agree).length;
    console.log(`      conformance: ${agree}/${result.cases.length} cases agree with Envoy ${resolveEnvoy().version} (stand-in ${result.ms.standIn} ms, Envoy ${result.ms.envoy} ms)`);
  });

  it("has at least 200 cases over both filters and the failure modules", function () {
    assert.equal(result.cases.length, CORPUS.reduce((n, s) => n + caseCount(s), 0));
    assert.ok(result.cases.length >= 200, `${result.cases.length} cases`);
    const per = (prefix: string) => result.cases.filter((c) => c.suite.startsWith(prefix)).length;
    assert.ok(per("hr-") >= 80 && per("rl-") >= 80 && per("fx-") >= 10, `hr ${per("hr-")}, rl ${per("rl-")}, fx ${per("fx-")}`);
  });

  it("every case agrees: upstream request, status, response headers and body, or the rejection", function () {
    const bad = result.cases.filter((c) => !c.agree);
    assert.deepEqual(bad.map((c) => `${c.suite} / ${c.case}: ${c.diff}`), []);
  });

  it("the corpus exercises what it claims: routes, 429s, 503s, rejections, pass-through", function () {
    const statuses = new Map<string, number>();
    const labels = new Set<string>();
    let rejected = 0;
    for (const c of result.cases) {
      if (c.envoy === "rejected") {
        rejected++;
        continue;
      }
      statuses.set(String(c.envoy.status), (statuses.get(String(c.envoy.status)) ?? 0) + 1);
      if (c.envoy.upstream) labels.add(c.envoy.upstream.label);
    }
    assert.deepEqual([...labels].sort(), ["canary", "default", "v1", "v2", "v3"]);
    assert.ok((statuses.get("429") ?? 0) >= 20, `429s: ${statuses.get("429")}`);
    assert.ok((statuses.get("503") ?? 0) >= 15, `503s: ${statuses.get("503")}`);
    assert.ok(rejected >= 30, `rejected: ${rejected}`);
  });

  it("Envoy logs the invalid plugin configuration as critical, naming the field", function () {
    const lines = result.envoyLog.get("hr-bad-route-header-type") ?? [];
    assert.ok(lines.some((l) => /\[critical\]\[wasm\].*header-router: invalid configuration: routeHeader: expected a string, got a number/.test(l)), lines.join("\n"));
    const rl = result.envoyLog.get("rl-bad-key-source") ?? [];
    assert.ok(rl.some((l) => /\[critical\]\[wasm\].*rate-limit: invalid configuration: limits\[0\]\.key\[0\]\.source/.test(l)), rl.join("\n"));
  });
});
