import type { Adaptor, Labels } from '@berth/core';

// Label cleaning and field-path updates are core's (one implementation for every store).
export { applyLabelUpdate, cleanLabels } from '@berth/core';

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
