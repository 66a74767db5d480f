// Layers that try to write outside the target: each is refused with an invalid-argument error that names the entry,
// and nothing outside the target changes (a canary file's hash, the listing of the target's parent, /etc/passwd).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { linkSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expectFailure } from '@berth/core/testing';
import type { Mount } from '@berth/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compress, gnuTar, hasRoot, mediaTypeOf, openTestDiffer, putBlob, removeDir, tempDir, treeOf } from './testing-fixtures/layers.js';

const hash = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

describe.skipIf(!hasRoot())('Apply refuses layers that escape the target', () => {
  let work: string;
  let source: string;
  let outside: string;
  let t: Awaited<ReturnType<typeof openTestDiffer>>;
  let before: { canary: string; listing: string[]; outside: string[]; passwd: string; passwdLinks: number };

  const snapshot = () => ({
    canary: hash(join(outside, 'canary')),
    listing: readdirSync(work).sort(),
    outside: readdirSync(outside).sort(),
    passwd: hash('/etc/passwd'),
    passwdLinks: statSync('/etc/passwd').nlink,
  });

  beforeEach(async () => {
    work = tempDir();
    source = join(work, 'source');
    outside = join(work, 'outside');
    mkdirSync(source);
    mkdirSync(outside);
    writeFileSync(join(outside, 'canary'), 'do not touch');
    t = await openTestDiffer();
  });
  afterEach(async () => {
    await t.close();
    removeDir(work);
  });

  /** A GNU tar layer of `names` (with -P, so GNU tar keeps `../` and `/` that --transform puts in). */
  const layer = async (names: string[], transforms: string[] = [], drop: string[] = []) => {
    let tar = gnuTar(source, names, { extra: ['-P', ...transforms.map((x) => `--transform=${x}`)] });
    if (drop.length > 0) {
      // The entry a hard link points at is removed from the archive, leaving the link alone.
      const file = join(work, 'layer.tar');
      writeFileSync(file, tar);
      const r = spawnSync('tar', ['--delete', '-P', '-f', file, '--', ...drop]);
      if (r.status !== 0) throw new Error(r.stderr.toString());
      tar = readFileSync(file);
    }
    return putBlob(t.store, t.ctx, compress(tar, 'gzip'), mediaTypeOf.gzip);
  };

  const targets: Record<string, () => { mounts: Mount[]; root: string }> = {
    'bind mount': () => {
      const root = join(work, 'target');
      mkdirSync(root);
      return { root, mounts: [{ type: 'bind', source: root, options: ['rbind'] }] };
    },
    'overlay upper dir': () => {
      const root = join(work, 'upper');
      const lower = join(work, 'lower');
      mkdirSync(root);
      mkdirSync(join(work, 'wd'));
      mkdirSync(lower);
      // A lower layer's own symlink out of the tree: never written through either.
      symlinkSync(outside, join(lower, 'lowerlink'));
      return { root, mounts: [{ type: 'overlay', source: 'overlay', options: [`workdir=${join(work, 'wd')}`, `upperdir=${root}`, `lowerdir=${lower}`] }] };
    },
  };

  for (const [kind, makeTarget] of Object.entries(targets)) {
    describe(kind, () => {
      let target: ReturnType<typeof makeTarget> | undefined;
      beforeEach(() => {
        target = undefined;
      });
      const refused = async (desc: Awaited<ReturnType<typeof layer>>, message: string | RegExp) => {
        target ??= makeTarget();
        const { root, mounts } = target;
        before = snapshot();
        const err = await expectFailure(t.differ.apply(t.ctx, desc, mounts), 'invalid-argument', message);
        expect(err.message).toContain(desc.digest);
        expect(snapshot()).toEqual(before);
        return root;
      };

      it('a ../ name', async () => {
        writeFileSync(join(source, 'escape.txt'), 'out');
        const root = await refused(await layer(['escape.txt'], ['s,^escape.txt$,../escape.txt,']), 'escapes the root');
        expect(readdirSync(root)).toEqual([]);
      });

      it('a symlink pointing outside, then a file under it', async () => {
        symlinkSync(outside, join(source, 'evil'));
        mkdirSync(join(source, 'evil-dir'));
        writeFileSync(join(source, 'evil-dir/x.txt'), 'through the link');
        await refused(await layer(['evil', 'evil-dir/x.txt'], ['s,^evil-dir,evil,']), /evil\/x\.txt: evil is a symbolic link/);
      });

      it('a relative symlink climbing out, then a file under it', async () => {
        symlinkSync('../../outside', join(source, 'up'));
        writeFileSync(join(source, 'x'), 'x');
        await refused(await layer(['up', 'x'], ['s,^x$,up/x,']), 'up is a symbolic link');
      });

      it('an absolute symlink chain, then a file under it', async () => {
        symlinkSync('/', join(source, 'hop1'));
        symlinkSync(`hop1${outside}`, join(source, 'hop2'));
        writeFileSync(join(source, 'x'), 'x');
        await refused(await layer(['hop1', 'hop2', 'x'], ['s,^x$,hop2/canary,']), 'hop2 is a symbolic link');
      });

      it('a hard link to ../../etc/passwd and one to /etc/passwd', async () => {
        writeFileSync(join(source, 'a'), 'x');
        linkSync(join(source, 'a'), join(source, 'b'));
        await refused(await layer(['a', 'b'], ['s,^a$,../../../../etc/passwd,'], ['../../../../etc/passwd']), 'escapes the root');
        // An absolute target is read inside the root (as containerd does), where there is no etc/passwd.
        await refused(await layer(['a', 'b'], ['s,^a$,/etc/passwd,'], ['/etc/passwd']), 'hard link target /etc/passwd does not exist');
      });

      if (kind === 'overlay upper dir') {
        it("a file under a lower layer's symlink to outside", async () => {
          writeFileSync(join(source, 'x'), 'x');
          const root = await refused(await layer(['x'], ['s,^x$,lowerlink/canary,']), 'lowerlink is a symbolic link in a lower layer');
          expect(treeOf(root).size).toBe(0);
        });
      }
    });
  }
});
