import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { open, type Database as LmdbDatabase, type RootDatabase } from 'lmdb';
import { FailedPreconditionError, UnavailableError, dbCommitFailure, isDbCommitFailure, type Logger } from '@berth/core';
import { countedKind, RecordCounts, type Delta } from './counts.js';
import { RWLock } from './rwlock.js';
import { INGEST_SEQ_KEY, SCHEMA_VERSION, SNAPSHOT_SEQ_KEY, VERSION_KEY, type Key } from './schema.js';

export type MutationKind = 'delete' | 'write';

/** Sorts after every key part lmdb's ordered-binary encoding produces for strings and numbers. */
const RANGE_END = Buffer.from([0xff]);
/** Records read per LMDB range query by Records.scan. */
const SCAN_BATCH = 256;

type LmdbKey = Parameters<LmdbDatabase['get']>[0];
const lk = (key: readonly unknown[]): LmdbKey => key as unknown as LmdbKey;

/**
 * Key/value access to the metadata records. Inside a `Database.txn` callback every call reads and writes the open
 * write transaction (read-your-writes); outside it, reads see the last committed state (one consistent snapshot per
 * synchronous block). Writes are only allowed inside a transaction callback.
 */
export class Records {
  /** Where puts and removes of counted keys go while a transaction body runs (counts.ts). */
  delta?: Delta;

  constructor(private readonly db: LmdbDatabase<unknown, LmdbKey>) {}

  get<T>(key: Key): T | undefined {
    return this.db.get(lk(key)) as T | undefined;
  }

  has(key: Key): boolean {
    return this.db.doesExist(lk(key));
  }

  put(key: Key, value: unknown): void {
    if (this.delta) this.count(key, value);
    this.db.putSync(lk(key), value);
  }

  remove(key: Key): void {
    if (this.delta) this.count(key, undefined);
    this.db.removeSync(lk(key));
  }

  /** Notes what writing `value` (undefined: removing) at `key` changes in the counts. */
  private count(key: Key, value: unknown): void {
    const counted = countedKind(key);
    if (!counted) return;
    const delta = this.delta!;
    if (counted.kind === 'blobs') {
      const before = this.db.get(lk(key)) as { size?: number } | undefined;
      const after = value as { size?: number } | undefined;
      RecordCounts.note(delta, 'blobs', counted.series, (after ? 1 : 0) - (before ? 1 : 0));
      RecordCounts.note(delta, 'blob_bytes', counted.series, (after?.size ?? 0) - (before?.size ?? 0));
      return;
    }
    const existed = this.db.doesExist(lk(key));
    const exists = value !== undefined;
    if (existed !== exists) RecordCounts.note(delta, counted.kind, counted.series, exists ? 1 : -1);
  }

  /** Records strictly below `prefix` whose key has exactly `depth` parts (all depths when omitted). */
  entries<T>(prefix: Key, depth?: number): Array<{ key: string[]; value: T }> {
    const out: Array<{ key: string[]; value: T }> = [];
    for (const { key, value } of this.db.getRange(this.below(prefix))) {
      const parts = key as unknown as string[];
      if (depth === undefined || parts.length === depth) out.push({ key: parts, value: value as T });
    }
    return out;
  }

  /**
   * The records of entries(), one at a time for walks that yield to the event loop (list). They are read in
   * batches of SCAN_BATCH from one explicit read transaction: one consistent snapshot for the whole walk, however
   * many turns the caller takes, and no LMDB cursor left open between turns. The caller must finish or return()
   * the iteration (for...of does, also on break or throw), which ends the transaction.
   */
  *scan<T>(prefix: Key, depth?: number): Generator<{ key: string[]; value: T }, void, undefined> {
    const transaction = this.db.useReadTransaction();
    try {
      let { start } = this.below(prefix);
      const { end } = this.below(prefix);
      let exclusiveStart = false;
      for (;;) {
        const batch = [...this.db.getRange({ start, end, exclusiveStart, limit: SCAN_BATCH, transaction })];
        for (const { key, value } of batch) {
          const parts = key as unknown as string[];
          if (depth === undefined || parts.length === depth) yield { key: parts, value: value as T };
        }
        if (batch.length < SCAN_BATCH) return;
        start = batch[batch.length - 1]!.key;
        exclusiveStart = true;
      }
    } finally {
      transaction.done();
    }
  }

