export * from './errdefs.js';
export * from './system.js';
export * from './db-commit.js';
