// Compiles a schema-valid policy document into the immutable `CompiledPolicy`: glob, set and CIDR
// matchers, RBAC closure, CEL programs, bindings. Cross-field mistakes throw PolicyInvalid(file, path, problem).
import { PolicyInvalid } from "../errors.js";
import type { Attributes } from "../model.js";
import { compileCondition } from "./cel.js";
import { cidrProblem, compileCidrs } from "./cidr.js";
import type { CompiledPolicy, CompiledRequirement, CompiledRule, ProviderOutput, RequirementFailure } from "./compiled.js";
import type { CredentialSourceSpec, MatchSpec, PolicyDocument, RequirementSpec, RuleSpec } from "./document.js";
import { compilePathGlob } from "./glob.js";
import { rolesGranting } from "./roles.js";

export const DEFAULT_LIMITS = { maxCredentialBytes: 16 * 1024, maxHeaders: 200, maxHeaderBytes: 64 * 1024 } as const;

export function compilePolicy(doc: PolicyDocument, file: string, version: string): CompiledPolicy {
  const fail = (path: string, problem: string): never => {
    throw new PolicyInvalid(file, path, problem);
  };
  const spec = doc.spec;
  const providers = spec.providers ?? {};
  const roles = spec.roles ?? {};
  const trustDomains = new Set(providers.mesh?.trustDomains ?? []);

  checkProviders(doc, fail);
  if (spec.cache?.enabled && !spec.cache.secret) fail("spec.cache", "'enabled: true' needs 'secret' ({ file } or { env }), the HMAC key shared with the authz-cache filter");
  if (spec.cache?.secret && (spec.cache.secret.file === undefined) === (spec.cache.secret.env === undefined)) fail("spec.cache.secret", "needs exactly one of 'file' or 'env'");

  const bindings = new Map<string, string[]>();
  (spec.bindings ?? []).forEach((b, i) => {
    b.roles.forEach((r, j) => {
      if (!(r in roles)) fail(`spec.bindings[${i}].roles[${j}]`, `unknown role '${r}'`);
    });
    for (const s of b.subjects) bindings.set(s, [...new Set([...(bindings.get(s) ?? []), ...b.roles])]);
  });

  const seenRules = new Set<string>();
  const compiled: CompiledRule[] = spec.rules.map((rule, i) => {
    const at = `spec.rules[${i}]`;
    if (seenRules.has(rule.name)) fail(`${at}.name`, `duplicate rule name '${rule.name}'`);
    seenRules.add(rule.name);
    return compileRule(rule, at, roles, trustDomains, fail);
  });

  const seenLimits = new Set<string>();
  (spec.rateLimits ?? []).forEach((l, i) => {
    const key = `${l.domain}/${l.name}`;
    if (seenLimits.has(key)) fail(`spec.rateLimits[${i}]`, `duplicate rate limit '${key}'`);
    seenLimits.add(key);
  });

  const providerOutputs = new Map<string, ProviderOutput>();
  for (const p of [...(providers.jwt ?? []), ...(providers.introspection ?? [])]) {
    providerOutputs.set(p.name, {
      claimsToHeaders: p.claimsToHeaders ?? [],
      removeHeaders: p.forward === false ? headersOf(p.from ?? [{ header: "authorization" }]) : [],
    });
  }
  for (const p of providers.apiKeys ?? []) {
    providerOutputs.set(p.name, { claimsToHeaders: [], removeHeaders: p.forward === false ? headersOf(p.from) : [] });
  }

  const enforced = compiled.filter((r) => !r.dryRun);
  return deepFreeze({
    version,
    file,
    document: doc,
    providers,
    rules: enforced,
    rulesForHost: indexByHost(enforced),
    dryRunRules: compiled.filter((r) => r.dryRun),
    usesConditions: compiled.some((r) => r.when !== undefined),
    trustDomains,
    bindings,
    providerOutputs,
    limits: { ...DEFAULT_LIMITS, ...spec.limits },
    response: {
      realm: spec.response?.realm ?? "meshward",
      ...(spec.response?.subjectHeader ? { subjectHeader: spec.response.subjectHeader } : {}),
      ...(spec.response?.rolesHeader ? { rolesHeader: spec.response.rolesHeader } : {}),
    },
    rateLimits: spec.rateLimits ?? [],
  });
}

