// Public surface of the Envoy stand-in (see README.md).
export * from "./abi.js";
export * from "./clock.js";
export * from "./filter-chain.js";
export * from "./header-map.js";
export * from "./http-callout.js";
export * from "./http-filter.js";
export * from "./pairs.js";
export * from "./stand-in.js";
export { WasmVm, type ForeignFunction, type PluginIdentity } from "./wasm-vm.js";
export { WasmStreamFilter } from "./wasm-stream-filter.js";
export { inspectModule } from "./wasm-module.js";
export type { NodeInfo } from "./properties.js";
