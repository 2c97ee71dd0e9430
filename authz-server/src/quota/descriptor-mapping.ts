// Maps an Envoy rate limit descriptor to a meshward limit name and bucket key, in the spirit of
// envoyproxy/ratelimit, where a descriptor's first entry key selects the configured limit.

export interface DescriptorEntry {
  readonly key: string;
  readonly value: string;
}

export interface MappedDescriptor {
  readonly limit: string;
  readonly key: string;
}

/**
 * 1. An entry with key `limit` names the limit by its value; the other entries' values form the key.
 * 2. Else a leading `generic_key` entry (Envoy's `generic_key` action) names the limit by its value;
 *    the remaining entries' values form the key (none: one bucket shared by every request).
 * 3. Else the first entry's key names the limit (`remote_address`, a `request_headers` descriptor_key…)
 *    and all entries' values form the key.
 * Values are joined with `/`, each with `%` and `/` percent-escaped so distinct tuples never share a key.
 */
export function mapDescriptor(entries: readonly DescriptorEntry[]): MappedDescriptor | undefined {
  if (entries.length === 0) return undefined;
  const named = entries.findIndex((e) => e.key === "limit");
  if (named >= 0) return { limit: entries[named]!.value, key: joinValues(entries.filter((_, i) => i !== named)) };
  if (entries[0]!.key === "generic_key") return { limit: entries[0]!.value, key: joinValues(entries.slice(1)) };
  return { limit: entries[0]!.key, key: joinValues(entries) };
}

function joinValues(entries: readonly DescriptorEntry[]): string {
  return entries.map((e) => e.value.replace(/%/g, "%25").replace(/\//g, "%2F")).join("/");
}
