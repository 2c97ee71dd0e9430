// Which request attributes a rule can read (matchers, credential sources, CEL variable references),
// and whether a decision reached through it may be cached. Pure; see filters/authz-cache/README.md.
import type { Attributes } from "../model.js";
import type { CompiledPolicy, CompiledRule } from "./compiled.js";
import type { CredentialSourceSpec, PolicyDocument, RuleSpec } from "./document.js";

/**
 * Attribute names of a cache key shape. Always keyed (implicit): method, scheme, authority, path.
 * `h:<name>` a header (lower-case), `q` the query string (the whole `:path`), `a` the source IP.
 */
export type KeyAttribute = string;

export interface RuleDependencies {
  readonly rule: string;
  readonly attributes: readonly KeyAttribute[];
  /** Why a decision reached through this rule is never cached; undefined when it may be. */
  readonly uncacheable?: string;
}

const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;

/** A lexical scan of a CEL expression: identifiers and member chains outside string literals. */
export function celDependencies(expression: string): { attributes: Set<KeyAttribute>; uncacheable?: string } {
  const attributes = new Set<KeyAttribute>();
  const tokens = tokenize(expression);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind !== "ident") continue;
    const prev = tokens[i - 1];
    if (prev && prev.kind === "punct" && prev.text === ".") continue; // a member name, not a variable
    const next = (k: number) => tokens[i + k];
    const member = (k: number) => (next(k)?.text === "." && next(k + 1)?.kind === "ident" ? next(k + 1)!.text : undefined);
    switch (t.text) {
      case "now":
        return { attributes, uncacheable: "CEL reads `now` (time-dependent)" };
      case "context":
        return { attributes, uncacheable: "CEL reads `context` (route context extensions are not in the key)" };
      case "identity":
        break; // derived from the credential, which is always keyed
      case "source": {
        const m = member(1);
        if (m === "address") attributes.add("a");
        else return { attributes, uncacheable: `CEL reads source${m ? `.${m}` : ""} (the peer identity is not in the key)` };
        break;
      }
      case "request": {
        const m = member(1);
        if (m === "method" || m === "path" || m === "host" || m === "scheme") break;
        if (m === "query") {
          attributes.add("q");
          break;
        }
        if (m === "headers") {
          // request.headers["name"] or request.headers.name
          const a = next(3);
          const b = next(4);
          const c = next(5);
          if (a?.text === "[" && b?.kind === "string" && c?.text === "]" && HEADER_NAME.test(b.text.toLowerCase())) {
            attributes.add(`h:${b.text.toLowerCase()}`);
            break;
          }
          if (a?.text === "." && b?.kind === "ident" && c?.text !== "(") {
            attributes.add(`h:${b.text.toLowerCase()}`);
            break;
          }
          return { attributes, uncacheable: "CEL reads request.headers other than by a literal name" };
        }
        return { attributes, uncacheable: `CEL reads request${m ? `.${m}` : ""} in a form the key cannot name` };
      }
      default:
        break; // functions, macros' loop variables, true/false/null
    }
  }
  return { attributes };
}

interface Token {
  readonly kind: "ident" | "string" | "punct" | "other";
  readonly text: string;
}

function tokenize(s: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (/[A-Za-z_]/.test(c)) {
      let j = i + 1;
      while (j < s.length && /[A-Za-z0-9_]/.test(s[j]!)) j++;
      out.push({ kind: "ident", text: s.slice(i, j) });
      i = j;
    } else if (c === '"' || c === "'") {
      // A string literal (raw/triple-quoted forms are treated as plain: only their end matters here).
      let j = i + 1;
      let text = "";
      while (j < s.length && s[j] !== c) {
        if (s[j] === "\\" && j + 1 < s.length) {
          text += s[j + 1];
          j += 2;
        } else text += s[j++];
      }
      out.push({ kind: "string", text });
      i = j + 1;
    } else if (/[0-9]/.test(c)) {
      let j = i + 1;
      while (j < s.length && /[0-9A-Za-z_.]/.test(s[j]!)) j++;
      out.push({ kind: "other", text: s.slice(i, j) });
      i = j;
    } else {
      out.push({ kind: "punct", text: c });
      i++;
    }
  }
  return out;
}

