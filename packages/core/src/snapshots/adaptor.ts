import type { Adaptor } from '../filters/filter.js';
import type { SnapshotInfo } from '../kinds/snapshots.js';

/**
 * The fields a snapshot filter can test (containerd's storage adaptSnapshot): `kind` (active, view, committed),
 * `name`, `parent` and `labels.<key>` (a key may contain dots: `labels."containerd.io/gc.root"`). `name` and
 * `parent` are present even when empty, so `parent==""` matches snapshots without a parent, as in containerd.
 */
export function adaptSnapshot(info: SnapshotInfo): Adaptor {
  return (fieldpath) => {
    switch (fieldpath[0]) {
      case 'kind':
        return fieldpath.length === 1 ? info.kind : undefined;
      case 'name':
        return fieldpath.length === 1 ? info.name : undefined;
      case 'parent':
        return fieldpath.length === 1 ? info.parent : undefined;
      case 'labels': {
        if (fieldpath.length < 2) return undefined;
        const key = fieldpath.slice(1).join('.');
        return Object.hasOwn(info.labels, key) ? info.labels[key] : undefined;
      }
      default:
        return undefined;
    }
  };
}
