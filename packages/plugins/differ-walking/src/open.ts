// Builds the walking differ from its config: the worker pool, the decompressors found on this host, and the
// directory of temporary mounts (emptied of what a crashed daemon left mounted there).
import { mkdir, readdir, rmdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '@berth/core';
import { MNT_DETACH, unmountAll } from '@berth/sys';
import type { DifferWalkingConfig } from './config.js';
import { describeDecompressors, findDecompressors } from './decompressors.js';
import { WalkingDiffer, type WalkingDifferOptions } from './walking-differ.js';
import { WorkerPool } from './worker/pool.js';

export interface OpenOptions {
  readonly content: WalkingDifferOptions['content'];
  /** The plugin's root directory; temporary mounts go in `<root>/tmpmounts`. */
  readonly root: string;
  readonly log: Logger;
  readonly config: DifferWalkingConfig;
}

/** The walking differ with what a plugin instance needs besides: `close()`, a description for introspection. */
export class WalkingDifferInstance extends WalkingDiffer {
  constructor(
    options: WalkingDifferOptions,
    readonly pool: WorkerPool,
    private readonly description: string,
  ) {
    super(options);
  }

  describe(): string {
    return this.description;
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}


export async function openWalkingDiffer(o: OpenOptions): Promise<WalkingDifferInstance> {
  const decompressors = findDecompressors(o.config.gzip_decompressor);
  const tmpRoot = join(o.root, 'tmpmounts');
  await mkdir(tmpRoot, { recursive: true, mode: 0o700 });
  await clearTmpMounts(tmpRoot, o.log);
  const size = o.config.workers > 0 ? o.config.workers : Math.max(2, availableParallelism());
  const pool = new WorkerPool({ size, idleMs: o.config.worker_idle_seconds * 1000 });
  const description = `${describeDecompressors(decompressors)}; workers: ${size}`;
  if (!decompressors.gzip) o.log.info('no igzip or pigz on PATH: gzip layers are decompressed by zlib (slower)');
  if (!decompressors.zstd) o.log.warn('no zstd on PATH: zstd layers cannot be applied (apt-get install zstd)');
  return new WalkingDifferInstance(
    { content: o.content, pool, decompressors, tmpRoot, devices: o.config.devices, compressionLevel: o.config.compression_level, log: o.log },
    pool,
    description,
  );
}

/** Unmounts and removes what a daemon killed mid-apply left in tmpmounts (rmdir only: never deletes through a mount). */
async function clearTmpMounts(tmpRoot: string, log: Logger): Promise<void> {
  for (const name of await readdir(tmpRoot)) {
    const dir = join(tmpRoot, name);
    try {
      await unmountAll(dir, MNT_DETACH);
      await rmdir(dir);
    } catch (err) {
      log.warn('cannot clear a temporary mount left by an earlier run', { dir, error: err });
    }
  }
}
