export { LocalStreamManager } from './manager.js';
export { streamManagerPlugin } from './plugin.js';
