export * from './plugin.js';
export { default } from './plugin.js';
export { TasksService, wireProcess } from './tasks-service.js';
