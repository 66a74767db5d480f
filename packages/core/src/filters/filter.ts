/**
 * containerd's filter syntax (filters/parser.go). A list of filters is ORed; each filter is `,`-separated
 * selectors that are ANDed: `fieldpath`, `fieldpath==value`, `fieldpath!=value`, `fieldpath~=regexp`.
 *
 * A field path is `.`-separated fields; a field may be quoted to hold any character (`labels."a.b/c"`).
 * `fieldpath` alone tests presence; `!=` also matches an absent field (compared as the empty string); `~=` is a
 * Go regular expression, unanchored (see regexp.ts for the mapping to JS). An expression that does not compile
 * makes its selector match nothing, as in containerd, rather than failing the parse.
 */
import { InvalidArgumentError } from '../errdefs/index.js';
import { FilterSyntaxError, parseSelectors, type SelectorSpec } from './parser.js';
import { compileGoRegexp } from './regexp.js';

/** Returns the value at a field path, or undefined when the field is absent. */
export type Adaptor = (fieldpath: readonly string[]) => string | undefined;

export interface Filter {
  match(adaptor: Adaptor): boolean;
}

/** Matches everything: what an empty filter list or an empty filter string means. */
export const alwaysFilter: Filter = Object.freeze({ match: () => true });

function compileSelector({ fieldpath, operator, value }: SelectorSpec): Filter {
  switch (operator) {
    case 'present':
      return { match: (adaptor) => adaptor(fieldpath) !== undefined };
    case '==':
      return { match: (adaptor) => adaptor(fieldpath) === value };
    case '!=':
      return { match: (adaptor) => (adaptor(fieldpath) ?? '') !== value };
    case '~=': {
      const re = compileGoRegexp(value);
      return { match: (adaptor) => re !== null && re.test(adaptor(fieldpath) ?? '') };
    }
  }
}

/** Parses one filter (`,`-separated selectors, all of which must match); '' matches everything. */
export function parseFilter(filter: string): Filter {
  if (filter === '') return alwaysFilter;
  let selectors: Filter[];
  try {
    selectors = parseSelectors(filter).map(compileSelector);
  } catch (err) {
    if (err instanceof FilterSyntaxError) throw new InvalidArgumentError(`filters: ${err.message}`, { cause: err });
    throw err;
  }
  return { match: (adaptor) => selectors.every((s) => s.match(adaptor)) };
}

/** Parses and ORs the filters; an empty list or only empty strings matches everything. InvalidArgumentError on bad syntax. */
export function parseFilters(filters: readonly string[]): Filter {
  if (filters.length === 0) return alwaysFilter;
  const parsed = filters.map(parseFilter);
  if (parsed.includes(alwaysFilter)) return alwaysFilter;
  return { match: (adaptor) => parsed.some((f) => f.match(adaptor)) };
}
