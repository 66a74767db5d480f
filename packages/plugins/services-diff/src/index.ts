export { default, servicesDiffPlugin, servicesDiffToken } from './plugin.js';
export { ServicesDiff } from './services-diff.js';
