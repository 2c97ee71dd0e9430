// header-router filter entry point (root id "header-router"): picks a route per request from
// path, method, headers, query and cookies, and writes it into the configured route header.
export * from "../lib/proxy-exports";
import { registerRootFactory } from "../lib/proxy-exports";
import { FILTER_NAME, RouterRoot } from "./filter";

registerRootFactory(FILTER_NAME, (contextId: u32) => new RouterRoot(contextId));
