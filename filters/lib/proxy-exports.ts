// Every proxy-wasm stream callback (ABI 0.2.0): proxy-exports-core.ts and proxy-exports-response.ts plus bodies,
// trailers, metadata, on_log and on_done, for filters that want the SDK's full Context surface. A filter that
// needs fewer exports only those (proxy-exports-core.ts says why). Re-export with `export * from "../lib/proxy-exports"`.
import { anyContext, stream } from "./proxy-exports-core";
export * from "./proxy-exports-core";
export * from "./proxy-exports-response";

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

export function proxy_on_done(contextId: u32): u32 {
  const c = anyContext(contextId);
  if (c === null) return 1;
  return c.onDone() ? 1 : 0;
}

export function proxy_on_log(contextId: u32): void {
  const c = stream(contextId);
  if (c !== null) c.onLog();
}
