import {
  AlreadyExistsError,
  FailedPreconditionError,
  NotFoundError,
  type Labels,
  type NamespaceStore,
} from '@berth/core';
import type { Database, Records } from './database.js';
import { applyLabelUpdate, cleanLabels } from './labels.js';
import { depth, keys, type NamespaceRecord } from './schema.js';
import { validateLabels, validateNamespace } from './validate.js';

/** Creates the namespace record if it is missing (containerd creates `v1/<ns>` on first write). */
export function ensureNamespace(records: Records, ns: string): void {
  const key = keys.namespace(ns);
  if (!records.has(key)) records.put(key, { createdAt: Date.now() } satisfies NamespaceRecord);
}

export function namespaceExists(records: Records, ns: string): boolean {
  return records.has(keys.namespace(ns));
}

/**
 * What still lives in a namespace, in containerd's words (`images`, `blobs`, ...). As in containerd, leases and
 * ingests do not keep a namespace alive: deleting it drops them, and GC reclaims the backend data they held.
 */
export function namespaceContents(records: Records, ns: string): string[] {
  const out: string[] = [];
  if (records.hasBelow(keys.images(ns), depth.image)) out.push('images');
  if (records.hasBelow(keys.blobs(ns), depth.blob)) out.push('blobs');
  if (records.hasBelow(keys.containers(ns), depth.container)) out.push('containers');
  for (const snapshotter of records.childNames(keys.snapshots(ns))) {
    if (records.hasBelow([...keys.snapshots(ns), snapshotter], depth.snapshot)) {
      out.push(`snapshots on "${snapshotter}" snapshotter`);
    }
  }
  return out;
}

export class LmdbNamespaceStore implements NamespaceStore {
  constructor(private readonly db: Database) {}

  async create(name: string, labels: Labels = {}): Promise<void> {
    validateNamespace(name);
    validateLabels(labels);
    await this.db.update((r) => {
      if (namespaceExists(r, name)) throw new AlreadyExistsError(`namespace "${name}": already exists`);
      r.put(keys.namespace(name), { createdAt: Date.now() } satisfies NamespaceRecord);
      r.put(keys.namespaceLabels(name), cleanLabels(labels));
    });
  }

  async labels(name: string): Promise<Labels> {
    this.db.assertOpen();
    const r = this.db.records;
    if (!namespaceExists(r, name)) throw new NotFoundError(`namespace "${name}": not found`);
    return { ...(r.get<Labels>(keys.namespaceLabels(name)) ?? {}) };
  }

  async list(): Promise<string[]> {
    this.db.assertOpen();
    const r = this.db.records;
    return r.childNames(keys.root).filter((ns) => namespaceExists(r, ns));
  }

  async update(name: string, labels: Labels, fieldpaths?: readonly string[]): Promise<Labels> {
    validateNamespace(name);
    return this.db.update((r) => {
      const current = r.get<Labels>(keys.namespaceLabels(name)) ?? {};
      const next = applyLabelUpdate(current, labels, fieldpaths, `namespace "${name}"`);
      ensureNamespace(r, name);
      r.put(keys.namespaceLabels(name), next);
      return { ...next };
    });
  }

  async delete(name: string): Promise<void> {
    await this.db.update((r) => {
      if (!namespaceExists(r, name)) throw new NotFoundError(`namespace "${name}": not found`);
      const remaining = namespaceContents(r, name);
      if (remaining.length > 0) {
        throw new FailedPreconditionError(`namespace "${name}" must be empty, but it still has ${remaining.join(', ')}`);
      }
      r.removeTree(keys.namespace(name));
    }, 'delete');
  }
}
