// Failure scenarios: a module that traps on every request (fail closed / fail open), modules that fail
// to configure or to link (Envoy's verdict on the plugin), and a pass-through control.
import type { CaseSpec, SuiteSpec } from "../../../tools/conformance/corpus.js";

const three = (prefix: string): CaseSpec[] => [
  { name: `${prefix} first request`, path: "/a" },
  { name: `${prefix} second request`, path: "/b", headers: { "x-route": "v2" } },
  { name: `${prefix} POST with body`, path: "/c", method: "POST", body: "hello" },
];

export const failureSuites: SuiteSpec[] = [
  { name: "fx-passthrough", module: "fixture:passthrough", configuration: "", cases: three("passthrough") },
  { name: "fx-trap-closed", module: "fixture:trap-request", configuration: "", cases: three("trap, fail closed") },
  { name: "fx-trap-open", module: "fixture:trap-request", configuration: "", failOpen: true, cases: three("trap, fail open") },
  { name: "fx-trap-closed-workers", module: "fixture:trap-request", configuration: "", concurrency: 4, cases: [...three("trap on 4 workers, fail closed"), ...three("trap on 4 workers, fail closed, again")] },
  { name: "fx-trap-open-workers", module: "fixture:trap-request", configuration: "", failOpen: true, concurrency: 4, cases: [...three("trap on 4 workers, fail open"), ...three("trap on 4 workers, fail open, again")] },
  { name: "fx-trap-policy-open", module: "fixture:trap-request", configuration: "", failurePolicy: "FAIL_OPEN", cases: three("trap, failure_policy FAIL_OPEN") },
  { name: "fx-trap-policy-closed", module: "fixture:trap-request", configuration: "", failurePolicy: "FAIL_CLOSED", cases: three("trap, failure_policy FAIL_CLOSED") },
  { name: "fx-trap-configure", module: "fixture:trap-configure", configuration: "", expectRejected: true, cases: [] },
  { name: "fx-trap-configure-open", module: "fixture:trap-configure", configuration: "", failOpen: true, expectRejected: true, cases: [] },
  { name: "fx-configure-false", module: "fixture:configure-false", configuration: "", expectRejected: true, cases: [] },
  { name: "fx-configure-false-open", module: "fixture:configure-false", configuration: "", failOpen: true, expectRejected: true, cases: [] },
  { name: "fx-configure-false-policy-open", module: "fixture:configure-false", configuration: "", failurePolicy: "FAIL_OPEN", expectRejected: true, cases: [] },
  { name: "fx-link-missing", module: "fixture:link-missing", configuration: "", expectRejected: true, cases: [] },
  { name: "fx-link-missing-open", module: "fixture:link-missing", configuration: "", failOpen: true, expectRejected: true, cases: [] },
];
