// proxy_on_response_headers, for filters that act on responses (see proxy-exports-core.ts for why it is separate).
import { stream } from "./proxy-exports-core";

export function proxy_on_response_headers(contextId: u32, headers: u32, endOfStream: u32): i32 {
  const c = stream(contextId);
  if (c === null) return 0;
  return c.onResponseHeaders(headers, endOfStream != 0);
}
