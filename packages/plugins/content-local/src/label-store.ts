import { rename } from 'node:fs/promises';
import { cleanLabels, validateLabels, writeFileAtomic, type Labels, type Logger } from '@berth/core';
import { formatTimestamp, parseTimestamp, readTextIfExists } from './fs-util.js';
import { Mutex } from './mutex.js';

/** What the raw store keeps about a blob beside its bytes. */
export interface BlobMeta {
  readonly labels: Labels;
  readonly updatedAt: Date;
}

interface FileShape {
  version: 1;
  blobs: Record<string, { labels: Labels; updatedAt: string }>;
}

/**
 * Labels and update times of committed blobs, in one JSON file rewritten atomically on every change and held in
 * memory, so info/list never re-read it. Mutations are serialised and only applied in memory once on disk.
 * Only the raw store's own labels live here: under the metadata plugin, namespaced labels live in its database.
 */
export class LabelStore {
  private entries: Map<string, BlobMeta>;
  private readonly mutex = new Mutex();

  private constructor(
    private readonly path: string,
    entries: Map<string, BlobMeta>,
  ) {
    this.entries = entries;
  }

  static async open(path: string, log?: Logger): Promise<LabelStore> {
    const text = await readTextIfExists(path);
    const entries = new Map<string, BlobMeta>();
    if (text !== undefined) {
      try {
        const parsed = JSON.parse(text) as Partial<FileShape>;
        for (const [digest, raw] of Object.entries(parsed.blobs ?? {})) {
          const updatedAt = parseTimestamp(raw.updatedAt);
          if (!updatedAt || raw.labels === null || typeof raw.labels !== 'object') continue;
          entries.set(digest, { labels: cleanLabels(raw.labels), updatedAt });
        }
      } catch (err) {
        // Written atomically, so this is outside damage; keep it for inspection and start afresh.
        const aside = `${path}.corrupt-${Date.now()}`;
        await rename(path, aside);
        log?.warn('content label file unreadable, moved aside', { path, aside, error: err });
      }
    }
    return new LabelStore(path, entries);
  }

  get(digest: string): BlobMeta | undefined {
    const entry = this.entries.get(digest);
    return entry && { labels: { ...entry.labels }, updatedAt: entry.updatedAt };
  }

  digests(): string[] {
    return [...this.entries.keys()];
  }

  /** Replaces the labels of a blob (empty values dropped) and records its update time. Validates them first. */
  set(digest: string, labels: Labels, updatedAt: Date): Promise<BlobMeta> {
    return this.mutate((next) => {
      validateLabels(labels);
      const meta = { labels: cleanLabels(labels), updatedAt };
      next.set(digest, meta);
      return { labels: { ...meta.labels }, updatedAt };
    });
  }

  /**
   * Applies `change` to the current labels of a blob under the store's lock (a read-modify-write that cannot
   * interleave with another update). An invalid result changes nothing.
   */
  modify(digest: string, change: (current: Labels) => Labels, updatedAt: Date): Promise<BlobMeta> {
    return this.mutate((next) => {
      const labels = change({ ...(next.get(digest)?.labels ?? {}) });
      validateLabels(labels);
      const meta = { labels: cleanLabels(labels), updatedAt };
      next.set(digest, meta);
      return { labels: { ...meta.labels }, updatedAt };
    });
  }

  /** Forgets blobs (deleted, or committed afresh without labels). */
  delete(...digests: string[]): Promise<void> {
    if (!digests.some((d) => this.entries.has(d))) return Promise.resolve();
    return this.mutate((next) => {
      for (const d of digests) next.delete(d);
    });
  }

  private mutate<T>(fn: (next: Map<string, BlobMeta>) => T): Promise<T> {
    return this.mutex.run(async () => {
      const next = new Map(this.entries);
      const result = fn(next);
      const shape: FileShape = { version: 1, blobs: {} };
      for (const [digest, meta] of [...next].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        shape.blobs[digest] = { labels: meta.labels, updatedAt: formatTimestamp(meta.updatedAt) };
      }
      await writeFileAtomic(this.path, JSON.stringify(shape) + '\n');
      this.entries = next;
      return result;
    });
  }
}
