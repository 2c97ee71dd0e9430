// The conformance corpus: every suite, in the order they run (stand-in and Envoy alike).
import type { SuiteSpec } from "../../../tools/conformance/corpus.js";
import { failureSuites } from "./failures.js";
import { headerRouterInvalidSuites, headerRouterSuites } from "./header-router.js";
import { rateLimitInvalidSuites, rateLimitLeaseSuites, rateLimitSuites } from "./rate-limit.js";

export const CORPUS: readonly SuiteSpec[] = [
  ...headerRouterSuites,
  ...rateLimitSuites,
  ...rateLimitLeaseSuites,
  ...failureSuites,
  ...headerRouterInvalidSuites,
  ...rateLimitInvalidSuites,
];
