// Query conditions: containerd's filter syntax, with `ext.` accepted for `extensions.`.
import { FilterSyntaxError, InvalidArgumentError, parseSelectors, type SelectorSpec } from '@berth/core';

const quote = (text: string): string => JSON.stringify(text);

function serialize(selectors: readonly SelectorSpec[]): string {
  return selectors
    .map(({ fieldpath, operator, value }) => {
      const path = fieldpath.map(quote).join('.');
      return operator === 'present' ? path : `${path}${operator}${quote(value)}`;
    })
    .join(',');
}

/**
 * The `where` strings as the store's filters: each one whose selectors use the `ext.<name>.<path>` shorthand is
 * rewritten to `extensions.<name>.<path>` (every field and value re-quoted, so their text is kept exactly); the
 * others pass unchanged, and so do syntax errors, which the store reports in containerd's words.
 */
export function whereToFilters(where: readonly string[]): string[] {
  return where.map((filter) => {
    if (!/\bext\b/.test(filter)) return filter;
    let selectors: SelectorSpec[];
    try {
      selectors = parseSelectors(filter);
    } catch (err) {
      if (err instanceof FilterSyntaxError) throw new InvalidArgumentError(`where: ${err.message}`, { cause: err });
      throw err;
    }
    if (!selectors.some((s) => s.fieldpath[0] === 'ext')) return filter;
    return serialize(selectors.map((s) => (s.fieldpath[0] === 'ext' ? { ...s, fieldpath: ['extensions', ...s.fieldpath.slice(1)] } : s)));
  });
}
