// The shape of a conformance corpus: suites (one filter configuration each, one Envoy listener) and
// their cases (requests sent in order). Data only; the runner turns a suite into an Envoy bootstrap.

/** One request of a suite; cases of a suite run in order against the same filter instance. */
export interface CaseSpec {
  readonly name: string;
  readonly method?: string;
  /** Request path with query, as sent on the wire. */
  readonly path: string;
  /** Request headers; an array sends the header once per value, in order. */
  readonly headers?: Readonly<Record<string, string | readonly string[]>>;
  /** Body (sent with content-length). */
  readonly body?: string;
}

/** How the loopback quota server answers every lease call of a suite. */
export type QuotaMode = "grant" | "short" | "status-503" | "hang" | "garbage" | "refused";

export interface SuiteSpec {
  /** Unique, `[a-z0-9-]`; becomes the listener name and the rate-limit domain prefix. */
  readonly name: string;
  /** A filter of filters/build (`header-router`, `rate-limit`) or a generated fixture module (`fixture:<name>`). */
  readonly module: string;
  /** Root id (default: the module name). */
  readonly rootId?: string;
  /** Plugin configuration: an object is JSON-encoded, a string is sent as is. */
  readonly configuration: unknown;
  /** Envoy's (deprecated) `fail_open`; default fail closed. */
  readonly failOpen?: boolean;
  /** Envoy 1.40's `failure_policy` (the successor of fail_open). */
  readonly failurePolicy?: "FAIL_OPEN" | "FAIL_CLOSED" | "FAIL_RELOAD";
  /** Worker threads: 1 where the outcome depends on order, 4 where the case is about workers. */
  readonly concurrency?: 1 | 4;
  /** Quota server behaviour for the suite's lease calls (cluster `quota-<mode>`). */
  readonly quota?: QuotaMode;
  /**
   * Whether Envoy is expected to reject the configuration. Only used to give such a suite an Envoy
   * process of its own (a rejected listener stops the whole bootstrap); the outcome is still compared.
   */
  readonly expectRejected?: boolean;
  readonly cases: readonly CaseSpec[];
}

/** Upstream clusters every bootstrap defines; header-router routes named like these reach them. */
export const UPSTREAM_LABELS = ["v1", "v2", "v3", "canary", "default"] as const;
export const QUOTA_MODES: readonly QuotaMode[] = ["grant", "short", "status-503", "hang", "garbage", "refused"];

/** Cases a suite contributes to the count: a rejected configuration is one case. */
export function caseCount(suite: SuiteSpec): number {
  return suite.expectRejected ? Math.max(1, suite.cases.length) : suite.cases.length;
}
