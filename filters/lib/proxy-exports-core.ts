// The proxy-wasm callbacks (ABI 0.2.0) every meshward filter needs: context lifecycle, configuration, ticks,
// request headers, http_call answers, delete. Envoy (proxy-wasm-cpp-host) skips a stream callback the module
// does not export, and each call into the VM costs several µs there (tools/bench/README.md, "per-request
// profile"), so a filter exports only what it uses: this module, plus proxy-exports-response.ts for response
// headers; proxy-exports.ts has them all. Same classes as the SDK's exports.ts, without its per-callback
// debug strings and without aborting on an unknown root or context id.
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

/** Context `id` (a root or a stream), or null (for the other export modules). */
export function anyContext(id: u32): BaseContext | null {
  if (!contexts.has(id)) return null;
  return contexts.get(id);
}

/** The stream context `id`, or null (for the other export modules). */
export function stream(id: u32): Context | null {
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

export function proxy_on_http_call_response(rootContextId: u32, token: u32, headers: u32, bodySize: u32, trailers: u32): void {
  const r = root(rootContextId);
  if (r !== null) r.onHttpCallResponse(token, headers, bodySize, trailers);
}

export function proxy_on_delete(contextId: u32): void {
  if (!contexts.has(contextId)) return;
  contexts.get(contextId).onDelete();
  contexts.delete(contextId);
}
