import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError } from '../errdefs/index.js';

/** One regular file of a plugin package tree, as the tree digest sees it. */
export interface TreeFile {
  /** Relative, `/`-separated, no `.` or `..` segments. */
  readonly path: string;
  readonly executable: boolean;
  readonly size: number;
  /** Lower-case hex sha256 of the content. */
  readonly sha256: string;
}

/** Why a relative path from a package tree or tarball cannot be a file of an installed tree, if it cannot. */
export function treePathProblem(path: string): string | undefined {
  if (path.length === 0 || path.length > 1024) return 'empty or too long';
  if (path.startsWith('/') || path.includes('\\') || path.includes('\0')) return 'not a relative POSIX path';
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') return `has a "${segment}" segment`;
  }
  return undefined;
}

/**
 * The digest of a package tree: sha256 over one line per regular file, sorted by path (`<x|-> <sha256> <size>
 * <path>\n`). Directories are implied by the files in them; nothing else (links, devices) may appear. Computed from
 * a tarball at push (into the signed config blob) and from the unpacked tree at every start, so a file added,
 * removed, changed or made executable is seen.
 */
export function treeDigest(files: readonly TreeFile[]): string {
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const hash = createHash('sha256');
  let previous: string | undefined;
  for (const file of sorted) {
    const problem = treePathProblem(file.path);
    if (problem) throw new InvalidArgumentError(`plugin tree path ${JSON.stringify(file.path)}: ${problem}`);
    if (file.path === previous) throw new InvalidArgumentError(`plugin tree path ${JSON.stringify(file.path)} appears twice`);
    previous = file.path;
    hash.update(`${file.executable ? 'x' : '-'} ${file.sha256} ${file.size} ${file.path}\n`);
  }
  return `sha256:${hash.digest('hex')}`;
}

/** Every regular file under `dir`; a symbolic link or special file is refused (an installed tree has none). */
export async function listTree(dir: string): Promise<TreeFile[]> {
  const out: TreeFile[] = [];
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(join(dir, rel))).sort();
    for (const name of names) {
      const path = rel ? `${rel}/${name}` : name;
      const st = await lstat(join(dir, path));
      if (st.isDirectory()) await walk(path);
      else if (st.isFile()) out.push({ path, executable: (st.mode & 0o111) !== 0, size: st.size, sha256: await hashFile(join(dir, path)) });
      else throw new InvalidArgumentError(`plugin tree ${dir}: ${path} is not a regular file or directory`);
    }
  };
  await walk('');
  return out;
}

/** The tree digest of a directory as it is on disk now. */
export async function digestTree(dir: string): Promise<string> {
  return treeDigest(await listTree(dir));
}

function hashFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}
