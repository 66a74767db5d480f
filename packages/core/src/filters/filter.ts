/**
 * containerd's filter syntax (filters/parser.go). A list of filters is ORed; each filter is `,`-separated
 * selectors that are ANDed: `fieldpath`, `fieldpath==value`, `fieldpath!=value`, `fieldpath~=regexp`.
 *
 * A field path is `.`-separated fields; a field may be quoted to hold any character (`labels."a.b/c"`).
 * `fieldpath` alone tests presence; `!=` also matches an absent field (compared as the empty string); `~=` is a
 * Go regular expression, unanchored, matched in linear time (regexp.ts). An expression that Go does not compile
 * makes its selector match nothing, as in containerd (filter.go compiles it when matching, logs, returns false),
 * rather than failing the parse.
 *
 * What one request's filters may cost is bounded, since they run on the daemon's only thread: at most
 * MAX_FILTER_TEXT characters of filters, and at most MAX_REGEXP_PROGRAM estimated instructions of `~=` programs
 * in all (InvalidArgumentError beyond). A `~=` match too costly to run inline runs on a worker thread
 * (offload.ts): `match` then returns a Promise, so callers `await` what it returns.
 */
import { InvalidArgumentError } from '../errdefs/index.js';
import { matchOffThread, INLINE_MATCH_COST } from './offload.js';
import { FilterSyntaxError, parseSelectors, type Operator, type SelectorSpec } from './parser.js';

export type { Operator } from './parser.js';
import { compileGoRegexp, MAX_REGEXP_PROGRAM, type GoRegexp } from './regexp.js';

/** Returns the value at a field path, or undefined when the field is absent. */
export type Adaptor = (fieldpath: readonly string[]) => string | undefined;

/** The verdict, or a Promise of it when a regexp match had to leave the event loop. */
export type Verdict = boolean | Promise<boolean>;

export interface Filter {
  match(adaptor: Adaptor): Verdict;
}

/** The most filter text one request may carry, in characters (the filters of a list together). */
export const MAX_FILTER_TEXT = 64 * 1024;

/** Matches everything: what an empty filter list or an empty filter string means. */
export const alwaysFilter: Filter = Object.freeze({ match: () => true });

/** What compiling a request's `~=` selectors has spent of MAX_REGEXP_PROGRAM. */
class ProgramBudget {
  private spent = 0;

  compile(pattern: string): GoRegexp | null {
    const re = compileGoRegexp(pattern);
    if (re === null) return null;
    this.spent += re.programSize;
    if (this.spent > MAX_REGEXP_PROGRAM) {
      throw new InvalidArgumentError(
        `regexps of the filters compile to ${this.spent} instructions in all, more than ${MAX_REGEXP_PROGRAM}`,
      );
    }
    return re;
  }
}

function matchRegexp(re: GoRegexp | null, value: string): Verdict {
  if (re === null) return false;
  return re.cost(value) > INLINE_MATCH_COST ? matchOffThread(re.source, value) : re.test(value);
}

function compileSelector({ fieldpath, operator, value }: SelectorSpec, budget: ProgramBudget): Filter {
  switch (operator) {
    case 'present':
      return { match: (adaptor) => adaptor(fieldpath) !== undefined };
    case '==':
      return { match: (adaptor) => adaptor(fieldpath) === value };
    case '!=':
      return { match: (adaptor) => (adaptor(fieldpath) ?? '') !== value };
    case '~=': {
      const re = budget.compile(value);
      return { match: (adaptor) => matchRegexp(re, adaptor(fieldpath) ?? '') };
    }
  }
}

/** Whether every filter (from `from`) matches, awaiting only the verdicts that are Promises. */
function every(filters: readonly Filter[], adaptor: Adaptor, from = 0): Verdict {
  for (let i = from; i < filters.length; i++) {
    const verdict = filters[i]!.match(adaptor);
    if (verdict === false) return false;
    if (verdict !== true) return verdict.then((ok) => ok && every(filters, adaptor, i + 1));
  }
  return true;
}

/** Whether some filter (from `from`) matches, awaiting only the verdicts that are Promises. */
function some(filters: readonly Filter[], adaptor: Adaptor, from = 0): Verdict {
  for (let i = from; i < filters.length; i++) {
    const verdict = filters[i]!.match(adaptor);
    if (verdict === true) return true;
    if (verdict !== false) return verdict.then((ok) => ok || some(filters, adaptor, i + 1));
  }
  return false;
}

/** The compiled selectors of one filter, with what each one tests; InvalidArgumentError on bad syntax. */
function parseClause(filter: string, budget: ProgramBudget): FilterSelector[] {
  try {
    return parseSelectors(filter).map((spec) => ({ fieldpath: spec.fieldpath, operator: spec.operator, value: spec.value, ...compileSelector(spec, budget) }));
  } catch (err) {
    if (err instanceof FilterSyntaxError) throw new InvalidArgumentError(`filters: ${err.message}`, { cause: err });
    if (err instanceof InvalidArgumentError) throw new InvalidArgumentError(`filters: ${err.message}`, { cause: err });
    throw err;
  }
}

function parseOne(filter: string, budget: ProgramBudget): Filter {
  if (filter === '') return alwaysFilter;
  const selectors = parseClause(filter, budget);
  return { match: (adaptor) => every(selectors, adaptor) };
}

function checkLength(filters: readonly string[]): void {
  const length = filters.reduce((n, f) => n + f.length, 0);
  if (length > MAX_FILTER_TEXT) {
    throw new InvalidArgumentError(`filters: ${length} characters, more than ${MAX_FILTER_TEXT}`);
  }
}

/** Parses one filter (`,`-separated selectors, all of which must match); '' matches everything. */
export function parseFilter(filter: string): Filter {
  checkLength([filter]);
  return parseOne(filter, new ProgramBudget());
}

/**
 * Parses and ORs the filters; an empty list or only empty strings matches everything. InvalidArgumentError on bad
 * syntax, and on filters beyond the limits above.
 */
export function parseFilters(filters: readonly string[]): Filter {
  if (filters.length === 0) return alwaysFilter;
  checkLength(filters);
  const budget = new ProgramBudget();
  const parsed = filters.map((f) => parseOne(f, budget));
  if (parsed.includes(alwaysFilter)) return alwaysFilter;
  return { match: (adaptor) => some(parsed, adaptor) };
}

/** One selector of a filter, compiled: `match` tests it alone; the rest says what it tests (query planning). */
export interface FilterSelector extends Filter {
  readonly fieldpath: readonly string[];
  readonly operator: Operator;
  /** The value after the operator (the regexp source for `~=`); '' for `present`. */
  readonly value: string;
}

/** One filter of a list: its selectors, all of which must match; none matches everything. */
export interface FilterClause {
  readonly selectors: readonly FilterSelector[];
}

/**
 * The filters as parseFilters reads them (same syntax, limits and errors), but as clauses a store can plan with:
 * a container matches when it matches every selector of some clause. No filters (or an empty one) gives one
 * clause without selectors. A store that answers some selectors from an index checks the others with `match`.
 */
export function parseFilterClauses(filters: readonly string[]): FilterClause[] {
  if (filters.length === 0) return [{ selectors: [] }];
  checkLength(filters);
  const budget = new ProgramBudget();
  const clauses = filters.map((f) => ({ selectors: f === '' ? [] : parseClause(f, budget) }));
  return clauses.some((c) => c.selectors.length === 0) ? [{ selectors: [] }] : clauses;
}
