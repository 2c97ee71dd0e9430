// The rate-limit plugin configuration documented in docs/plugin-configs.md, shared by the suites
// that check the filter (stand-in) and its parser (loader) accept it.
export const DOCUMENTED_EXAMPLE = {
  domain: "edge", enforcement: "enforce", failureMode: "allow", responseHeaders: true,
  quota: { cluster: "meshward-quota", authority: "meshward-authz", timeoutMs: 200 },
  limits: [
    { name: "per-ip", key: [{ source: "remote_address" }], capacity: 100, refillPerSecond: 50 },
    { name: "per-user", match: { path: { prefix: "/api/" } }, key: [{ header: "x-user-id" }],
      capacity: 1000, refillPerSecond: 100, global: { lease: 20 } }],
  maxKeysPerLimit: 65536,
};
