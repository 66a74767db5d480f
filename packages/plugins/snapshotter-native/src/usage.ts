/**
 * Disk usage of a tree as containerd's continuity fs.DiskUsage counts it: every inode once (hard links are one),
 * the root included, and its size as the blocks it occupies (st_blocks × 512), so sparse files count what they
 * use. Each directory's entries are stat'ed together, not one after another.
 */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { SnapshotUsage } from '@berth/core';

export async function diskUsage(root: string): Promise<SnapshotUsage> {
  const seen = new Set<string>();
  let size = 0;
  const count = async (path: string): Promise<boolean> => {
    const st = await lstat(path, { bigint: true });
    const id = `${st.dev}:${st.ino}`;
    if (!seen.has(id)) {
      seen.add(id);
      size += Number(st.blocks) * 512;
    }
    return st.isDirectory();
  };
  const walk = async (dir: string): Promise<void> => {
    const names = await readdir(dir);
    const dirs: string[] = [];
    for (let i = 0; i < names.length; i += 256) {
      const batch = names.slice(i, i + 256).map((n) => join(dir, n));
      const isDir = await Promise.all(batch.map(count));
      batch.forEach((p, j) => isDir[j] && dirs.push(p));
    }
    for (const d of dirs) await walk(d);
  };
  await count(root);
  await walk(root);
  return { size, inodes: seen.size };
}
