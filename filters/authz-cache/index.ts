// authz-cache filter entry point (root id "authz-cache"): ext_authz decisions served from shared
// data in front of ext_authz; see README.md for the design and its correctness argument.
export * from "../lib/proxy-exports";
import { registerRootFactory } from "../lib/proxy-exports";
import { AuthzCacheRoot, FILTER_NAME } from "./filter";

registerRootFactory(FILTER_NAME, (contextId: u32) => new AuthzCacheRoot(contextId));
