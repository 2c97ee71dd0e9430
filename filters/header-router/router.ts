// Route selection: the first rule whose match holds picks a route, either fixed or by weighted
// split (sticky: stable hash of a header/cookie value, so every VM and proxy agrees; otherwise
// the injected PRNG). Pure: a function of (config, request headers, random source).
import { stableHash, stableHashBytes } from "../lib/hash";
import { Xorshift64 } from "../lib/random";
import { RequestView } from "../lib/request-view";
import { RouterConfig, Rule, StickyKind, Target } from "./config";

/** The outcome for one request; reused across requests to avoid allocation. */
export class Decision {
  /** Index of the matching rule, or -1 (default route or none). */
  ruleIndex: i32 = -1;
  /** The chosen route, or null when no rule matched and there is no default. */
  target: Target | null = null;
}

export function decide(config: RouterConfig, req: RequestView, random: Xorshift64, out: Decision): void {
  const rules = config.rules;
  for (let i = 0; i < rules.length; i++) {
    const rule = unchecked(rules[i]);
    if (!rule.match.matches(req)) continue;
    out.ruleIndex = i;
    out.target = unchecked(rule.targets[pickTarget(rule, req, random)]);
    return;
  }
  out.ruleIndex = -1;
  out.target = config.defaultTarget;
}

function pickTarget(rule: Rule, req: RequestView, random: Xorshift64): i32 {
  if (!rule.isSplit) return 0;
  if (rule.stickyKind == StickyKind.Header) {
    if (req.find(rule.stickyNameBytes) && req.foundLen > 0) {
      return rule.choice.pick(stableHashBytes(req.foundPtr, req.foundLen));
    }
  } else if (rule.stickyKind == StickyKind.Cookie) {
    const v = req.cookie(rule.stickyName);
    if (v !== null && v.length > 0) return rule.choice.pick(stableHash(v));
  }
  return rule.choice.pick(random.next());
}

/** The sticky target index for `key` in a split of these weights (exported for tests and docs). */
export function stickyIndex(rule: Rule, key: string): i32 {
  return rule.choice.pick(stableHash(key));
}
