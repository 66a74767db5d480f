/**
 * The native snapshotter's records (containerd keeps them in a bolt file per snapshotter, snapshots/storage): one
 * JSON document, `metadata.json`, held in memory and rewritten whole, atomically (core's writeFileAtomic: a flushed
 * temporary file renamed over it, then the directory flushed), after every change. Readers (stat, walk, mounts)
 * never touch the disk. A change that cannot be written is undone in memory, so memory and disk never disagree.
 *
 * Why a JSON file and not LMDB: a snapshotter holds one record per layer and per container (hundreds, rarely
 * thousands), every change is a whole-file rewrite of a few hundred bytes per record, and the fallback snapshotter
 * should need nothing native to load. The price is O(records) per change: serialising 2000 records of about 470
 * bytes (0.9 MB) took 13 ms of CPU (README); past a few thousand snapshots LMDB would be the better store.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DataLossError, hasErrno, syncDir, writeFileAtomic, type Labels, type SnapshotKind } from '@berth/core';

export const RECORDS_FILE = 'metadata.json';
const VERSION = 1;

export interface SnapshotRecord {
  readonly key: string;
  /** Decimal, never reused: the directory `snapshots/<id>` (active snapshots and views without a parent). */
  readonly id: string;
  readonly kind: SnapshotKind;
  readonly parent: string;
  readonly labels: Labels;
  readonly createdAt: string;
  readonly updatedAt: string;
  /** Disk usage measured at commit (committed snapshots only). */
  readonly size: number;
  readonly inodes: number;
}

interface RecordsFile {
  version: number;
  nextId: number;
  snapshots: SnapshotRecord[];
}

export class RecordStore {
  private constructor(
    private readonly path: string,
    private readonly records: Map<string, SnapshotRecord>,
    private next: number,
  ) {}

  /** Reads the records under `root` (none when the file does not exist yet). DataLossError when it does not parse. */
  static async open(root: string): Promise<RecordStore> {
    const path = join(root, RECORDS_FILE);
    let text: string | undefined;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if (!hasErrno(err, 'ENOENT')) throw err;
    }
    if (text === undefined) return new RecordStore(path, new Map(), 1);
    const doc = parse(text, path);
    return new RecordStore(path, new Map(doc.snapshots.map((r) => [r.key, r])), doc.nextId);
  }

  get(key: string): SnapshotRecord | undefined {
    return this.records.get(key);
  }

  all(): SnapshotRecord[] {
    return [...this.records.values()];
  }

  hasChildren(key: string): boolean {
    for (const r of this.records.values()) if (r.parent === key) return true;
    return false;
  }

  /** Makes every later id larger than `id` (the largest one found on disk, so ids are never reused after a crash). */
  reserveUpTo(id: number): void {
    this.next = Math.max(this.next, id + 1);
  }

  /** A fresh id. */
  allocateId(): string {
    return String(this.next++);
  }

  /**
   * Applies a change (records to put, keys to delete) and writes the file; if the write fails, the change is undone
   * and the error thrown. Callers serialise changes (the snapshotter's mutex).
   */
  async change(put: readonly SnapshotRecord[], remove: readonly string[] = []): Promise<void> {
    const before = new Map<string, SnapshotRecord | undefined>();
    for (const key of [...remove, ...put.map((r) => r.key)]) if (!before.has(key)) before.set(key, this.records.get(key));
    for (const key of remove) this.records.delete(key);
    for (const r of put) this.records.set(r.key, r);
    try {
      const doc: RecordsFile = { version: VERSION, nextId: this.next, snapshots: [...this.records.values()] };
      await writeFileAtomic(this.path, JSON.stringify(doc), { mode: 0o600 });
      await syncDir(join(this.path, '..'));
    } catch (err) {
      for (const [key, r] of before) {
        if (r) this.records.set(key, r);
        else this.records.delete(key);
      }
      throw err;
    }
  }
}

function parse(text: string, path: string): RecordsFile {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new DataLossError(`snapshot records ${path} do not parse: ${(err as Error).message}`, { cause: err });
  }
  const d = doc as Partial<RecordsFile> | null;
  if (d === null || typeof d !== 'object' || d.version !== VERSION || !Number.isSafeInteger(d.nextId) || !Array.isArray(d.snapshots)) {
    throw new DataLossError(`snapshot records ${path}: not a version ${VERSION} records file`);
  }
  for (const r of d.snapshots) {
    const ok =
      r !== null &&
      typeof r === 'object' &&
      typeof r.key === 'string' &&
      /^[1-9][0-9]*$/.test(r.id) &&
      ['active', 'view', 'committed'].includes(r.kind) &&
      typeof r.parent === 'string' &&
      r.labels !== null &&
      typeof r.labels === 'object' &&
      !Number.isNaN(Date.parse(r.createdAt)) &&
      !Number.isNaN(Date.parse(r.updatedAt));
    if (!ok) throw new DataLossError(`snapshot records ${path}: malformed record ${JSON.stringify(r).slice(0, 200)}`);
  }
  return d as RecordsFile;
}
