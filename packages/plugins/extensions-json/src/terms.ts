// Index terms of a JSON document: the scalar values found at declared dot paths.
import { InvalidArgumentError, type ExtensionTerm } from '@berth/core';

/** At most this many indexed paths per schema (each write indexes every one). */
export const MAX_INDEXED_PATHS = 32;
const MAX_PATH_LENGTH = 256;

/**
 * Checks and normalises declared indexed paths: dot-separated object keys (`team`, `owner.email`), each segment
 * non-empty and made of printable characters other than `.`; duplicates are an error, as is more than
 * MAX_INDEXED_PATHS. Returns them sorted, so that equal sets compare equal.
 */
export function checkIndexedPaths(name: string, paths: readonly string[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const path of paths) {
    if (typeof path !== 'string' || path.length === 0) problems.push('an indexed path is empty');
    else if (path.length > MAX_PATH_LENGTH) problems.push(`indexed path "${path.slice(0, 40)}…" is longer than ${MAX_PATH_LENGTH} characters`);
    // eslint-disable-next-line no-control-regex
    else if (/[\u0000-\u001f\u007f]/.test(path)) problems.push(`indexed path ${JSON.stringify(path)} holds a control character`);
    else if (path.split('.').some((s) => s.length === 0)) problems.push(`indexed path "${path}" has an empty segment`);
    else if (seen.has(path)) problems.push(`indexed path "${path}" is listed twice`);
    seen.add(path);
  }
  if (paths.length > MAX_INDEXED_PATHS) problems.push(`${paths.length} indexed paths (at most ${MAX_INDEXED_PATHS})`);
  if (problems.length > 0) throw new InvalidArgumentError(`schema "${name}": ${problems.join('; ')}`);
  return [...seen].sort();
}

/** A scalar as its index value: strings as themselves, numbers and booleans as their JSON text; others none. */
function scalarTerm(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : undefined;
    case 'boolean':
      return value ? 'true' : 'false';
    default:
      return undefined;
  }
}

/**
 * The values at one dot path of a parsed document: the scalar there, or each scalar element of an array there.
 * An array met on the way is walked element by element (`owners.team` over `{owners: [{team}, {team}]}`).
 * Objects, nulls and absent keys give nothing.
 */
export function valuesAt(doc: unknown, path: string): string[] {
  const out = new Set<string>();
  const segments = path.split('.');
  const walk = (node: unknown, i: number): void => {
    if (Array.isArray(node)) {
      for (const element of node) {
        if (i === segments.length) {
          const term = scalarTerm(element);
          if (term !== undefined) out.add(term);
        } else walk(element, i);
      }
      return;
    }
    if (i === segments.length) {
      const term = scalarTerm(node);
      if (term !== undefined) out.add(term);
      return;
    }
    if (node === null || typeof node !== 'object') return;
    const key = segments[i]!;
    if (!Object.hasOwn(node, key)) return;
    walk((node as Record<string, unknown>)[key], i + 1);
  };
  walk(doc, 0);
  return [...out];
}

/** Every term of a parsed document for the given paths, in path order, without duplicates. */
export function termsOf(doc: unknown, paths: readonly string[]): ExtensionTerm[] {
  const terms: ExtensionTerm[] = [];
  for (const path of paths) for (const value of valuesAt(doc, path)) terms.push({ path, value });
  return terms;
}
