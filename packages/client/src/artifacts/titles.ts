// The one rule for file names in an artifact (`org.opencontainers.image.title`): a relative path of plain
// components, below the directory it is pulled into. oras-go's file store refuses path traversal on write
// (ErrPathTraversalDisallowed, unless --allow-path-traversal) and, since GHSA-8xwf-rjm4-xvhv, symlinks in the
// parent path that lead out of the directory; berth refuses both always, and absolute titles too.
import { lstat, mkdir, realpath } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { InvalidArgumentError, PermissionDeniedError } from '@berth/core';

/** A title, checked: non-empty, relative, no `.`/`..`/empty components, no NUL or backslash. Returns it unchanged. */
export function checkTitle(title: string): string {
  const bad = (why: string) => new InvalidArgumentError(`file title ${JSON.stringify(title)}: ${why}`);
  if (typeof title !== 'string' || title === '') throw bad('empty');
  if (title.includes('\0')) throw bad('contains NUL');
  if (title.includes('\\')) throw bad('contains a backslash');
  if (title.startsWith('/')) throw bad('an absolute path (titles are relative to the directory an artifact is pulled into)');
  const parts = title.split('/');
  if (parts.some((p) => p === '..')) throw bad('path traversal (a .. component)');
  if (parts.some((p) => p === '' || p === '.')) throw bad('empty or . path component');
  return title;
}

const inside = (base: string, target: string) => {
  const rel = relative(base, target);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !rel.startsWith(sep);
};

/**
 * Where a title is written below `dir` (which must exist): makes the missing parent directories, and refuses a
 * parent that is a symlink or not a directory, so that nothing lands outside `dir` whatever is already in it.
 * The final component may exist (it is replaced by rename, which never follows a symlink there).
 */
export async function targetPath(dir: string, title: string): Promise<string> {
  checkTitle(title);
  const base = await realpath(dir);
  const parts = title.split('/');
  let current = base;
  for (const part of parts.slice(0, -1)) {
    current = join(current, part);
    let info;
    try {
      info = await lstat(current);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await mkdir(current);
      continue;
    }
    if (info.isSymbolicLink()) throw new PermissionDeniedError(`file title ${JSON.stringify(title)}: ${current} is a symlink (refused: it could lead out of ${dir})`);
    if (!info.isDirectory()) throw new InvalidArgumentError(`file title ${JSON.stringify(title)}: ${current} exists and is not a directory`);
  }
  const target = join(current, parts[parts.length - 1]!);
  if (!inside(base, target)) throw new PermissionDeniedError(`file title ${JSON.stringify(title)} leads out of ${dir}`);
  try {
    if ((await lstat(target)).isDirectory()) throw new InvalidArgumentError(`file title ${JSON.stringify(title)}: ${target} is a directory`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return target;
}
