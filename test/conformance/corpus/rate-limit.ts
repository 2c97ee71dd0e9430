// rate-limit scenarios: local buckets keyed by address, header, cookie, path and constant; matchers;
// dry run; response headers; buckets shared by 4 workers; global limits with leases from a loopback
// quota server that grants, grants short, fails (503, garbage, timeout, refused), under each
// failureMode; and configurations Envoy must refuse.
import type { CaseSpec, QuotaMode, SuiteSpec } from "../../../tools/conformance/corpus.js";

const req = (name: string, path: string, headers?: Record<string, string>, method?: string): CaseSpec => ({ name, path, ...(headers ? { headers } : {}), ...(method ? { method } : {}) });
const times = (n: number, f: (i: number) => CaseSpec): CaseSpec[] => Array.from({ length: n }, (_, i) => f(i));

const limit = (name: string, key: object[], capacity: number, extra: object = {}) => ({ name, key, capacity, refillPerSecond: 0, ...extra });

export const rateLimitSuites: SuiteSpec[] = [
  {
    name: "rl-ip",
    module: "rate-limit",
    configuration: { domain: "rl-ip", limits: [limit("per-ip", [{ source: "remote_address" }], 3)] },
    cases: times(6, (i) => req(`per-ip request ${i + 1} of capacity 3`, `/p/${i}`)),
  },
  {
    name: "rl-ip-refill",
    module: "rate-limit",
    // 0.5 token/s: Retry-After 2 and a RateLimit-Policy window.
    configuration: { domain: "rl-ip-refill", responseHeaders: true, limits: [{ name: "slow", key: [{ source: "remote_address" }], capacity: 2, refillPerSecond: 0.5 }] },
    cases: times(4, (i) => req(`refilling bucket request ${i + 1}`, "/r")),
  },
  {
    name: "rl-header",
    module: "rate-limit",
    configuration: { domain: "rl-header", limits: [limit("per-key", [{ header: "x-api-key" }], 2)] },
    cases: [
      req("key a 1", "/", { "x-api-key": "a" }), req("key b 1", "/", { "x-api-key": "b" }), req("key a 2", "/", { "x-api-key": "a" }),
      req("key a 3 limited", "/", { "x-api-key": "a" }), req("key b 2", "/", { "x-api-key": "b" }), req("key b 3 limited", "/", { "x-api-key": "b" }),
      req("no key: limit skipped", "/"), req("no key again", "/"), req("empty key value", "/", { "x-api-key": "" }), req("empty key value again", "/", { "x-api-key": "" }),
      req("empty key value third", "/", { "x-api-key": "" }), req("key with spaces trimmed by the codec", "/", { "x-api-key": " a " }),
    ],
  },
  {
    name: "rl-cookie-path",
    module: "rate-limit",
    configuration: { domain: "rl-cookie-path", limits: [limit("per-session-path", [{ cookie: "sid" }, { source: "path" }], 1)] },
    cases: [
      req("s1 /a", "/a", { cookie: "sid=s1" }), req("s1 /a limited", "/a?x=1", { cookie: "sid=s1" }), req("s1 /b", "/b", { cookie: "sid=s1" }),
      req("s2 /a", "/a", { cookie: "x=1; sid=s2" }), req("s2 /a limited", "/a", { cookie: "sid=s2" }), req("no cookie skipped", "/a"), req("no cookie skipped again", "/a"),
    ],
  },
  {
    name: "rl-match",
    module: "rate-limit",
    configuration: {
      domain: "rl-match",
      limits: [
        limit("writes", [{ constant: "w" }], 1, { match: { path: { prefix: "/api/" }, methods: ["POST", "PUT"] } }),
        limit("reports", [{ constant: "r" }], 2, { match: { path: { glob: "/reports/*" }, query: [{ name: "format", exact: "pdf" }] } }),
      ],
    },
    cases: [
      req("GET not matched", "/api/x"), req("GET not matched again", "/api/x"), req("POST 1", "/api/x", undefined, "POST"),
      req("PUT limited (shared constant key)", "/api/y", undefined, "PUT"), req("POST outside prefix", "/other", undefined, "POST"),
      req("pdf 1", "/reports/q1?format=pdf"), req("pdf 2", "/reports/q2?format=pdf"), req("pdf 3 limited", "/reports/q3?format=pdf"),
      req("csv not matched", "/reports/q3?format=csv"), req("glob is one segment", "/reports/a/b?format=pdf"),
    ],
  },
  {
    name: "rl-two-limits",
    module: "rate-limit",
    configuration: { domain: "rl-two-limits", responseHeaders: true, limits: [limit("outer", [{ constant: "o" }], 4), limit("inner", [{ header: "x-user" }], 2)] },
    cases: [
      req("u1 1", "/", { "x-user": "u1" }), req("u1 2", "/", { "x-user": "u1" }), req("u1 3 inner limited", "/", { "x-user": "u1" }),
      req("u2 1 (outer spent 4th)", "/", { "x-user": "u2" }), req("u2 2 outer limited", "/", { "x-user": "u2" }), req("anonymous outer limited", "/"),
    ],
  },
  {
    name: "rl-methods-bodies",
    module: "rate-limit",
    configuration: { domain: "rl-methods-bodies", limits: [limit("one", [{ constant: "c" }], 1)] },
    cases: [
      { name: "POST with body passes", path: "/b", method: "POST", body: "payload" },
      { name: "POST with body limited", path: "/b", method: "POST", body: "payload" },
      req("HEAD limited: no body on the wire", "/h", undefined, "HEAD"),
      req("DELETE limited", "/d", undefined, "DELETE"),
      req("limited with query and fragment-like text", "/q?x=%23"),
    ],
  },
  {
    name: "rl-dry-run",
    module: "rate-limit",
    configuration: { domain: "rl-dry-run", enforcement: "dryRun", limits: [limit("dry", [{ constant: "d" }], 1)] },
    cases: times(4, (i) => req(`dry run request ${i + 1}`, "/")),
  },
  {
    name: "rl-headers-near-limit",
    module: "rate-limit",
    configuration: { domain: "rl-headers-near-limit", responseHeaders: true, limits: [{ name: "near", key: [{ constant: "n" }], capacity: 20, refillPerSecond: 0 }] },
    cases: times(22, (i) => req(`near-limit headers ${i + 1} of 20`, "/")),
  },
  {
    name: "rl-workers",
    module: "rate-limit",
    concurrency: 4,
    configuration: { domain: "rl-workers", limits: [limit("shared", [{ constant: "all" }], 5)] },
    cases: times(12, (i) => req(`4 workers share one bucket: request ${i + 1} of capacity 5`, `/w/${i}`)),
  },
  {
    name: "rl-workers-ip",
    module: "rate-limit",
    concurrency: 4,
    configuration: { domain: "rl-workers-ip", responseHeaders: true, limits: [limit("ip", [{ source: "remote_address" }], 3)] },
    cases: times(6, (i) => req(`4 workers, per-ip ${i + 1} of 3`, "/")),
  },
];

