export { PACKAGE_NAME, PACKAGE_VERSION } from './version.js';
export { buildDistribution, checkDistribution, type BuildOptions, type BuildResult, type DistributionPlugin } from './build.js';
export { parseDistributionManifest, readDistributionManifest, type DistributionManifest, type PluginSpec } from './manifest.js';
export { main } from './main.js';