type Fail = (path: string, problem: string) => never;

function checkProviders(doc: PolicyDocument, fail: Fail): void {
  const providers = doc.spec.providers ?? {};
  const names = new Set<string>();
  const issuers = new Set<string>();
  const checkName = (name: string, at: string) => {
    if (names.has(name)) fail(`${at}.name`, `duplicate provider name '${name}'`);
    names.add(name);
  };
  const checkSources = (from: readonly CredentialSourceSpec[] | undefined, at: string) =>
    (from ?? []).forEach((s, k) => {
      const hasHeader = s.header !== undefined;
      const hasQuery = s.query !== undefined;
      if (hasHeader === hasQuery) fail(`${at}.from[${k}]`, "needs exactly one of 'header' or 'query'");
      if (hasQuery && s.prefix !== undefined) fail(`${at}.from[${k}].prefix`, "'prefix' applies only to 'header'");
    });
  const checkSecret = (secret: { file?: string; env?: string }, at: string) => {
    if ((secret.file === undefined) === (secret.env === undefined)) fail(at, "needs exactly one of 'file' or 'env'");
  };
  (providers.jwt ?? []).forEach((p, i) => {
    const at = `spec.providers.jwt[${i}]`;
    checkName(p.name, at);
    if (issuers.has(p.issuer)) fail(`${at}.issuer`, `duplicate issuer '${p.issuer}' (providers are selected by 'iss')`);
    issuers.add(p.issuer);
    checkSources(p.from, at);
    if (p.secret) checkSecret(p.secret, `${at}.secret`);
    p.algorithms.forEach((alg, k) => {
      if (alg.startsWith("HS") && !p.secret) fail(`${at}.algorithms[${k}]`, `${alg} needs 'secret' ({ file } or { env })`);
    });
    if (p.secret && !p.algorithms.some((a) => a.startsWith("HS"))) fail(`${at}.secret`, "a secret is only used with HS256/HS384/HS512 in 'algorithms'");
    const asymmetric = p.algorithms.find((a) => !a.startsWith("HS"));
    if (p.jwks) {
      const kinds = (["uri", "file", "discovery", "keys"] as const).filter((k) => p.jwks?.[k] !== undefined && p.jwks?.[k] !== false);
      if (kinds.length !== 1) fail(`${at}.jwks`, "needs exactly one of 'uri', 'file', 'discovery: true' or 'keys'");
    } else if (asymmetric) {
      fail(at, `'jwks' is required for ${asymmetric}`);
    }
  });
  (providers.introspection ?? []).forEach((p, i) => {
    const at = `spec.providers.introspection[${i}]`;
    checkName(p.name, at);
    checkSources(p.from, at);
    checkSecret(p.clientSecret, `${at}.clientSecret`);
  });
  (providers.apiKeys ?? []).forEach((p, i) => {
    const at = `spec.providers.apiKeys[${i}]`;
    checkName(p.name, at);
    checkSources(p.from, at);
    if (p.keys === undefined && p.keysFile === undefined) fail(at, "needs 'keys' or 'keysFile' (or both)");
    const ids = new Set<string>();
    (p.keys ?? []).forEach((k, j) => {
      if (ids.has(k.id)) fail(`${at}.keys[${j}].id`, `duplicate key id '${k.id}'`);
      ids.add(k.id);
      k.roles?.forEach((r, m) => {
        if (!(r in (doc.spec.roles ?? {}))) fail(`${at}.keys[${j}].roles[${m}]`, `unknown role '${r}'`);
      });
    });
  });
}

