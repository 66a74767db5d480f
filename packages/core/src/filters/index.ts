// Placeholder signatures; the implementation lands in filter.ts (containerd's filter syntax).
export * from './filter.js';
