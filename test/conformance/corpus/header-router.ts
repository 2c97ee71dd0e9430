// header-router scenarios: routing by header, cookie, query, path (exact, prefix, glob) and method,
// sticky splits across workers, request header edits, and configurations Envoy must refuse.
import type { CaseSpec, SuiteSpec } from "../../../tools/conformance/corpus.js";

const get = (name: string, path: string, headers?: Record<string, string | string[]>, method?: string): CaseSpec => ({ name, path, ...(headers ? { headers } : {}), ...(method ? { method } : {}) });

const MATCHING = {
  routeHeader: "x-route",
  rules: [
    { name: "tier-beta", match: { headers: [{ name: "x-user-tier", exact: "beta" }] }, route: "v2" },
    { name: "canary-cookie", match: { cookies: [{ name: "canary", present: true }] }, route: "canary" },
    { name: "query-v3", match: { query: [{ name: "v", exact: "3" }] }, route: "v3" },
    { name: "reviews-glob", match: { path: { glob: "/api/*/reviews/**" } }, route: "v2" },
    { name: "admin-writes", match: { path: { prefix: "/admin/" }, methods: ["POST", "delete"] }, route: "v3" },
    { name: "health", match: { path: { exact: "/healthz" } }, route: "default" },
    { name: "agent-suffix", match: { headers: [{ name: "user-agent", suffix: "-bot" }] }, route: "canary" },
    { name: "lang-prefix", match: { headers: [{ name: "accept-language", prefix: "de" }] }, route: "v3" },
    { name: "trace-contains", match: { headers: [{ name: "x-trace", contains: "debug" }] }, route: "v2" },
    { name: "no-auth-beta", match: { path: { prefix: "/beta/" }, headers: [{ name: "authorization", absent: true }] }, route: "canary" },
    { name: "all-of", match: { path: { glob: "/shop/**" }, methods: ["GET"], query: [{ name: "currency", prefix: "EU" }], cookies: [{ name: "session", exact: "s1" }] }, route: "v3" },
  ],
  default: "v1",
  requestHeadersToAdd: [{ name: "x-routed-by", value: "meshward" }],
  requestHeadersToRemove: ["x-debug-route"],
};

