// The snapshotter's own record store (containerd's snapshots/storage metastore, on LMDB instead of bolt).
import { open, type Database as LmdbDatabase, type RootDatabase } from 'lmdb';
import {
  FailedPreconditionError,
  InvalidArgumentError,
  UnavailableError,
  dbCommitFailure,
  isDbCommitFailure,
  type Labels,
  type SnapshotKind,
} from '@berth/core';

/** One snapshot as stored, under its key (an active or view snapshot) or its name (a committed one). */
export interface SnapshotRecord {
  /** Names the directory `snapshots/<id>`; never reused, and kept when an active snapshot is committed. */
  readonly id: number;
  readonly kind: SnapshotKind;
  /** The parent's key ('' for none). */
  readonly parent: string;
  readonly labels: Labels;
  /** Epoch milliseconds. */
  readonly createdAt: number;
  readonly updatedAt: number;
  /** Usage of `fs`, computed at commit (committed snapshots only). */
  readonly size?: number;
  readonly inodes?: number;
}

/*
 * Key layout (lmdb's ordered-binary arrays, values msgpack):
 *   ['version']                  -> SCHEMA_VERSION
 *   ['seq']                      -> the last id handed out
 *   ['snapshot', key]            -> SnapshotRecord
 *   ['child', parentId, childId] -> the child's key (containerd's `parents` bucket): Remove's "has children"
 *                                   check is one seek, not a scan
 * A child link is written with the child and rewritten when the child is committed under its name.
 */
type Key = readonly (string | number)[];
const VERSION_KEY: Key = ['version'];
const SEQ_KEY: Key = ['seq'];
const SCHEMA_VERSION = 1;
const snapshotKey = (key: string): Key => ['snapshot', key];
const childKey = (parentId: number, childId: number): Key => ['child', parentId, childId];

/** Sorts before and after every key part ordered-binary produces for strings and numbers. */
const RANGE_START = null;
const RANGE_END = Buffer.from([0xff]);
/** Records read per range query by scan(). */
const SCAN_BATCH = 256;

/**
 * LMDB refuses keys over 1978 bytes. A raw key is the metadata plugin's `<namespace>/<n>/<key>` (a namespace of at
 * most 76 bytes, a client key of at most 1024); this leaves room for both and for the array encoding.
 */
export const MAX_KEY_BYTES = 1536;

type LmdbKey = Parameters<LmdbDatabase['get']>[0];
const lk = (key: Key): LmdbKey => key as unknown as LmdbKey;

/** Refuses what cannot be a key of this store, with the reason; '' is refused too (a parent of '' means none). */
export function validateKey(key: unknown, what: string): asserts key is string {
  if (typeof key !== 'string' || key === '') throw new InvalidArgumentError(`${what} must not be empty: invalid argument`);
  if (key.includes('\0')) throw new InvalidArgumentError(`${what} ${JSON.stringify(key.slice(0, 64))} contains NUL: invalid argument`);
  const bytes = Buffer.byteLength(key);
  if (bytes > MAX_KEY_BYTES) {
    throw new InvalidArgumentError(`${what} is ${bytes} bytes, more than ${MAX_KEY_BYTES}: invalid argument`);
  }
}

/** Reads and writes of one write transaction (read-your-writes). Only valid inside the `txn` callback. */
export interface Txn {
  get(key: string): SnapshotRecord | undefined;
  put(key: string, record: SnapshotRecord): void;
  remove(key: string): void;
  link(parentId: number, childId: number, childKey: string): void;
  unlink(parentId: number, childId: number): void;
  hasChildren(id: number): boolean;
  /** The next id: the sequence is advanced inside the transaction, so a rolled-back one hands the id out again. */
  nextId(): number;
}

export class RecordStore {
  private closed = false;

  private constructor(
    private readonly root: RootDatabase,
    private readonly db: LmdbDatabase<unknown, LmdbKey>,
    readonly path: string,
  ) {}