function compileRule(
  rule: RuleSpec,
  at: string,
  roles: Readonly<Record<string, readonly string[]>>,
  trustDomains: ReadonlySet<string>,
  fail: Fail,
): CompiledRule {
  const effect = rule.effect ?? "allow";
  if (effect === "deny" && (rule.require || rule.allow)) fail(at, "a deny rule takes only 'match' and 'when' (no 'require' or 'allow')");
  if (effect === "allow" && rule.require && rule.allow) fail(`${at}.allow`, "'allow: anonymous' and 'require' exclude each other");
  if (effect === "allow" && !rule.require && !rule.allow) fail(at, "an allow rule needs 'require' or 'allow: anonymous'");
  let when;
  if (rule.when !== undefined) {
    try {
      when = compileCondition(rule.when);
    } catch (err) {
      fail(`${at}.when`, (err as Error).message);
    }
  }
  const requirement = rule.require ? compileRequirement(rule.require, `${at}.require`, roles, trustDomains, fail) : undefined;
  return {
    name: rule.name,
    effect,
    dryRun: rule.enforcement === "dryRun",
    anonymous: rule.allow === "anonymous",
    matches: compileMatch(rule.match ?? {}, `${at}.match`, fail),
    requirement,
    needsPermissions: rule.require ? mentionsPermissions(rule.require) : false,
    exactHosts: rule.match?.hosts?.every((h) => !h.includes("*") && !/:[0-9]+$/.test(h)) ? rule.match.hosts.map((h) => h.toLowerCase()) : undefined,
    when,
  };
}

function mentionsPermissions(req: RequirementSpec): boolean {
  return !!(req.permissions || req.roles || req.anyOf?.some(mentionsPermissions) || req.allOf?.some(mentionsPermissions));
}

function compileMatch(match: MatchSpec, at: string, fail: Fail): (attrs: Attributes) => boolean {
  const checks: ((attrs: Attributes) => boolean)[] = [];
  if (match.methods) {
    const methods = new Set(match.methods.map((m) => m.toUpperCase()));
    checks.push((a) => methods.has(a.method));
  }
  if (match.hosts) {
    const hosts = match.hosts.map(compileHost);
    checks.push((a) => hosts.some((h) => h(a.host)));
  }
  if (match.paths) {
    const paths = match.paths.map(compilePathGlob);
    checks.push((a) => paths.some((p) => p(a.path)));
  }
  for (const key of ["sourceCidrs", "notSourceCidrs"] as const) {
    const list = match[key];
    if (!list) continue;
    list.forEach((c, i) => {
      const problem = cidrProblem(c);
      if (problem) fail(`${at}.${key}[${i}]`, problem);
    });
    const matcher = compileCidrs(list);
    checks.push(key === "sourceCidrs" ? (a) => matcher(a.source.address) : (a) => !matcher(a.source.address));
  }
  if (checks.length === 0) return () => true;
  return (a) => {
    for (const c of checks) if (!c(a)) return false;
    return true;
  };
}

/**
 * Rules indexed by exact host so that large policies scan only the rules that can match: each known
 * host gets its own ordered list (its rules plus the any-host ones); other hosts get the any-host list.
 */
function indexByHost(rules: readonly CompiledRule[]): (host: string) => readonly CompiledRule[] {
  const anyHost = rules.filter((r) => !r.exactHosts);
  if (anyHost.length === rules.length) return () => rules;
  const byHost = new Map<string, CompiledRule[]>();
  for (const h of new Set(rules.flatMap((r) => r.exactHosts ?? []))) byHost.set(h, rules.filter((r) => !r.exactHosts || r.exactHosts.includes(h)));
  return (host) => byHost.get(stripPort(host)) ?? anyHost;
}

/** Host patterns: exact or `*.example.com`, case-insensitive; the request's port is ignored unless the pattern names one. */
function compileHost(pattern: string): (host: string) => boolean {
  const p = pattern.toLowerCase();
  const withPort = /:[0-9]+$/.test(p);
  const bare = (host: string) => (withPort ? host : stripPort(host));
  if (p === "*") return () => true;
  if (p.startsWith("*.")) {
    const suffix = p.slice(1);
    return (host) => {
      const h = bare(host);
      return h.endsWith(suffix) && h.length > suffix.length;
    };
  }
  return (host) => bare(host) === p;
}

let lastHost = "";
let lastBare = "";

