// The one writer of schema-violation messages: every ajv check (policy, API-key files, plugin configs,
// manifests) names the path and the mistake in the same words. Catalogue of codes: docs/errors.md.
import type { ErrorObject } from "ajv";

/** Appends a key or index to a dotted path the way problems print it. */
export function childPath(parent: string, key: string | number): string {
  if (typeof key === "number") return `${parent}[${key}]`;
  return parent === "" ? key : `${parent}.${key}`;
}

/** `/spec/rules/2/require` below `base` → `spec.rules[2].require`, naming the unknown or missing key itself. */
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

/** What is wrong at that path, in one wording for every schema we check. */
export function ajvMessage(e: ErrorObject): string {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case "additionalProperties":
      return "unknown key";
    case "required":
      return "missing required key";
    case "type":
      return `must be ${String(p["type"])}`;
    case "enum":
      return `must be one of ${(p["allowedValues"] as unknown[]).filter((v) => v !== null).map((v) => JSON.stringify(v)).join(", ")}`;
    case "const":
      return `must be ${JSON.stringify(p["allowedValue"])}`;
    case "pattern":
      return `invalid value (must match ${String(p["pattern"])})`;
    case "propertyNames":
      return `invalid name '${String(p["propertyName"])}'`;
    case "oneOf": {
      const keys = Array.isArray(e.schema) ? (e.schema as { required?: string[] }[]).map((s) => s.required?.[0]).filter((k) => k !== undefined) : [];
      return keys.length > 0 ? `set exactly one of ${keys.join(", ")}` : "set exactly one of the alternatives";
    }
    default:
      return e.message ?? e.keyword;
  }
}
