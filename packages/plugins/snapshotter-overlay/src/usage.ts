import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { TimeSlice, fromSystemError, hasErrno, type SnapshotUsage } from '@berth/core';

/** st_blocks counts 512-byte units, whatever the filesystem's block size. */
const BLOCK_UNIT = 512n;

/**
 * What a directory tree takes on disk, as containerd's fs.DiskUsage counts it: every inode once (the root
 * included; a file with several hard links in the tree counts once) and, for each, the bytes allocated to it
 * (st_blocks × 512, so a sparse file counts what it holds and a directory its blocks). An entry that vanishes during
 * the walk is skipped; a root that does not exist is an error.
 *
 * The walk makes synchronous lstat/readdir calls (a few microseconds each, far cheaper than a promise per entry)
 * and lets the event loop run every few milliseconds, so a big tree never holds the daemon.
 */
export async function diskUsage(root: string, signal?: AbortSignal): Promise<SnapshotUsage> {
  const slice = new TimeSlice();
  // Only inodes with several links need remembering: a directory is visited once, so is a file with one link.
  const linked = new Set<string>();
  let size = 0n;
  let inodes = 0;
  /** Counts the entry at `path`; returns whether to descend into it. */
  const count = (path: string, mustExist = false): boolean => {
    const st = lstatSync(path, { bigint: true, throwIfNoEntry: mustExist });
    if (st === undefined) return false;
    if (!st.isDirectory() && st.nlink > 1n) {
      const id = `${st.dev}:${st.ino}`;
      if (linked.has(id)) return false;
      linked.add(id);
    }
    inodes++;
    size += st.blocks * BLOCK_UNIT;
    return st.isDirectory();
  };
  try {
    const dirs: string[] = count(root, true) ? [root] : [];
    while (dirs.length > 0) {
      const dir = dirs.pop()!;
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch (err) {
        if (hasErrno(err, 'ENOENT', 'ENOTDIR')) continue;
        throw err;
      }
      for (const name of names) {
        const path = join(dir, name);
        if (count(path)) dirs.push(path);
        signal?.throwIfAborted();
        await slice.pause();
      }
    }
  } catch (err) {
    throw fromSystemError(err, 'lstat');
  }
  return { size: Number(size), inodes };
}