/** `host:port` → `host` (IPv6 literals keep their brackets); memoized for the rule scan of one request. */
function stripPort(host: string): string {
  if (host === lastHost) return lastBare;
  lastBare = stripPortUncached(host);
  lastHost = host;
  return lastBare;
}

function stripPortUncached(host: string): string {
  if (host.startsWith("[")) {
    const end = host.indexOf("]");
    return end < 0 ? host : host.slice(0, end + 1);
  }
  const colon = host.lastIndexOf(":");
  return colon >= 0 && host.indexOf(":") === colon ? host.slice(0, colon) : host;
}

function compileRequirement(
  req: RequirementSpec,
  at: string,
  roles: Readonly<Record<string, readonly string[]>>,
  trustDomains: ReadonlySet<string>,
  fail: Fail,
): CompiledRequirement {
  const parts: CompiledRequirement[] = [];
  if (req.user) parts.push((i) => (i.user ? undefined : "missing_credentials"));
  if (req.peer) {
    if (trustDomains.size === 0) fail(`${at}.peer`, "needs spec.providers.mesh.trustDomains");
    const principals = req.peer.principals ? new Set(req.peer.principals) : undefined;
    req.peer.principals?.forEach((p, k) => {
      const td = p.slice("spiffe://".length).split("/")[0] ?? "";
      if (!trustDomains.has(td)) fail(`${at}.peer.principals[${k}]`, `trust domain '${td}' is not in spec.providers.mesh.trustDomains`);
    });
    const namespaces = req.peer.namespaces ? new Set(req.peer.namespaces) : undefined;
    const accounts = req.peer.serviceAccounts ? new Set(req.peer.serviceAccounts) : undefined;
    parts.push(({ peer }) => {
      if (!peer) return "peer_required";
      if (principals && !principals.has(peer.principal)) return "peer_not_allowed";
      if (namespaces && !namespaces.has(peer.namespace)) return "peer_not_allowed";
      if (accounts && !accounts.has(`${peer.namespace}/${peer.serviceAccount}`)) return "peer_not_allowed";
      return undefined;
    });
  }
  if (req.roles) {
    req.roles.forEach((r, k) => {
      if (!(r in roles)) fail(`${at}.roles[${k}]`, `unknown role '${r}'`);
    });
    const wanted = req.roles;
    parts.push((i) => (wanted.some((r) => i.roles.has(r)) ? undefined : lacking(i)));
  }
  if (req.permissions) {
    const granting = req.permissions.map((p, k) => {
      const set = rolesGranting(roles, p);
      if (set.size === 0) fail(`${at}.permissions[${k}]`, `no role grants permission '${p}'`);
      return [...set];
    });
    parts.push((i) => (granting.every((set) => set.some((r) => i.roles.has(r))) ? undefined : lacking(i)));
  }
  if (req.allOf) {
    const subs = req.allOf.map((s, k) => compileRequirement(s, `${at}.allOf[${k}]`, roles, trustDomains, fail));
    parts.push((i) => {
      for (const s of subs) {
        const f = s(i);
        if (f) return f;
      }
      return undefined;
    });
  }
  if (req.anyOf) {
    const subs = req.anyOf.map((s, k) => compileRequirement(s, `${at}.anyOf[${k}]`, roles, trustDomains, fail));
    parts.push((i) => {
      let best: RequirementFailure | undefined;
      for (const s of subs) {
        const f = s(i);
        if (!f) return undefined;
        best ??= f;
      }
      return best;
    });
  }
  return (i) => {
    for (const p of parts) {
      const f = p(i);
      if (f) return f;
    }
    return undefined;
  };
}

/** Roles are missing: without any identity the client should authenticate (401), otherwise 403. */
function lacking(i: { user: unknown; peer: unknown }): RequirementFailure {
  return i.user || i.peer ? "insufficient_permissions" : "missing_credentials";
}

function headersOf(from: readonly CredentialSourceSpec[]): string[] {
  return from.flatMap((s) => (s.header ? [s.header] : []));
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value) && !(value instanceof Map) && !(value instanceof Set)) {
    Object.freeze(value);
    for (const v of Object.values(value)) if (typeof v !== "function") deepFreeze(v);
  }
  return value;
}
