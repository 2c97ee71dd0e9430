// One configuration problem found offline: the file, the path inside it and what is wrong.
// Every checker in this folder returns a list of these; the CLI prints them one per line.
import type { ErrorObject } from "ajv";

export interface Problem {
  readonly file: string;
  /** Dotted path inside the document, e.g. `spec.rules[2].require.roles[0]`; "" for the whole file. */
  readonly path: string;
  readonly message: string;
  /** Stable code, e.g. `ERR_ENVOY_UNKNOWN_FIELD`. */
  readonly code: string;
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

/** Appends a key or index to a dotted path the way problems print it. */
export function childPath(parent: string, key: string | number): string {
  if (typeof key === "number") return `${parent}[${key}]`;
  return parent === "" ? key : `${parent}.${key}`;
}

/** The dotted path of an ajv error below `base`, naming the unknown or missing key itself. */
export function ajvErrorPath(base: string, e: ErrorObject): string {
  let p = base;
  for (const seg of e.instancePath.split("/").slice(1)) {
    const s = seg.replace(/~1/g, "/").replace(/~0/g, "~");
    p = /^\d+$/.test(s) ? childPath(p, Number(s)) : childPath(p, s);
  }
  if (e.keyword === "additionalProperties") p = childPath(p, String(e.params["additionalProperty"]));
  if (e.keyword === "required") p = childPath(p, String(e.params["missingProperty"]));
  return p;
}