function credentialAttributes(doc: PolicyDocument): Set<KeyAttribute> {
  const out = new Set<KeyAttribute>();
  const add = (from: readonly CredentialSourceSpec[] | undefined, fallback: boolean) => {
    const sources = from ?? (fallback ? [{ header: "authorization" }] : []);
    for (const s of sources) {
      if (s.header) out.add(`h:${s.header.toLowerCase()}`);
      if (s.query) out.add("q");
    }
  };
  const p = doc.spec.providers ?? {};
  for (const j of p.jwt ?? []) add(j.from, true);
  for (const j of p.introspection ?? []) add(j.from, true);
  for (const k of p.apiKeys ?? []) add(k.from, false);
  return out;
}

/** Dependencies of each rule of the policy document (enforced and dryRun), in document order. */
export function ruleDependencies(doc: PolicyDocument): RuleDependencies[] {
  const credentials = credentialAttributes(doc);
  const mesh = doc.spec.providers?.mesh !== undefined;
  const cacheSpec = doc.spec.cache;
  return doc.spec.rules.map((r: RuleSpec) => {
    const attrs = new Set<KeyAttribute>(credentials);
    let uncacheable: string | undefined;
    if (r.match?.sourceCidrs || r.match?.notSourceCidrs) attrs.add("a");
    if (r.when) {
      const c = celDependencies(r.when);
      for (const a of c.attributes) attrs.add(a);
      uncacheable = c.uncacheable;
    }
    if (!uncacheable && r.require?.peer) uncacheable = "requires a mesh peer (the peer certificate is not in the key)";
    if (!uncacheable && mesh) uncacheable = "the policy has mesh providers (identity may come from the peer certificate)";
    if (!uncacheable && r.cache === false) uncacheable = "the rule says cache: false";
    if (!uncacheable && !cacheSpec?.enabled) uncacheable = "spec.cache.enabled is not true (caching is off by default)";
    return { rule: r.name, attributes: [...attrs].sort(), ...(uncacheable ? { uncacheable } : {}) };
  });
}

export interface DecisionDependencies {
  /** The sorted key shape, or undefined when a rule that could be evaluated is uncacheable. */
  readonly shape?: readonly KeyAttribute[];
  readonly uncacheable?: string;
}

const byPolicy = new WeakMap<CompiledPolicy, Map<string, RuleDependencies>>();

function dependenciesOf(policy: CompiledPolicy): Map<string, RuleDependencies> {
  let deps = byPolicy.get(policy);
  if (!deps) byPolicy.set(policy, (deps = new Map(ruleDependencies(policy.document).map((d) => [d.rule, d]))));
  return deps;
}

/**
 * The dependencies of one decision: for every enforced rule evaluated for the request's host, a rule
 * whose matcher (host, path, method, source CIDRs) matched contributes everything it can read (its
 * credential sources and CEL references, or its reason not to be cached); a rule whose matcher did
 * not match read only the matcher's attributes — method, host and path, always keyed, and the source
 * address when it has CIDRs. Exact, not just safe: a sibling rule that did not match still counts.
 */
export function decisionDependencies(policy: CompiledPolicy, rules: readonly CompiledRule[], attrs: Attributes): DecisionDependencies {
  if (!policy.document.spec.cache?.enabled) return { uncacheable: "spec.cache.enabled is not true" };
  const deps = dependenciesOf(policy);
  const shape = new Set<KeyAttribute>();
  for (const r of rules) {
    const d = deps.get(r.name);
    if (!d) return { uncacheable: `rule ${r.name} has no dependency record` };
    const spec = policy.document.spec.rules.find((x) => x.name === r.name);
    if (spec?.match?.sourceCidrs || spec?.match?.notSourceCidrs) shape.add("a");
    if (!r.matches(attrs)) continue;
    if (d.uncacheable) return { uncacheable: `rule ${r.name}: ${d.uncacheable}` };
    for (const a of d.attributes) shape.add(a);
  }
  // The credential is always keyed: identity headers and denials of missing credentials depend on it.
  for (const a of credentialAttributes(policy.document)) shape.add(a);
  return { shape: [...shape].sort() };
}

/** One line per rule for check-config: its key attributes and whether/why it is not cacheable. */
export function explainCacheability(doc: PolicyDocument): string[] {
  return ruleDependencies(doc).map((d) => {
    const base = `rule ${d.rule}: key = method, scheme, authority, path${d.attributes.length ? `, ${d.attributes.join(", ")}` : ""}`;
    return d.uncacheable ? `${base}; not cacheable: ${d.uncacheable}` : `${base}; cacheable`;
  });
}
