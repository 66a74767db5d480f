export * from './filter.js';
export * from './adaptor.js';
// The parsed form, for services that rewrite field paths before filtering (berth's `ext.` alias of `extensions.`).
export { parseSelectors, FilterSyntaxError, type SelectorSpec } from './parser.js';