  /** The keys of scan() without their values (index walks), in batches from one read transaction likewise. */
  *scanKeys(prefix: Key, depth?: number): Generator<string[], void, undefined> {
    const transaction = this.db.useReadTransaction();
    try {
      let { start } = this.below(prefix);
      const { end } = this.below(prefix);
      let exclusiveStart = false;
      for (;;) {
        const batch = [...this.db.getKeys({ start, end, exclusiveStart, limit: SCAN_BATCH, transaction } as Parameters<LmdbDatabase['getKeys']>[0])];
        for (const key of batch) {
          const parts = key as unknown as string[];
          if (depth === undefined || parts.length === depth) yield parts;
        }
        if (batch.length < SCAN_BATCH) return;
        start = batch[batch.length - 1]!;
        exclusiveStart = true;
      }
    } finally {
      transaction.done();
    }
  }

  /** How many keys lie strictly below `prefix` (counted by LMDB, no record decoded). */
  countBelow(prefix: Key): number {
    return this.db.getKeysCount(this.below(prefix) as Parameters<LmdbDatabase['getKeysCount']>[0]);
  }

  /** Whether anything lives strictly below `prefix`. */
  hasBelow(prefix: Key, depth?: number): boolean {
    for (const key of this.db.getKeys(this.below(prefix))) {
      if (depth === undefined || (key as unknown as string[]).length === depth) return true;
    }
    return false;
  }

  /** The distinct key parts directly below `prefix` (skip-scans, so big sub-trees cost one seek each). */
  childNames(prefix: Key): string[] {
    const names: string[] = [];
    let start: unknown[] = [...prefix, null];
    for (;;) {
      let next: string | undefined;
      for (const key of this.db.getKeys({ start: lk(start), end: lk([...prefix, RANGE_END]), limit: 1 })) {
        next = String((key as unknown as unknown[])[prefix.length]);
      }
      if (next === undefined) return names;
      names.push(next);
      start = [...prefix, next, RANGE_END];
    }
  }

  /** Removes `prefix` itself and everything below it. */
  removeTree(prefix: Key): number {
    const doomed = [...this.db.getKeys(this.below(prefix))];
    for (const key of doomed) {
      if (this.delta) this.count(key as unknown as Key, undefined);
      this.db.removeSync(key);
    }
    if (this.has(prefix)) {
      this.remove(prefix);
      return doomed.length + 1;
    }
    return doomed.length;
  }

  private below(prefix: Key): { start: LmdbKey; end: LmdbKey } {
    return { start: lk([...prefix, null]), end: lk([...prefix, RANGE_END]) };
  }
}

export interface DatabaseOptions {
  /** The LMDB file (its lock file sits beside it). */
  readonly path: string;
  readonly log: Logger;
  /** Initial map size in bytes; 0 lets lmdb start small and grow. */
  readonly mapSize?: number;
  readonly maxReaders?: number;
}

/** One mutation in progress: its transactions, and what it tells listeners once it is over. */
export interface Mutation {
  /**
   * Runs `fn` atomically in a durable write transaction; `kind` (or `kind(result)`) says what a successful commit
   * did: `delete` when it removed something that could make data collectable.
   */
  txn<T>(fn: (records: Records) => T, kind?: MutationKind | ((result: T) => MutationKind)): Promise<T>;
}

/**
 * The LMDB environment plus the concurrency rules of the store:
 * - every mutation holds the GC lock shared for its whole duration (its metadata transactions *and* the raw content
 *   store calls that must be atomic with them, such as a backend commit followed by the blob record);
 * - garbage collection holds it exclusively, so it never observes a half-done mutation (containerd's wlock);
 * - `dirty` counts deleting mutations since the last collection, `dirtyContent` says whether the raw content store
 *   may hold unreferenced data and `dirtySnapshotters` which raw snapshotters may (containerd's dirty / dirtyCS /
 *   dirtySS).
 */
export class Database {
  readonly records: Records;
  readonly lock = new RWLock();
  readonly log: Logger;
  dirty = 0;
  /** True at start so that the first collection also sweeps whatever a crash may have orphaned. */
  dirtyContent = true;
  /** Raw snapshotters that may hold snapshots no record names; `all` at start, for the same reason as dirtyContent. */
  dirtySnapshotters: Set<string> | 'all' = 'all';
  /** What /v1/metrics reports of the records (counts.ts). */
  readonly counts = new RecordCounts();
  private closed = false;
  private readonly listeners = new Set<(kind: MutationKind) => void>();

