// rate-limit filter entry point (root id "rate-limit"): token buckets per descriptor shared by all
// worker VMs through shared data, and global limits spent from leased token pools.
// Only the callbacks it uses (request and response headers, lifecycle): Envoy skips the others' calls.
export * from "../lib/proxy-exports-core";
export * from "../lib/proxy-exports-response";
import { registerRootFactory } from "../lib/proxy-exports-core";
import { FILTER_NAME, RateLimitRoot } from "./filter";

registerRootFactory(FILTER_NAME, (contextId: u32) => new RateLimitRoot(contextId));
