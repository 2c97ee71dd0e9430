// header-router host edge: reads the configuration in onConfigure, and per request reads the
// headers once, decides (router.ts), writes the route header and clears Envoy's route cache
// only when the route header's value changed.
import { Context, FilterHeadersStatusValues, RootContext } from "@solo-io/proxy-runtime";
import {
  LogLevel, MemoryGauge, MetricKind, clearRouteCache, collectGarbage, defineMetric, incrementMetric, log, randomSeed,
  readPluginConfiguration, removeRequestHeader, replaceRequestHeader, requestHeaderPairs,
} from "../lib/host";
import { Xorshift64 } from "../lib/random";
import { RequestView } from "../lib/request-view";
import { RouterConfig, Target, parseRouterConfig } from "./config";
import { Decision, decide } from "./router";

export const FILTER_NAME = "header-router";
/** Requests between runs of the cycle collector (keeps linear memory flat, see host.ts). */
const COLLECT_EVERY: u32 = 512;

// Per-VM state: one request is in onRequestHeaders at a time, so these are reused.
const view = new RequestView();
const decision = new Decision();
let random: Xorshift64 | null = null;
let requests: u32 = 0;
const memoryGauge = new MemoryGauge();

export class RouterRoot extends RootContext {
  config: RouterConfig | null = null;
  unmatchedMetric: u32 = 0;

  onConfigure(size: u32): bool {
    const result = parseRouterConfig(readPluginConfiguration(size));
    const config = result.config;
    if (config === null) {
      log(LogLevel.Critical, FILTER_NAME + ": invalid configuration: " + result.error!);
      return false;
    }
    defineMetrics(config);
    this.unmatchedMetric = defineMetric(MetricKind.Counter, "meshward_header_router_unmatched_requests_total");
    this.config = config;
    memoryGauge.define("header_router");
    if (random === null) random = new Xorshift64(randomSeed());
    log(LogLevel.Info, FILTER_NAME + ": configured " + config.rules.length.toString() + " rules, route header '" + config.routeHeader + "'");
    return true;
  }

  createContext(context_id: u32): Context {
    return new RouterContext(context_id, this);
  }
}

class RouterContext extends Context {
  onRequestHeaders(_headers: u32, _endOfStream: bool): FilterHeadersStatusValues {
    const root = this.root_context as RouterRoot;
    const config = root.config;
    if (config === null) return FilterHeadersStatusValues.Continue;
    if (++requests % COLLECT_EVERY == 0) collectGarbage();
    memoryGauge.check();
    view.reset(requestHeaderPairs());
    decide(config, view, random!, decision);
    applyHeaderEdits(config);
    const target = decision.target;
    if (decision.ruleIndex >= 0) incrementMetric(config.rules[decision.ruleIndex].metric, 1);
    if (target === null) {
      incrementMetric(root.unmatchedMetric, 1);
      if (view.find(config.routeHeaderBytes)) {
        removeRequestHeader(config.routeHeaderBytes);
        clearRouteCache();
      }
    } else {
      incrementMetric(target.metric, 1);
      setRouteHeader(config, target);
    }
    return FilterHeadersStatusValues.Continue;
  }

  // The SDK's default logs a debug line built by string concatenation (on_delete is exported; on_log and
  // on_done are not, index.ts).
  onDelete(): void {}
}

/** Overwrites any client-sent route header; clears the route cache only if its value changed. */
function setRouteHeader(config: RouterConfig, target: Target): void {
  const name = config.routeHeaderBytes;
  // Exactly one header with exactly the target's value: nothing to change (one scan of the view).
  if (view.occurrences(name) == 1 && view.foundLen == <u32>target.bytes.byteLength &&
      memory.compare(view.foundPtr, changetype<usize>(target.bytes), view.foundLen) == 0) return;
  replaceRequestHeader(name, target.bytes);
  clearRouteCache();
}

function applyHeaderEdits(config: RouterConfig): void {
  const removes = config.headersToRemove;
  for (let i = 0; i < removes.length; i++) {
    const name = unchecked(removes[i]);
    if (view.find(name)) removeRequestHeader(name);
  }
  const adds = config.headersToAdd;
  for (let i = 0; i < adds.length; i++) replaceRequestHeader(unchecked(adds[i]).nameBytes, unchecked(adds[i]).valueBytes);
}

function defineMetrics(config: RouterConfig): void {
  for (let i = 0; i < config.rules.length; i++) {
    const rule = config.rules[i];
    rule.metric = defineMetric(MetricKind.Counter, "meshward_header_router_rule_" + metricPart(rule.name) + "_requests_total");
    for (let j = 0; j < rule.targets.length; j++) defineTargetMetric(rule.targets[j]);
  }
  const d = config.defaultTarget;
  if (d !== null) defineTargetMetric(d);
}

function defineTargetMetric(t: Target): void {
  t.metric = defineMetric(MetricKind.Counter, "meshward_header_router_target_" + metricPart(t.route) + "_requests_total");
}

/** Route and rule names as metric-name parts: anything but [A-Za-z0-9_] becomes "_". */
export function metricPart(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x5f;
    if (ok) out += String.fromCharCode(c);
    else out += "_";
  }
  return out;
}
