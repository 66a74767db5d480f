// Entry names of a layer, made safe: a name is cleaned lexically (as Go's filepath.Clean, which containerd applies)
// and refused when it climbs above the root. Leading '/' and './' are dropped: a layer's names are relative to the
// root whatever they look like.
import { invalidLayer } from './errors.js';

/** The components of `name` under the root ([] for the root itself); throws when `..` would leave the root. */
export function cleanName(name: string, what = 'entry'): string[] {
  if (name.includes('\0')) throw invalidLayer(`${what} ${JSON.stringify(name)}: a name cannot contain a NUL byte`);
  const parts: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (parts.length === 0) throw invalidLayer(`${what} ${JSON.stringify(name)} escapes the root of the layer`);
      parts.pop();
    } else {
      parts.push(c);
    }
  }
  return parts;
}

/** The relative path of the first `n` components. */
export function prefixOf(parts: readonly string[], n: number): string {
  return parts.slice(0, n).join('/');
}

/** The parent of a relative path ('' for the root's children). */
export function parentOf(rel: string): string {
  const slash = rel.lastIndexOf('/');
  return slash < 0 ? '' : rel.slice(0, slash);
}

export function joinRel(parent: string, name: string): string {
  return parent === '' ? name : `${parent}/${name}`;
}
