import type { Adaptor } from './filter.js';

/**
 * An Adaptor over a plain record, so that stores can filter what they hold: `name`, `target.digest`,
 * `labels.<key>`. Strings, finite numbers, bigints, booleans and Dates (ISO 8601) are values; an empty string,
 * null, undefined, arrays, bytes and records (a path that stops short) are absent, as containerd's adaptors report
 * an empty string as not present.
 *
 * Keys may themselves contain dots (labels such as `containerd.io/gc.root`): at each record, the whole remaining
 * path joined with `.` is tried as one key before descending by its first component, so `labels.a.b` finds
 * `labels['a.b']` as containerd's label maps do.
 */
export function adaptObject(obj: Readonly<Record<string, unknown>>): Adaptor {
  return (fieldpath) => (fieldpath.length === 0 ? undefined : lookup(obj, fieldpath));
}

function lookup(node: unknown, path: readonly string[]): string | undefined {
  if (path.length === 0) return leafValue(node);
  if (!isRecord(node)) return undefined;
  if (path.length > 1) {
    const joined = path.join('.');
    if (Object.hasOwn(node, joined)) return leafValue(node[joined]);
  }
  const [head, ...rest] = path;
  return Object.hasOwn(node, head!) ? lookup(node[head!], rest) : undefined;
}

function leafValue(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      return value === '' ? undefined : value;
    case 'number':
      return Number.isFinite(value) ? String(value) : undefined;
    case 'bigint':
    case 'boolean':
      return String(value);
    default:
      return value instanceof Date && !Number.isNaN(value.getTime()) ? value.toISOString() : undefined;
  }
}

function isRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