const matchingCases: CaseSpec[] = [
  get("no rule: default v1", "/"),
  get("no rule with query", "/products?page=2"),
  get("header exact beta", "/x", { "x-user-tier": "beta" }),
  get("header exact is case-sensitive", "/x", { "x-user-tier": "Beta" }),
  get("header value with spaces", "/x", { "x-user-tier": " beta" }),
  get("cookie present", "/x", { cookie: "canary=1" }),
  get("cookie among others", "/x", { cookie: "a=1; canary=yes; b=2" }),
  get("cookie empty value is present", "/x", { cookie: "canary=" }),
  get("cookie name prefix is not the cookie", "/x", { cookie: "canaryx=1" }),
  get("cookie quoted value", "/x", { cookie: 'canary="q"' }),
  get("query exact", "/x?v=3"),
  get("query among others", "/x?a=1&v=3&b=2"),
  get("query first occurrence wins", "/x?v=2&v=3"),
  get("query percent-encoded value", "/x?v=%33"),
  get("query plus is a space", "/x?v=3+"),
  get("query name encoded", "/x?%76=3"),
  get("query without value", "/x?v"),
  get("glob one segment", "/api/books/reviews"),
  get("glob deep", "/api/books/reviews/1/2"),
  get("glob needs the single segment", "/api/reviews"),
  get("glob single segment is one", "/api/a/b/reviews"),
  get("glob ignores query", "/api/x/reviews?sort=asc"),
  get("glob trailing slash", "/api/x/reviews/"),
  get("glob double slash", "/api//reviews"),
  get("admin POST", "/admin/users", undefined, "POST"),
  get("admin DELETE (config lower-case)", "/admin/users/1", undefined, "DELETE"),
  get("admin GET not matched", "/admin/users"),
  get("admin PUT not matched", "/admin/users", undefined, "PUT"),
  get("admin prefix needs slash", "/adminx", undefined, "POST"),
  get("exact health", "/healthz"),
  get("exact health with query", "/healthz?full=1"),
  get("exact health longer path", "/healthz/live"),
  get("suffix bot", "/x", { "user-agent": "crawler-bot" }),
  get("suffix not at end", "/x", { "user-agent": "crawler-bot/2" }),
  get("prefix de", "/x", { "accept-language": "de-CH,de;q=0.9" }),
  get("prefix en", "/x", { "accept-language": "en-US" }),
  get("contains debug", "/x", { "x-trace": "on;debug;x" }),
  get("absent authorization", "/beta/feature"),
  get("present authorization", "/beta/feature", { authorization: "Bearer t" }),
  get("all-of: every condition", "/shop/cart?currency=EUR", { cookie: "session=s1" }),
  get("all-of: wrong method", "/shop/cart?currency=EUR", { cookie: "session=s1" }, "POST"),
  get("all-of: wrong cookie", "/shop/cart?currency=EUR", { cookie: "session=s2" }),
  get("all-of: glob ** matches the base", "/shop?currency=EUR", { cookie: "session=s1" }),
  get("first rule wins over later", "/api/a/reviews?v=3", { "x-user-tier": "beta" }),
  get("order: cookie before query", "/x?v=3", { cookie: "canary=1" }),
  get("client x-route is overwritten", "/", { "x-route": "v3" }),
  get("client x-route overwritten by rule", "/x?v=3", { "x-route": "canary" }),
  get("x-debug-route removed", "/", { "x-debug-route": "v2" }),
  get("x-routed-by replaced", "/", { "x-routed-by": "client" }),
  get("HEAD request", "/x", { "x-user-tier": "beta" }, "HEAD"),
  get("percent-encoded path", "/api/b%20c/reviews"),
  get("two cookie headers", "/x", { cookie: "a=1, canary=1" }),
  get("cookie header sent twice", "/x", { cookie: ["a=1", "canary=1"] }),
  get("header sent twice: first value decides", "/x", { "x-user-tier": ["gold", "beta"] }),
  get("header sent twice: beta first", "/x", { "x-user-tier": ["beta", "gold"] }),
  get("client x-route sent twice is replaced", "/", { "x-route": ["v2", "v3"] }),
  get("x-debug-route sent twice removed", "/", { "x-debug-route": ["a", "b"] }),
  get("upper-case header name on the wire", "/x", { "X-User-Tier": "beta" }),
  get("path with encoded slash", "/api/a%2Fb/reviews"),
  get("path with dot segments", "/api/../api/x/reviews"),
  get("path with double slash in glob", "/api/x//reviews"),
  get("path with fragment-like %23", "/healthz%23x"),
  get("OPTIONS on admin", "/admin/x", undefined, "OPTIONS"),
  get("long header value", "/x", { "x-trace": `${"a".repeat(4000)}debug` }),
  get("non-ASCII (latin1) header value", "/x", { "x-note": "caf\u00e9" }),
  get("query with empty name", "/x?=3&v=3"),
  get("query v=3 after fragment-like text", "/x?a=%26v%3D3"),
];

const STICKY = (stickyOn: object) => ({
  routeHeader: "x-route",
  rules: [{ name: "canary", match: { path: { prefix: "/" } }, split: { stickyOn, targets: [{ route: "v2", weight: 30 }, { route: "v1", weight: 70 }] } }],
});

const users = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj"];
const stickyHeaderCases: CaseSpec[] = [
  ...users.flatMap((u) => [get(`user ${u}`, "/r", { "x-user-id": u }), get(`user ${u} again`, "/r/2", { "x-user-id": u })]),
];
const stickyCookieCases: CaseSpec[] = users.slice(0, 8).flatMap((u) => [get(`uid ${u}`, "/c", { cookie: `uid=${u}` }), get(`uid ${u} with other cookies`, "/c", { cookie: `x=1; uid=${u}; y=2` })]);

