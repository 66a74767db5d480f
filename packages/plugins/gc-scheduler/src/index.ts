export * from './plugin.js';
export { default } from './plugin.js';
export * from './config.js';
export { GcScheduler, schedulerExports, type GcSchedulerOptions, type GcSchedulerSettings } from './scheduler.js';
export { parseDuration, formatDuration, DURATION_PATTERN } from './duration.js';
