export * from './plugin.js';
export { default } from './plugin.js';
export { ContainersService, toWireContainer, fromWireContainer } from './containers-service.js';