export const headerRouterSuites: SuiteSpec[] = [
  { name: "hr-matching", module: "header-router", configuration: MATCHING, cases: matchingCases },
  {
    name: "hr-no-default",
    module: "header-router",
    configuration: { routeHeader: "x-route", rules: [{ name: "v2", match: { headers: [{ name: "x-v2", present: true }] }, route: "v2" }] },
    cases: [
      get("matched", "/", { "x-v2": "1" }),
      get("unmatched: no route header", "/"),
      get("unmatched: client route header removed", "/", { "x-route": "v3" }),
      get("matched with client route header", "/", { "x-v2": "", "x-route": "v3" }),
    ],
  },
  { name: "hr-sticky-header", module: "header-router", concurrency: 4, configuration: STICKY({ header: "x-user-id" }), cases: stickyHeaderCases },
  { name: "hr-sticky-cookie", module: "header-router", concurrency: 4, configuration: STICKY({ cookie: "uid" }), cases: stickyCookieCases },
  {
    name: "hr-split-whole",
    module: "header-router",
    concurrency: 4,
    configuration: { routeHeader: "x-route", rules: [{ name: "all", split: { targets: [{ route: "canary", weight: 5 }] } }], default: "v1" },
    cases: [get("single target split 1", "/"), get("single target split 2", "/a"), get("single target split 3", "/b"), get("single target split 4", "/c")],
  },
  {
    name: "hr-custom-header",
    module: "header-router",
    configuration: {
      routeHeader: "X-Backend",
      rules: [{ name: "by-authority", match: { headers: [{ name: ":authority", exact: "conformance.test" }, { name: ":method", exact: "PUT" }] }, route: "v2" }],
      default: "v3",
      requestHeadersToAdd: [{ name: "x-a", value: "1" }, { name: "x-b", value: "two words" }, { name: "x-empty", value: "" }],
      requestHeadersToRemove: ["x-secret", "X-Other", "cookie"],
    },
    cases: [
      get("authority + method rule", "/", undefined, "PUT"),
      get("default v3", "/"),
      get("client x-backend overwritten", "/", { "x-backend": "v1" }),
      get("removals", "/", { "x-secret": "s", "x-other": "o", cookie: "a=b", "x-keep": "k" }),
      get("adds replace client values", "/", { "x-a": "client", "x-b": "client" }),
      get("x-route is not the route header here", "/", { "x-route": "v1" }),
    ],
  },
];

/** Configurations the filter must refuse (critical log line, on_configure false). */
const INVALID: [string, unknown][] = [
  ["hr-bad-json", "{ not json"],
  ["hr-bad-empty", ""],
  ["hr-bad-route-header-type", { routeHeader: 5 }],
  ["hr-bad-route-header-missing", { rules: [] }],
  ["hr-bad-unknown-key", { routeHeader: "x-route", colour: "red" }],
  ["hr-bad-route-and-split", { routeHeader: "x-route", rules: [{ name: "r", route: "v1", split: { targets: [{ route: "v2", weight: 1 }] } }] }],
  ["hr-bad-empty-targets", { routeHeader: "x-route", rules: [{ name: "r", split: { targets: [] } }] }],
  ["hr-bad-weight-zero", { routeHeader: "x-route", rules: [{ name: "r", split: { targets: [{ route: "v1", weight: 0 }] } }] }],
  ["hr-bad-duplicate-rule", { routeHeader: "x-route", rules: [{ name: "r", route: "v1" }, { name: "r", route: "v2" }] }],
  ["hr-bad-prefix-slash", { routeHeader: "x-route", rules: [{ name: "r", match: { path: { prefix: "api" } }, route: "v1" }] }],
  ["hr-bad-method", { routeHeader: "x-route", rules: [{ name: "r", match: { methods: ["GE T"] }, route: "v1" }] }],
  ["hr-bad-add-route-header", { routeHeader: "x-route", requestHeadersToAdd: [{ name: "x-route", value: "v2" }] }],
  ["hr-bad-header-name", { routeHeader: "bad header" }],
  ["hr-bad-two-operators", { routeHeader: "x-route", rules: [{ name: "r", match: { headers: [{ name: "a", exact: "1", prefix: "2" }] }, route: "v1" }] }],
];

export const headerRouterInvalidSuites: SuiteSpec[] = [
  ...INVALID.map(([name, configuration]): SuiteSpec => ({ name, module: "header-router", configuration, expectRejected: true, cases: [] })),
  // Envoy 1.40 refuses a plugin that fails on_configure at startup even with fail_open.
  { name: "hr-bad-fail-open", module: "header-router", configuration: { routeHeader: 5 }, failOpen: true, expectRejected: true, cases: [] },
];
