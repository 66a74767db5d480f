export * from './fifo.js';
export * from './attach.js';
