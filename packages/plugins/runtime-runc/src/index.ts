export { default, runtimeRuncPlugin } from './plugin.js';
export { ShimRuntime, type ShimRuntimeOptions } from './shim-runtime.js';
export { shimBinaryName, resolveShimBinary } from './shim-binary.js';
export { runtimeRuncConfigDefaults, runtimeRuncConfigSchema, type RuntimeRuncConfig } from './config.js';