  private constructor(
    private readonly root: RootDatabase,
    private readonly db: LmdbDatabase<unknown, LmdbKey>,
    private readonly path: string,
    log: Logger,
  ) {
    this.records = new Records(db);
    this.log = log;
  }

  /** What the LMDB environment holds and uses, for /v1/metrics. */
  stats(): { records: number; usedBytes: number; mapBytes: number; readers: number; maxReaders: number } {
    const env = this.root.getStats() as { pageSize: number; lastPageNumber: number; mapSize: number; numReaders: number; maxReaders: number };
    const records = (this.db.getStats() as { entryCount: number }).entryCount;
    return { records, usedBytes: (env.lastPageNumber + 1) * env.pageSize, mapBytes: env.mapSize, readers: env.numReaders, maxReaders: env.maxReaders };
  }

  static async open(options: DatabaseOptions): Promise<Database> {
    await mkdir(dirname(options.path), { recursive: true });
    const root = open({
      path: options.path,
      noSubdir: true,
      maxDbs: 4,
      // Pages are written with pwrite, which fails cleanly on a full disk. A writable map (useWritemap) sizes the
      // file up front, sparse, and a store into a hole of a full tmpfs kills the process with SIGBUS.
      useWritemap: false,
      // With event-turn batching lmdb-js starts each batch with an internal write whose promise nobody can
      // handle: a failed commit (ENOSPC) then rejects it unhandled, which ends the process. Without it, every
      // write belongs to a transaction whose promise a caller awaits.
      eventTurnBatching: false,
      ...(options.mapSize ? { mapSize: options.mapSize } : {}),
      ...(options.maxReaders ? { maxReaders: options.maxReaders } : {}),
    });
    // Plain msgpack maps, not msgpackr's records: without shared structures every record carried its own structure
    // definitions, and decoding one compiled a reader for each (a third of a 2,000-container list, and garbage).
    // Records version 1 wrote decode either way; a reader of version 1 would take these maps for Map objects, so
    // they come with version 2 (checkSchema).
    // (msgpackr's own option, which lmdb-js hands to its encoder; lmdb-js's types do not list it.)
    const msgpackOptions = { useRecords: false } as Record<string, unknown>;
    const db = root.openDB<unknown, LmdbKey>({ name: 'meta', encoding: 'msgpack', ...msgpackOptions });
    const database = new Database(root, db, options.path, options.log);
    try {
      await database.checkSchema();
      database.countAll();
    } catch (err) {
      await root.close();
      throw err;
    }
    return database;
  }

  /**
   * The starting counts, in one pass before anything else can write. Containers and images have no keys below
   * their records, so LMDB counts their ranges without decoding anything; leases and snapshots are counted by key
   * depth, and blobs are read for their sizes.
   */
  private countAll(): void {
    const r = this.records;
    const delta: Delta = new Map();
    for (const ns of r.childNames(['v1'])) {
      RecordCounts.note(delta, 'containers', ns, r.countBelow(['v1', ns, 'containers']));
      RecordCounts.note(delta, 'images', ns, r.countBelow(['v1', ns, 'images']));
      for (const _ of r.scanKeys(['v1', ns, 'leases'], 4)) RecordCounts.note(delta, 'leases', ns, 1);
      for (const { value } of r.scan<{ size?: number }>(['v1', ns, 'content', 'blob'], 5)) {
        RecordCounts.note(delta, 'blobs', ns, 1);
        RecordCounts.note(delta, 'blob_bytes', ns, value.size ?? 0);
      }
      for (const snapshotter of r.childNames(['v1', ns, 'snapshots'])) {
        for (const _ of r.scanKeys(['v1', ns, 'snapshots', snapshotter], 5)) RecordCounts.note(delta, 'snapshots', `${ns}\0${snapshotter}`, 1);
      }
    }
    this.counts.apply(delta);
  }

