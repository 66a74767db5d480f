/**
 * Label maps as every store keeps them (containerd's rules): empty values are never stored, an update follows
 * field paths (`labels` replaces all, `labels.<key>` sets or removes one key), and the result is validated.
 */
import { InvalidArgumentError } from '../errdefs/index.js';
import { validateLabels } from '../identifiers/validate.js';
import type { Labels } from '../kinds/context.js';

/** Drops empty-valued and non-string labels. `fromEntries` defines own properties, so `__proto__` stays a label. */
export function cleanLabels(labels: Readonly<Record<string, unknown>> | undefined): Labels {
  return Object.fromEntries(
    Object.entries(labels ?? {}).filter((e): e is [string, string] => typeof e[1] === 'string' && e[1] !== ''),
  );
}

/** Whether a field path addresses labels (`labels` or `labels.<key>`; `labels.` names the empty key, which validation refuses, as containerd does). */
export function isLabelPath(path: string): boolean {
  return path === 'labels' || path.startsWith('labels.');
}

/**
 * Applies a label update with containerd's field-path semantics: no paths or `labels` replace all labels,
 * `labels.<key>` sets one label (or deletes it when the incoming value is absent or empty). Any other path is an
 * InvalidArgumentError `cannot update "<path>" field on <what>`. Validates and cleans the result.
 */
export function applyLabelUpdate(current: Labels, incoming: Labels | undefined, fieldpaths: readonly string[] | undefined, what: string): Labels {
  // A Map, so that keys such as `__proto__` are labels like any other.
  const given = new Map(Object.entries(incoming ?? {}));
  let next = new Map(Object.entries(current));
  if (!fieldpaths || fieldpaths.length === 0) {
    next = new Map(given);
  } else {
    for (const path of fieldpaths) {
      if (path === 'labels') {
        next = new Map(given);
      } else if (isLabelPath(path)) {
        const key = path.slice('labels.'.length);
        const value = given.get(key);
        if (value === undefined || value === '') next.delete(key);
        else next.set(key, value);
      } else {
        throw new InvalidArgumentError(`cannot update ${JSON.stringify(path)} field on ${what}`);
      }
    }
  }
  const result = Object.fromEntries(next);
  validateLabels(result);
  return cleanLabels(result);
}
