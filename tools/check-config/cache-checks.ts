// check-config for a policy's decision cache (spec.cache): the secret must be readable, and every rule
// that keeps decisions out of the cache says why (filters/authz-cache/README.md).
import type { CompiledPolicy } from "../../authz-server/src/policy/compiled.js";
import { ruleDependencies } from "../../authz-server/src/policy/dependencies.js";
import { cacheSettings } from "../../authz-server/src/response/cache-directive.js";
import type { Problem } from "./problem.js";

export function cacheProblems(policy: CompiledPolicy, file: string, base: string): Problem[] {
  const cache = policy.document.spec.cache;
  if (!cache?.enabled) return [];
  const at = (path: string) => (base === "" ? path : `${base} → ${path}`);
  const problems: Problem[] = [];
  if (!cache.secret) {
    problems.push({ file, path: at("spec.cache"), code: "ERR_POLICY_CACHE_SECRET", message: "spec.cache.enabled needs 'secret' ({ file } or { env }), the HMAC key shared with the authz-cache filter" });
  } else {
    try {
      cacheSettings(policy);
    } catch (err) {
      problems.push({ file, path: at("spec.cache.secret"), code: "ERR_POLICY_CACHE_SECRET", severity: "warning", message: `secret not readable here: ${(err as Error).message}` });
    }
  }
  ruleDependencies(policy.document).forEach((d, i) => {
    if (!d.uncacheable) return;
    problems.push({
      file,
      path: at(`spec.rules[${i}]`),
      code: "WARN_POLICY_RULE_NOT_CACHEABLE",
      severity: "warning",
      message: `rule '${d.rule}' is not cacheable (${d.uncacheable}): requests it matches always go to authz-server`,
    });
  });
  return problems;
}