// A quota server that answers gets 2 s (a cold first lease call can take > 100 ms); one that never
// answers gets 100 ms, so its cases stay short.
const QUOTA = (mode: QuotaMode, timeoutMs = mode === "hang" ? 100 : 2000) => ({ cluster: `quota-${mode}`, authority: "meshward-quota", timeoutMs });
const global = (name: string, mode: QuotaMode, failureMode: "allow" | "deny" | "local", capacity = 2): SuiteSpec => ({
  name,
  module: "rate-limit",
  quota: mode,
  configuration: {
    domain: name,
    failureMode,
    quota: QUOTA(mode),
    limits: [{ name: "global-user", key: [{ header: "x-user" }], capacity, refillPerSecond: 0, global: { lease: 4, minLease: 1 } }],
  },
  cases: [
    ...times(4, (i) => req(`${mode} / ${failureMode}: user a ${i + 1}`, "/g", { "x-user": "a" })),
    req(`${mode} / ${failureMode}: user b`, "/g", { "x-user": "b" }),
    req(`${mode} / ${failureMode}: no user (skipped)`, "/g"),
  ],
});

export const rateLimitLeaseSuites: SuiteSpec[] = [
  global("rl-lease-grant", "grant", "deny"),
  global("rl-lease-short", "short", "deny"),
  global("rl-lease-503-allow", "status-503", "allow"),
  global("rl-lease-503-deny", "status-503", "deny"),
  global("rl-lease-503-local", "status-503", "local"),
  global("rl-lease-garbage-allow", "garbage", "allow"),
  global("rl-lease-garbage-deny", "garbage", "deny"),
  global("rl-lease-garbage-local", "garbage", "local"),
  global("rl-lease-hang-allow", "hang", "allow"),
  global("rl-lease-hang-deny", "hang", "deny"),
  global("rl-lease-hang-local", "hang", "local"),
  global("rl-lease-refused-allow", "refused", "allow"),
  global("rl-lease-refused-deny", "refused", "deny"),
  global("rl-lease-refused-local", "refused", "local"),
];

const INVALID: [string, unknown][] = [
  ["rl-bad-no-domain", { limits: [] }],
  ["rl-bad-domain-chars", { domain: "a b", limits: [] }],
  ["rl-bad-capacity-zero", { domain: "d", limits: [limit("l", [{ constant: "c" }], 0)] }],
  ["rl-bad-capacity-float", { domain: "d", limits: [limit("l", [{ constant: "c" }], 1.5)] }],
  ["rl-bad-refill-precision", { domain: "d", limits: [{ name: "l", key: [{ constant: "c" }], capacity: 1, refillPerSecond: 0.0001 }] }],
  ["rl-bad-key-source", { domain: "d", limits: [limit("l", [{ source: "client" }], 1)] }],
  ["rl-bad-key-empty", { domain: "d", limits: [limit("l", [], 1)] }],
  ["rl-bad-dup-limit", { domain: "d", limits: [limit("l", [{ constant: "c" }], 1), limit("l", [{ constant: "c" }], 1)] }],
  ["rl-bad-global-no-quota", { domain: "d", limits: [limit("l", [{ constant: "c" }], 1, { global: { lease: 2 } })] }],
  ["rl-bad-min-lease", { domain: "d", quota: QUOTA("grant"), limits: [limit("l", [{ constant: "c" }], 1, { global: { lease: 2, minLease: 3 } })] }],
  ["rl-bad-failure-mode", { domain: "d", failureMode: "open", limits: [] }],
  ["rl-bad-enforcement", { domain: "d", enforcement: "off", limits: [] }],
  ["rl-bad-max-keys", { domain: "d", maxKeysPerLimit: 0, limits: [] }],
  ["rl-bad-unknown-key", { domain: "d", limits: [], extra: true }],
  ["rl-bad-json", "[1,2"],
];

export const rateLimitInvalidSuites: SuiteSpec[] = INVALID.map(([name, configuration]): SuiteSpec => ({ name, module: "rate-limit", configuration, expectRejected: true, cases: [] }));
