// One configuration problem found offline: the file, the path inside it and what is wrong.
// Every checker in this folder returns a list of these; the CLI prints them one per line.
import type { ProblemCode } from "./problem-codes.js";

export interface Problem {
  readonly file: string;
  /** Dotted path inside the document, e.g. `spec.rules[2].require.roles[0]`; "" for the whole file. */
  readonly path: string;
  readonly message: string;
  /** Stable code, e.g. `ERR_ENVOY_UNKNOWN_FIELD`. */
  readonly code: ProblemCode;
  /** Warnings are printed but do not fail check-config. Absent = error. */
  readonly severity?: "warning";
}

export function formatProblem(p: Problem): string {
  const message = p.severity === "warning" ? `warning: ${p.message}` : p.message;
  return p.path === "" ? `${p.file}: ${message}` : `${p.file}: ${p.path}: ${message}`;
}

export function isError(p: Problem): boolean {
  return p.severity !== "warning";
}

// Paths and messages of ajv errors come from the one writer shared with the policy loader.
export { ajvErrorPath, ajvMessage, childPath } from "../../authz-server/src/ajv-message.js";
