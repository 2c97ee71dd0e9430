// rate-limit filter entry point (root id "rate-limit"): token buckets per descriptor shared by all
// worker VMs through shared data, and global limits spent from leased token pools.
export * from "../lib/proxy-exports";
import { registerRootFactory } from "../lib/proxy-exports";
import { FILTER_NAME, RateLimitRoot } from "./filter";

registerRootFactory(FILTER_NAME, (contextId: u32) => new RateLimitRoot(contextId));
