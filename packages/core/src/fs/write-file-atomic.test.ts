import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { errdefOf, isNoSpace, wireMessageOf } from '../errdefs/index.js';
import { mountTmpfs, tmpfsUnavailable, type Tmpfs } from '../testing/tmpfs.js';
import { writeFileAtomic } from './write-file-atomic.js';

describe('writeFileAtomic', () => {
  it('names the target in its errors', async () => {
    const err = await writeFileAtomic('/nonexistent-berth-dir/uuid', 'x').catch((e: unknown) => e);
    expect(wireMessageOf(err)).toBe('open /nonexistent-berth-dir/uuid: no such file or directory');
  });

  describe.skipIf(tmpfsUnavailable() !== undefined)('on a full disk', () => {
    let fs: Tmpfs | undefined;
    afterEach(async () => {
      await fs?.dispose();
      fs = undefined;
    });

    it('fails with the disk error, keeps the old content, leaves no temporary file and works once there is space', async () => {
      fs = await mountTmpfs(1 << 20);
      const target = join(fs.path, 'state.json');
      await writeFile(target, 'old');
      await fs.fill();
      const err = await writeFileAtomic(target, Buffer.alloc(64 * 1024, 1)).catch((e: unknown) => e);
      expect(errdefOf(err)).toBe('unknown');
      expect(isNoSpace(err)).toBe(true);
      expect(wireMessageOf(err)).toBe(`write ${target}: no space left on device`);
      expect(await readFile(target, 'utf8')).toBe('old');
      expect((await readdir(fs.path)).sort()).toEqual(['filler', 'state.json']);
      await fs.unfill();
      await writeFileAtomic(target, 'new');
      expect(await readFile(target, 'utf8')).toBe('new');
    });
  });
});
