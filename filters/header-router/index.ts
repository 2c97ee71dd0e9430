// header-router filter entry point (root id "header-router"): picks a route per request from
// path, method, headers, query and cookies, and writes it into the configured route header.
// Only the callbacks it uses (request headers, lifecycle): Envoy skips the others' calls.
export * from "../lib/proxy-exports-core";
import { registerRootFactory } from "../lib/proxy-exports-core";
import { FILTER_NAME, RouterRoot } from "./filter";

registerRootFactory(FILTER_NAME, (contextId: u32) => new RouterRoot(contextId));
