// Reads a credential from where a provider's `from` list says: a header (with an optional prefix
// such as "Bearer ", matched case-insensitively as RFC 6750 allows) or a query parameter.
import type { Attributes } from "../model.js";
import type { CredentialSourceSpec } from "../policy/document.js";

export const DEFAULT_SOURCES: readonly CredentialSourceSpec[] = Object.freeze([{ header: "authorization", prefix: "Bearer " }]);

export interface Found {
  readonly value: string;
  /** e.g. `header:authorization` or `query:api_key`; never the value. */
  readonly location: string;
}

export function extractFrom(attrs: Attributes, sources: readonly CredentialSourceSpec[]): Found | undefined {
  for (const s of sources) {
    if (s.query !== undefined) {
      const v = attrs.query[s.query];
      if (v) return { value: v, location: `query:${s.query}` };
      continue;
    }
    if (s.header === undefined) continue;
    const raw = attrs.headers[s.header];
    if (raw === undefined || raw === "") continue;
    const prefix = s.prefix ?? "";
    if (prefix && raw.slice(0, prefix.length).toLowerCase() !== prefix.toLowerCase()) continue;
    const value = raw.slice(prefix.length).trim();
    if (value) return { value, location: `header:${s.header}` };
  }
  return undefined;
}
