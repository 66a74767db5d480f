/**
 * Record counts for /v1/metrics (containers, images, leases, blobs and their bytes, snapshots per snapshotter, by
 * namespace), kept up to date as transactions commit instead of counted per scrape. `Records` reports every put
 * and remove of a counted key (one extra read of that key, to tell a new record from a rewrite, and a removed
 * blob's size) into the delta of the transaction in progress; the delta is applied once the transaction has
 * committed and dropped when it throws. The starting figures come from one pass over the database at open.
 */
import type { MetricFamily } from '@berth/core';
import type { Key } from './schema.js';

type Kind = 'containers' | 'images' | 'leases' | 'blobs' | 'blob_bytes' | 'snapshots';

/** What a counted key is, or undefined for every other key (sub-keys, indexes, ingests, labels). */
export function countedKind(key: Key): { kind: Exclude<Kind, 'blob_bytes'>; series: string } | undefined {
  if (key[0] !== 'v1') return undefined;
  const ns = String(key[1]);
  if (key.length === 4) {
    const kind = key[2];
    if (kind === 'containers' || kind === 'images' || kind === 'leases') return { kind, series: ns };
    return undefined;
  }
  if (key.length === 5) {
    if (key[2] === 'content' && key[3] === 'blob') return { kind: 'blobs', series: ns };
    if (key[2] === 'snapshots') return { kind: 'snapshots', series: `${ns}\0${String(key[3])}` };
  }
  return undefined;
}

export type Delta = Map<string, number>;

export class RecordCounts {
  private readonly counts = new Map<string, number>();

  /** Adds `by` to one series (`<kind>\0<series>`) of a delta. */
  static note(delta: Delta, kind: Kind, series: string, by: number): void {
    const k = `${kind}\0${series}`;
    delta.set(k, (delta.get(k) ?? 0) + by);
  }

  apply(delta: Delta): void {
    for (const [k, by] of delta) {
      const next = (this.counts.get(k) ?? 0) + by;
      if (next === 0) this.counts.delete(k);
      else this.counts.set(k, next);
    }
  }

  families(): MetricFamily[] {
    const by = new Map<Kind, { labels: Record<string, string>; value: number }[]>();
    for (const [k, value] of this.counts) {
      const [kind, ns, snapshotter] = k.split('\0') as [Kind, string, string?];
      const labels: Record<string, string> = snapshotter === undefined ? { namespace: ns } : { namespace: ns, snapshotter };
      if (!by.has(kind)) by.set(kind, []);
      by.get(kind)!.push({ labels, value });
    }
    const family = (kind: Kind, name: string, help: string): MetricFamily => ({ name, help, type: 'gauge', samples: by.get(kind) ?? [] });
    return [
      family('containers', 'berth_containers', 'Containers in the metadata store, by namespace.'),
      family('images', 'berth_images', 'Images in the metadata store, by namespace.'),
      family('leases', 'berth_leases', 'Active leases, by namespace.'),
      family('blobs', 'berth_content_blobs', 'Content blobs visible in each namespace (a blob shared by two namespaces counts in both).'),
      family('blob_bytes', 'berth_content_blob_bytes', 'Bytes of the content blobs visible in each namespace.'),
      family('snapshots', 'berth_snapshots', 'Snapshots in the metadata store, by namespace and snapshotter.'),
    ];
  }
}
