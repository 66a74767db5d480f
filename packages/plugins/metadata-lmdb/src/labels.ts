import { InvalidArgumentError, type Adaptor, type Labels } from '@berth/core';
import { validateLabels } from './validate.js';

/** Drops empty-valued labels (storage never keeps them, as containerd). */
export function cleanLabels(labels: Labels | undefined): Labels {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels ?? {})) if (v !== undefined && v !== '') out[k] = v;
  return out;
}

/**
 * Applies a label update with containerd's field-path semantics: no paths or `labels` replace all labels,
 * `labels.<key>` sets one label (or deletes it when the incoming value is absent or empty). Any other path is an
 * InvalidArgumentError naming `what`. Validates the result.
 */
export function applyLabelUpdate(
  current: Labels,
  incoming: Labels | undefined,
  fieldpaths: readonly string[] | undefined,
  what: string,
): Labels {
  let next: Record<string, string> = { ...current };
  if (!fieldpaths || fieldpaths.length === 0) {
    next = { ...(incoming ?? {}) };
  } else {
    for (const path of fieldpaths) {
      if (path.startsWith('labels.')) {
        const key = path.slice('labels.'.length);
        const value = incoming?.[key];
        if (value === undefined || value === '') delete next[key];
        else next[key] = value;
      } else if (path === 'labels') {
        next = { ...(incoming ?? {}) };
      } else {
        throw new InvalidArgumentError(`cannot update "${path}" field on ${what}`);
      }
    }
  }
  validateLabels(next);
  return cleanLabels(next);
}

/** containerd's checkMap: `labels.a.b` looks up the key `a.b`. */
export function labelsField(labels: Labels, rest: readonly string[]): string | undefined {
  if (rest.length === 0) return undefined;
  return Object.prototype.hasOwnProperty.call(labels, rest.join('.')) ? labels[rest.join('.')] : undefined;
}

/** Whether two label sets differ in a way that can drop a GC reference or root (a removed or changed label). */
export function labelsLostSomething(before: Labels, after: Labels): boolean {
  return Object.entries(before).some(([k, v]) => after[k] !== v);
}

export function adaptLabelled(fields: Record<string, string | undefined>, labels: Labels): Adaptor {
  return (fieldpath) => {
    if (fieldpath.length === 0) return undefined;
    const [head, ...rest] = fieldpath;
    if (head === 'labels') return labelsField(labels, rest);
    return rest.length === 0 ? fields[head!] : undefined;
  };
}
