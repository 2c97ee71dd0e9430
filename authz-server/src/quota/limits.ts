// Compiles `spec.rateLimits` once into an immutable lookup by domain and limit name.
import type { RateLimitSpec } from "./contract.js";

export interface LimitTable {
  hasDomain(domain: string): boolean;
  find(domain: string, name: string): RateLimitSpec | undefined;
  readonly all: readonly RateLimitSpec[];
}

/** Throws a RangeError naming `rateLimits[i]` and the problem; the policy schema normally catches these first. */
export function compileLimits(specs: readonly RateLimitSpec[]): LimitTable {
  const domains = new Map<string, Map<string, RateLimitSpec>>();
  specs.forEach((s, i) => {
    const where = `rateLimits[${i}]`;
    if (typeof s.domain !== "string" || s.domain === "") throw new RangeError(`${where}.domain: must be a non-empty string`);
    if (typeof s.name !== "string" || s.name === "") throw new RangeError(`${where}.name: must be a non-empty string`);
    if (!Number.isInteger(s.capacity) || s.capacity < 1) throw new RangeError(`${where}.capacity: must be an integer ≥ 1`);
    if (typeof s.refillPerSecond !== "number" || !Number.isFinite(s.refillPerSecond) || s.refillPerSecond < 0) {
      throw new RangeError(`${where}.refillPerSecond: must be a finite number ≥ 0`);
    }
    let names = domains.get(s.domain);
    if (!names) domains.set(s.domain, (names = new Map()));
    if (names.has(s.name)) throw new RangeError(`${where}: duplicate limit '${s.name}' in domain '${s.domain}'`);
    names.set(s.name, Object.freeze({ domain: s.domain, name: s.name, capacity: s.capacity, refillPerSecond: s.refillPerSecond, ...(s.maxLease !== undefined ? { maxLease: s.maxLease } : {}) }));
  });
  const all = Object.freeze([...domains.values()].flatMap((m) => [...m.values()]));
  return {
    hasDomain: (domain) => domains.has(domain),
    find: (domain, name) => domains.get(domain)?.get(name),
    all,
  };
}
