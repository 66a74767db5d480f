export { default, diffServicePlugin } from './plugin.js';
export { DiffService } from './diff-service.js';
