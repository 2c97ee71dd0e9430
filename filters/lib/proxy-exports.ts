// Thin proxy-wasm callbacks (ABI 0.2.0) for meshward filters, replacing the SDK's exports.ts while
// keeping its RootContext/Context classes. The SDK's versions build debug log lines by string
// concatenation (and join the whole context map) on every stream callback, and abort the VM on an
// unknown root id or context id; these do neither. Re-export with `export * from "../lib/proxy-exports"`.
import { BaseContext, Context, RootContext } from "@solo-io/proxy-runtime";
import { LogLevel, getProperty, log } from "./host";
export * from "@solo-io/proxy-runtime/malloc";

const factories = new Map<string, (contextId: u32) => RootContext>();
const contexts = new Map<u32, BaseContext>();

/** Registers the root context factory for Envoy `root_id` (Istio `pluginName`) `rootId`. */
export function registerRootFactory(rootId: string, factory: (contextId: u32) => RootContext): void {
  factories.set(rootId, factory);
}

/** Number of live contexts (roots and streams) in this VM; for tests and leak checks. */
export function liveContexts(): i32 {
  return contexts.size;
}

export function proxy_abi_version_0_2_0(): void {}

export function proxy_on_context_create(contextId: u32, rootContextId: u32): void {
  if (contexts.has(contextId)) return;
  if (rootContextId == 0) {
    const raw = getProperty(["plugin_root_id"]);
    let rootId = "";
    if (raw !== null) rootId = String.UTF8.decode(raw);
    if (!factories.has(rootId)) {
      // Log lines start with the filter name: a module registers its own filter(s) under their names.
      const known = factories.keys();
      let filter = "meshward";
      if (known.length > 0) filter = known[0];
      log(LogLevel.Critical, filter + ": no filter registered for root id '" + rootId + "' (known: " + known.join(", ") + ")");
      return; // on_vm_start / on_configure then report failure
    }
    const root = factories.get(rootId)(contextId);
    root.context_id = contextId;
    contexts.set(contextId, root);
    return;
  }
  if (!contexts.has(rootContextId)) return;
  const root = contexts.get(rootContextId) as RootContext;
  contexts.set(contextId, root.createContext(contextId));
}

function root(id: u32): RootContext | null {
  if (!contexts.has(id)) return null;
  return contexts.get(id) as RootContext;
}

function stream(id: u32): Context | null {
  if (!contexts.has(id)) return null;
  return contexts.get(id) as Context;
}

export function proxy_on_vm_start(rootContextId: u32, vmConfigurationSize: u32): u32 {
  const r = root(rootContextId);
  if (r === null) return 0;
  return r.onStart(vmConfigurationSize) ? 1 : 0;
}

export function proxy_validate_configuration(rootContextId: u32, configurationSize: u32): u32 {
  const r = root(rootContextId);
  if (r === null) return 0;
  return r.validateConfiguration(configurationSize) ? 1 : 0;
}

export function proxy_on_configure(rootContextId: u32, configurationSize: u32): u32 {
  const r = root(rootContextId);
  if (r === null) return 0;
  return r.onConfigure(configurationSize) ? 1 : 0;
}

export function proxy_on_tick(rootContextId: u32): void {
  const r = root(rootContextId);
  if (r !== null) r.onTick();
}

export function proxy_on_queue_ready(rootContextId: u32, token: u32): void {
  const r = root(rootContextId);
  if (r !== null) r.onQueueReady(token);
}

export function proxy_on_foreign_function(rootContextId: u32, functionId: u32, dataSize: u32): void {}

export function proxy_on_request_headers(contextId: u32, headers: u32, endOfStream: u32): i32 {
  const c = stream(contextId);
  if (c === null) return 0;
  return c.onRequestHeaders(headers, endOfStream != 0);
}

export function proxy_on_request_body(contextId: u32, bodySize: u32, endOfStream: u32): i32 {
  const c = stream(contextId);
  if (c === null) return 0;
  return c.onRequestBody(bodySize, endOfStream != 0);
}

export function proxy_on_request_trailers(contextId: u32, trailers: u32): i32 {
  const c = stream(contextId);
  if (c === null) return 0;
  return c.onRequestTrailers(trailers);
}

export function proxy_on_request_metadata(contextId: u32, elements: u32): i32 {
  return 0;
}

export function proxy_on_response_headers(contextId: u32, headers: u32, endOfStream: u32): i32 {
  const c = stream(contextId);
  if (c === null) return 0;
  return c.onResponseHeaders(headers, endOfStream != 0);
}

export function proxy_on_response_body(contextId: u32, bodySize: u32, endOfStream: u32): i32 {
  const c = stream(contextId);
  if (c === null) return 0;
  return c.onResponseBody(bodySize, endOfStream != 0);
}

export function proxy_on_response_trailers(contextId: u32, trailers: u32): i32 {
  const c = stream(contextId);
  if (c === null) return 0;
  return c.onResponseTrailers(trailers);
}

export function proxy_on_response_metadata(contextId: u32, elements: u32): i32 {
  return 0;
}

export function proxy_on_http_call_response(rootContextId: u32, token: u32, headers: u32, bodySize: u32, trailers: u32): void {
  const r = root(rootContextId);
  if (r !== null) r.onHttpCallResponse(token, headers, bodySize, trailers);
}

export function proxy_on_done(contextId: u32): u32 {
  if (!contexts.has(contextId)) return 1;
  return contexts.get(contextId).onDone() ? 1 : 0;
}

export function proxy_on_log(contextId: u32): void {
  const c = stream(contextId);
  if (c !== null) c.onLog();
}

export function proxy_on_delete(contextId: u32): void {
  if (!contexts.has(contextId)) return;
  contexts.get(contextId).onDelete();
  contexts.delete(contextId);
}