  /**
   * Opens (creating) the environment at `path`. lmdb's default durability (every commit synced) is kept; as in
   * the metadata plugin, no writable map (pwrite fails cleanly on a full disk, a store into a sparse map is
   * SIGBUS) and no event-turn batching (its internal writes have promises nobody handles).
   */
  static async open(path: string): Promise<RecordStore> {
    const root = open({ path, noSubdir: true, maxDbs: 2, useWritemap: false, eventTurnBatching: false });
    const db = root.openDB<unknown, LmdbKey>({ name: 'snapshots', encoding: 'msgpack' });
    const store = new RecordStore(root, db, path);
    try {
      const version = db.get(lk(VERSION_KEY));
      if (version === undefined) await store.txn(() => db.putSync(lk(VERSION_KEY), SCHEMA_VERSION));
      else if (version !== SCHEMA_VERSION) {
        throw new FailedPreconditionError(`snapshot records ${path} have schema version ${JSON.stringify(version)}, this store reads ${SCHEMA_VERSION}`);
      }
    } catch (err) {
      await root.close();
      throw err;
    }
    return store;
  }

  /** The committed record (outside a transaction) of `key`. */
  get(key: string): SnapshotRecord | undefined {
    this.assertOpen();
    return this.db.get(lk(snapshotKey(key))) as SnapshotRecord | undefined;
  }

  /**
   * Runs `fn` in a write transaction of its own (a child transaction of lmdb-js's batch: what `fn` throws rolls
   * back only its writes) and resolves once the commit is on disk. A commit that fails (a full disk) writes
   * nothing and rejects with UnknownError `write <path>: <reason>`.
   */
  async txn<T>(fn: (txn: Txn) => T): Promise<T> {
    this.assertOpen();
    const db = this.db;
    const txn: Txn = {
      get: (key) => db.get(lk(snapshotKey(key))) as SnapshotRecord | undefined,
      put: (key, record) => void db.putSync(lk(snapshotKey(key)), record),
      remove: (key) => void db.removeSync(lk(snapshotKey(key))),
      link: (parentId, childId, key) => void db.putSync(lk(childKey(parentId, childId)), key),
      unlink: (parentId, childId) => void db.removeSync(lk(childKey(parentId, childId))),
      hasChildren: (id) => {
        for (const _ of db.getKeys({ start: lk(['child', id, RANGE_START] as unknown as Key), end: lk(['child', id, RANGE_END] as unknown as Key), limit: 1 })) return true;
        return false;
      },
      nextId: () => {
        const id = ((db.get(lk(SEQ_KEY)) as number | undefined) ?? 0) + 1;
        db.putSync(lk(SEQ_KEY), id);
        return id;
      },
    };
    try {
      const result = (await db.childTransaction(() => fn(txn))) as T;
      await db.flushed;
      return result;
    } catch (err) {
      if (isDbCommitFailure(err)) throw await dbCommitFailure(err, this.path);
      throw err;
    }
  }

  /**
   * Every record, in key order, read in batches from one read transaction: one consistent snapshot for the whole
   * walk however many event-loop turns the caller takes between items. The caller must finish or return() the
   * iteration (for...of does, also on break or throw), which ends the transaction.
   */
  *scan(): Generator<{ key: string; record: SnapshotRecord }, void, undefined> {
    this.assertOpen();
    const transaction = this.db.useReadTransaction();
    try {
      let start: LmdbKey = lk(['snapshot', RANGE_START] as unknown as Key);
      const end = lk(['snapshot', RANGE_END] as unknown as Key);
      let exclusiveStart = false;
      for (;;) {
        const batch = [...this.db.getRange({ start, end, exclusiveStart, limit: SCAN_BATCH, transaction })];
        for (const { key, value } of batch) {
          yield { key: String((key as unknown as Key)[1]), record: value as SnapshotRecord };
        }
        if (batch.length < SCAN_BATCH) return;
        start = batch[batch.length - 1]!.key;
        exclusiveStart = true;
      }
    } finally {
      transaction.done();
    }
  }

  /** The ids of every committed record, as directory names. */
  ids(): Set<string> {
    const ids = new Set<string>();
    for (const { record } of this.scan()) ids.add(String(record.id));
    return ids;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Closes the environment once its writes are flushed. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.db.flushed;
    await this.root.close();
  }

  assertOpen(): void {
    if (this.closed) throw new UnavailableError('overlayfs snapshotter is closed: unavailable');
  }
}