  private async checkSchema(): Promise<void> {
    const version = this.records.get<unknown>(VERSION_KEY);
    if (version === undefined) {
      await this.txn((r) => {
        if (r.get(VERSION_KEY) === undefined) r.put(VERSION_KEY, SCHEMA_VERSION);
      });
      return;
    }
    if (typeof version !== 'number' || !Number.isInteger(version)) {
      throw new FailedPreconditionError(`metadata database has an unreadable schema version ${JSON.stringify(version)}`);
    }
    if (version > SCHEMA_VERSION) {
      throw new FailedPreconditionError(
        `metadata database schema version ${version} is newer than the supported version ${SCHEMA_VERSION}`,
      );
    }
    if (version < SCHEMA_VERSION) {
      // Version 1 differs only in how records are encoded (msgpackr records), which this decoder reads as well:
      // marking the database 2 is the whole migration, and keeps a version 1 reader from misreading newer records.
      await this.txn((r) => {
        if (r.get(VERSION_KEY) === version) r.put(VERSION_KEY, SCHEMA_VERSION);
      });
    }
  }

  /**
   * Runs `fn` in one atomic write transaction and returns once the commit is flushed to disk. No lock is taken.
   * A commit that fails (a full disk) writes nothing and rejects with UnknownError `write <path>: <reason>`; the
   * environment stays usable, and commits succeed again once there is space.
   */
  async txn<T>(fn: (records: Records) => T): Promise<T> {
    this.assertOpen();
    // The body runs synchronously, so the delta it leaves on `records` is its own whenever lmdb-js runs it.
    let delta: Delta | undefined;
    const body = () => {
      this.records.delta = new Map();
      try {
        return fn(this.records);
      } finally {
        delta = this.records.delta;
        this.records.delta = undefined;
      }
    };
    try {
      const result = (await this.db.childTransaction(body)) as T;
      if (delta) this.counts.apply(delta);
      await this.db.flushed;
      return result;
    } catch (err) {
      // What `fn` threw comes through unchanged; only lmdb-js's own commit failures are translated.
      if (isDbCommitFailure(err)) throw await dbCommitFailure(err, this.path);
      throw err;
    }
  }

  /** Runs a mutation holding the GC lock shared, then notifies listeners of what it committed. */
  async mutate<T>(fn: (m: Mutation) => Promise<T>): Promise<T> {
    this.assertOpen();
    let committed: MutationKind | undefined;
    const mutation: Mutation = {
      txn: async <R>(body: (records: Records) => R, kind: MutationKind | ((result: R) => MutationKind) = 'write') => {
        const result = await this.txn(body);
        if ((typeof kind === 'function' ? kind(result) : kind) === 'delete') {
          this.dirty++;
          committed = 'delete';
        } else {
          committed ??= 'write';
        }
        return result;
      },
    };
    try {
      return await this.lock.shared(async () => {
        this.assertOpen();
        return fn(mutation);
      });
    } finally {
      if (committed) this.emit(committed);
    }
  }

  /** Shorthand for a mutation made of a single transaction. */
  update<T>(fn: (records: Records) => T, kind: MutationKind | ((result: T) => MutationKind) = 'write'): Promise<T> {
    return this.mutate((m) => m.txn(fn, kind));
  }

  /** Runs `fn` with no mutation in progress and none starting until it returns (garbage collection). */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    this.assertOpen();
    return this.lock.exclusive(async () => {
      this.assertOpen();
      return fn();
    });
  }

  /** Allocates the next backend ingest counter inside a transaction. */
  nextIngestSequence(records: Records): number {
    const next = (records.get<number>(INGEST_SEQ_KEY) ?? 0) + 1;
    records.put(INGEST_SEQ_KEY, next);
    return next;
  }

  /** Allocates the next backend snapshot counter inside a transaction. */
  nextSnapshotSequence(records: Records): number {
    const next = (records.get<number>(SNAPSHOT_SEQ_KEY) ?? 0) + 1;
    records.put(SNAPSHOT_SEQ_KEY, next);
    return next;
  }

  /** Notes that a raw snapshotter may now hold a snapshot no record names. */
  markSnapshotterDirty(name: string): void {
    if (this.dirtySnapshotters !== 'all') this.dirtySnapshotters.add(name);
  }

  onMutation(listener: (kind: MutationKind) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(kind: MutationKind): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(kind);
      } catch (err) {
        this.log.warn('mutation listener failed', { error: err });
      }
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Waits for running mutations and collections, then closes the environment. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.lock.exclusive(async () => {
      if (this.closed) return;
      this.closed = true;
      await this.root.close();
    });
  }

  assertOpen(): void {
    if (this.closed) throw new UnavailableError('metadata store is closed');
  }
}
