// authz-cache filter entry point (root id "authz-cache"): ext_authz decisions served from shared
// data in front of ext_authz; see README.md for the design and its correctness argument.
// Only the callbacks it uses (request and response headers, lifecycle): Envoy skips the others' calls.
export * from "../lib/proxy-exports-core";
export * from "../lib/proxy-exports-response";
import { registerRootFactory } from "../lib/proxy-exports-core";
import { AuthzCacheRoot, FILTER_NAME } from "./filter";

registerRootFactory(FILTER_NAME, (contextId: u32) => new AuthzCacheRoot(contextId));
