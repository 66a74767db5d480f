import { statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import { UnknownError } from './errdefs.js';

/**
 * A failed commit of an embedded LMDB environment (lmdb-js), as every store on one reports it: the metadata plugin's
 * and a snapshotter's own record store.
 *
 * How lmdb-js reports a commit that failed (a full disk, an I/O error): every transaction of the failed batch is
 * rejected with a generic `Commit failed (see commitError for details)` whose `commitError` promise rejects with
 * the real error (a numeric `code`: an errno, or an MDB_* code). Nobody else handles that promise: left alone, it
 * becomes an unhandled rejection.
 */
export interface LmdbCommitFailure extends Error {
  readonly commitError: PromiseLike<never>;
}

export function isDbCommitFailure(err: unknown): err is LmdbCommitFailure {
  const inner = (err as { commitError?: { then?: unknown } } | null)?.commitError;
  return err instanceof Error && typeof inner?.then === 'function';
}

/** lmdb-js rejects `commitError` in the same callback as the transactions, so this is only a safety net. */
const CAUSE_WAIT_MS = 1000;

const ENOSPC = 28;
const EDQUOT = 122;
const EIO = 5;
/** Below this much free space, LMDB's EIO is the filesystem filling up, not a failing disk. */
const NEARLY_FULL_BYTES = 1 << 20;

/**
 * The error a caller gets for a failed commit: UnknownError (containerd's class for a full disk: bolt's write
 * error reaches the client as codes.Unknown) worded like Go's `write <path>: no space left on device`.
 */
export async function dbCommitFailure(err: LmdbCommitFailure, path: string): Promise<UnknownError> {
  const cause = await realCause(err);
  const code = (cause as { code?: unknown } | undefined)?.code;
  let description: string;
  if (code === ENOSPC || code === EDQUOT || (code === EIO && (await nearlyFull(path)))) {
    // LMDB turns a short write (the filesystem filled up during the write) into EIO: free space tells them apart.
    description = 'no space left on device';
  } else if (cause instanceof Error && typeof code === 'number' && code > 0) {
    description = cause.message.charAt(0).toLowerCase() + cause.message.slice(1);
  } else {
    description = `commit failed${cause instanceof Error ? `: ${cause.message}` : ''}`;
  }
  return new UnknownError(`write ${path}: ${description}`, { cause: cause ?? err });
}

async function realCause(err: LmdbCommitFailure): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), CAUSE_WAIT_MS);
    timer.unref();
  });
  try {
    return await Promise.race([Promise.resolve(err.commitError).then(() => undefined, (cause: unknown) => cause), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function nearlyFull(path: string): Promise<boolean> {
  try {
    const fs = await statfs(dirname(path));
    // root may use the blocks reserved for it, so its disk is full only when those are gone too.
    const free = (process.geteuid?.() === 0 ? fs.bfree : fs.bavail) * fs.bsize;
    return free < NEARLY_FULL_BYTES;
  } catch {
    return false;
  }
}
