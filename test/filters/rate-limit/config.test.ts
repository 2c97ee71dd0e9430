// Invalid rate-limit plugin configurations: Envoy (the stand-in) refuses the plugin because
// onConfigure returns false, and the critical log line names the field and the problem.
import { strict as assert } from "node:assert";
import { ManualClock, PluginLoadError, StandIn } from "../../../tools/standin/index.js";
import { WASM, loadRateLimit, type Json } from "./harness.js";
import { DOCUMENTED_EXAMPLE } from "./example-config.js";

const limit = (extra: Json = {}): Json => ({ name: "per-ip", key: [{ source: "remote_address" }], capacity: 10, refillPerSecond: 1, ...extra });
const base = (extra: Json = {}, limits: Json[] = [limit()]): Json => ({ domain: "edge", limits, ...extra });
const quota = { cluster: "meshward-quota", authority: "meshward-authz" };

const mistakes: Array<[string, Json | string, string]> = [
  ["malformed JSON", "{\"domain\": \"edge\",}", "(root): expected a string key at offset 18"],
  ["a missing domain", { limits: [limit()] }, "domain: required"],
  ["a domain with a space", base({ domain: "ed ge" }), "domain: use letters, digits, '.', '_' or '-' (at most 64)"],
  ["an unknown top-level key", base({ limit: 5 }), "limit: unknown key (allowed: domain, enforcement, failureMode, responseHeaders, quota, limits, maxKeysPerLimit)"],
  ["an unknown enforcement", base({ enforcement: "shadow" }), "enforcement: expected 'enforce' or 'dryRun'"],
  ["an unknown failure mode", base({ failureMode: "open" }), "failureMode: expected 'allow', 'deny' or 'local'"],
  ["responseHeaders as a string", base({ responseHeaders: "yes" }), "responseHeaders: expected a boolean, got a string"],
  ["maxKeysPerLimit 0", base({ maxKeysPerLimit: 0 }), "maxKeysPerLimit: must be between 1 and 1048576"],
  ["missing limits", { domain: "edge" }, "limits: required"],
  ["an empty limit list", base({}, []), "limits: must not be empty"],
  ["an unknown limit key", base({}, [limit({ burst: 5 })]), "limits[0].burst: unknown key (allowed: name, match, key, capacity, refillPerSecond, global)"],
  ["a missing limit name", base({}, [{ key: [{ constant: "x" }], capacity: 1, refillPerSecond: 1 }]), "limits[0].name: required"],
  ["a duplicate limit name", base({}, [limit(), limit()]), "limits[1].name: duplicate limit name 'per-ip'"],
  ["capacity 0", base({}, [limit({ capacity: 0 })]), "limits[0].capacity: must be between 1 and 1000000"],
  ["a fractional capacity", base({}, [limit({ capacity: 1.5 })]), "limits[0].capacity: expected an integer"],
  ["a negative refill", base({}, [limit({ refillPerSecond: -1 })]), "limits[0].refillPerSecond: must be between 0 and 1000000"],
  ["a refill finer than a millitoken", base({}, [limit({ refillPerSecond: 0.0005 })]), "limits[0].refillPerSecond: at most 3 decimal places"],
  ["an empty key", base({}, [limit({ key: [] })]), "limits[0].key: must not be empty"],
  ["an unknown key source", base({}, [limit({ key: [{ source: "ip" }] })]), "limits[0].key[0].source: expected 'remote_address' or 'path'"],
  ["two descriptors in one key part", base({}, [limit({ key: [{ header: "x-a", cookie: "b" }] })]), "limits[0].key[0]: 'header' and 'cookie' are mutually exclusive"],
  ["an invalid header name", base({}, [limit({ key: [{ header: "x user" }] })]), "limits[0].key[0].header: not a valid header name"],
  ["a path match without a leading slash", base({}, [limit({ match: { path: { prefix: "api/" } } })]), "limits[0].match.path.prefix: must start with '/'"],
  ["a global limit without quota", base({}, [limit({ global: { lease: 5 } })]), "quota: required when a limit has 'global'"],
  ["lease 0", base({ quota }, [limit({ global: { lease: 0 } })]), "limits[0].global.lease: must be between 1 and 1000000"],
  ["minLease above lease", base({ quota }, [limit({ global: { lease: 5, minLease: 6 } })]), "limits[0].global.minLease: must not exceed lease (5)"],
  ["a quota without cluster", base({ quota: { authority: "a" } }, [limit({ global: { lease: 5 } })]), "quota.cluster: required"],
  ["a quota timeout of 0", base({ quota: { ...quota, timeoutMs: 0 } }, [limit({ global: { lease: 5 } })]), "quota.timeoutMs: must be between 1 and 60000"],
];

describe("rate-limit filter: invalid configuration is refused with the field named", function () {
  this.timeout(30_000);

  for (const [what, configuration, message] of mistakes) {
    it(`refuses ${what}: "${message}"`, async () => {
      const host = new StandIn({ clock: new ManualClock(), logLevel: "info" });
      await assert.rejects(
        host.loadPlugin({ wasm: WASM, rootId: "rate-limit", vmId: "rl", workers: 1, configuration }),
        (err: unknown) => err instanceof PluginLoadError && err.code === "ERR_WASM_START",
      );
      const lines = host.logsMatching("rate-limit: invalid configuration: ");
      assert.ok(lines.length > 0, "no critical log line");
      assert.equal(lines[0]!.level, "critical");
      assert.equal(lines[0]!.message, `rate-limit: invalid configuration: ${message}`);
    });
  }

  it("accepts the documented example configuration (docs/plugin-configs.md)", async () => {
    const { host } = await loadRateLimit(DOCUMENTED_EXAMPLE, { clusters: { "meshward-quota": { manual: true } } });
    assert.equal(host.logsMatching("rate-limit: configured 2 limits for domain 'edge' (enforce)").length > 0, true);
  });
});
