// The reference tree and the comparator for "unpacks to the same tree as umoci": umociUnpack() unpacks a layout with
// Debian's umoci, snapshotTree() records what a directory holds (type, mode, owner, size, content hash, symlink
// target, device numbers, xattrs, hard-link groups), and compareTrees() lists every difference readably.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, readFile, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';

export const UMOCI = '/usr/bin/umoci';
export const GETFATTR = '/usr/bin/getfattr';
export const hasUmoci = () => existsSync(UMOCI);

/**
 * Unpacks `<layoutDir>:<refName>` with umoci into `bundleDir` (which must not exist) and returns its rootfs path.
 * As root it keeps owners; `rootless` maps them to the caller, as umoci --rootless does.
 * @param {string} layoutDir
 * @param {string} refName
 * @param {string} bundleDir
 * @param {{ rootless?: boolean }} [options]
 */
export function umociUnpack(layoutDir, refName, bundleDir, options = {}) {
  if (!hasUmoci()) throw new Error(`${UMOCI} is missing (apt-get install umoci)`);
  const args = ['unpack', ...(options.rootless ? ['--rootless'] : []), '--image', `${layoutDir}:${refName}`, bundleDir];
  const result = spawnSync(UMOCI, args, { encoding: 'utf8' });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`umoci ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return join(bundleDir, 'rootfs');
}

/**
 * @typedef {object} TreeEntry
 * @property {'file' | 'dir' | 'symlink' | 'fifo' | 'char' | 'block' | 'socket'} type
 * @property {number} mode permission bits with setuid/setgid/sticky (mode & 07777)
 * @property {number} uid
 * @property {number} gid
 * @property {number} [size] files only
 * @property {string} [sha256] files only
 * @property {string} [target] symlinks only
 * @property {string} [rdev] devices only, `major:minor`
 * @property {Record<string, string>} xattrs name -> hex value
 * @property {string} [linkGroup] files with several names: the first of them in path order (the same for all)
 * @property {number} [mtimeMs]
 */

/** @typedef {Map<string, TreeEntry>} Tree keyed by path relative to the root ('.' is the root itself) */

/** @param {import('node:fs').Stats} st */
function typeOf(st) {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  return 'socket';
}

/** getfattr prints unusual bytes of a name as \ooo octal escapes. @param {string} s */
function unescapeGetfattr(s) {
  const bytes = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\' && /^[0-7]{3}$/.test(s.slice(i + 1, i + 4))) {
      bytes.push(parseInt(s.slice(i + 1, i + 4), 8));
      i += 3;
    } else {
      bytes.push(...Buffer.from(/** @type {string} */ (s[i])));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * Every xattr in a tree (all namespaces getfattr can see; symlinks not followed), by absolute path, in one run.
 * @param {string} root
 * @returns {Map<string, Record<string, string>>}
 */
function readXattrs(root) {
  if (!existsSync(GETFATTR)) throw new Error(`${GETFATTR} is missing (apt-get install attr), or pass { xattrs: false }`);
  const result = spawnSync(GETFATTR, ['--absolute-names', '-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', root], { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (result.error) throw result.error;
  // exit 1 with output is normal when some file has none; only an empty answer with a message is a failure
  if (result.status !== 0 && !result.stdout) throw new Error(`getfattr on ${root} exited ${result.status}: ${result.stderr}`);
  /** @type {Map<string, Record<string, string>>} */
  const byPath = new Map();
  /** @type {Record<string, string> | undefined} */
  let current;
  for (const line of result.stdout.split('\n')) {
    if (line.startsWith('# file: ')) {
      current = {};
      byPath.set(unescapeGetfattr(line.slice('# file: '.length)).replace(/\/$/, ''), current);
    } else if (current && line.includes('=')) {
      const eq = line.indexOf('=');
      current[line.slice(0, eq)] = line.slice(eq + 1).replace(/^0x/, '');
    }
  }
  return byPath;
}

/**
 * Records what a directory tree holds.
 * @param {string} root
 * @param {{ xattrs?: boolean, mtime?: boolean, ignore?: (path: string) => boolean }} [options]
 *   xattrs: read them (default true); mtime: record mtimes (default false: appliers legitimately differ on
 *   directory mtimes); ignore: paths (relative) to leave out, with everything under them
 * @returns {Promise<Tree>}
 */
export async function snapshotTree(root, options = {}) {
  /** @type {Tree} */
  const tree = new Map();
  /** @type {Map<string, string[]>} */
  const inodes = new Map();
  const xattrs = options.xattrs === false ? new Map() : readXattrs(root);
  /** @param {string} rel */
  const visit = async (rel) => {
    if (rel !== '.' && options.ignore?.(rel)) return;
    const abs = rel === '.' ? root : join(root, rel);
    const st = await lstat(abs);
    const type = typeOf(st);
    /** @type {TreeEntry} */
    const entry = { type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, xattrs: xattrs.get(abs.replace(/\/$/, '')) ?? {} };
    if (options.mtime) entry.mtimeMs = st.mtimeMs;
    if (type === 'file') {
      entry.size = st.size;
      entry.sha256 = createHash('sha256').update(await readFile(abs)).digest('hex');
    } else if (type === 'symlink') {
      entry.target = await readlink(abs);
    } else if (type === 'char' || type === 'block') {
      entry.rdev = `${Math.floor(st.rdev / 256) & 0xfff}:${(st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00)}`;
    }
    if (type !== 'dir' && st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      inodes.set(key, [...(inodes.get(key) ?? []), rel]);
    }
    tree.set(rel, entry);
    if (type === 'dir') {
      for (const name of (await readdir(abs)).sort()) await visit(rel === '.' ? name : `${rel}/${name}`);
    }
  };
  await visit('.');
  for (const paths of inodes.values()) {
    if (paths.length < 2) continue; // the other names are outside the tree, or ignored
    const first = [...paths].sort()[0];
    for (const path of paths) /** @type {TreeEntry} */ (tree.get(path)).linkGroup = first;
  }
  return tree;
}

/**
 * @typedef {object} TreeDifference
 * @property {string} path
 * @property {string} field `presence`, `type`, `mode`, `uid`, `gid`, `size`, `content`, `target`, `rdev`,
 *   `xattr <name>`, `hard links` or `mtime`
 * @property {string} a how tree a has it
 * @property {string} b how tree b has it
 */

/** @param {number} mode */
const octal = (mode) => mode.toString(8).padStart(4, '0');

/**
 * Every difference between two trees (from snapshotTree), sorted by path.
 * @param {Tree} a
 * @param {Tree} b
 * @returns {TreeDifference[]}
 */
export function diffTrees(a, b) {
  /** @type {TreeDifference[]} */
  const out = [];
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort();
  for (const path of paths) {
    const x = a.get(path);
    const y = b.get(path);
    if (!x || !y) {
      out.push({ path, field: 'presence', a: x ? x.type : 'missing', b: y ? y.type : 'missing' });
      continue;
    }
    if (x.type !== y.type) {
      out.push({ path, field: 'type', a: x.type, b: y.type });
      continue;
    }
    /** @param {string} field @param {unknown} u @param {unknown} v */
    const check = (field, u, v) => {
      if (u !== v) out.push({ path, field, a: String(u ?? 'none'), b: String(v ?? 'none') });
    };
    if (x.mode !== y.mode) out.push({ path, field: 'mode', a: octal(x.mode), b: octal(y.mode) });
    check('uid', x.uid, y.uid);
    check('gid', x.gid, y.gid);
    check('size', x.size, y.size);
    if (x.size === y.size) check('content', x.sha256, y.sha256);
    check('target', x.target, y.target);
    check('rdev', x.rdev, y.rdev);
    for (const name of [...new Set([...Object.keys(x.xattrs), ...Object.keys(y.xattrs)])].sort()) {
      check(`xattr ${name}`, x.xattrs[name], y.xattrs[name]);
    }
    check('hard links', x.linkGroup ? `same inode as ${x.linkGroup}` : undefined, y.linkGroup ? `same inode as ${y.linkGroup}` : undefined);
    check('mtime', x.mtimeMs, y.mtimeMs);
  }
  return out;
}

/**
 * One line per difference: `data/x: mode 0644 (a) != 0600 (b)`.
 * @param {TreeDifference[]} differences
 * @param {{ a?: string, b?: string, limit?: number }} [labels]
 */
export function formatDifferences(differences, labels = {}) {
  const a = labels.a ?? 'a';
  const b = labels.b ?? 'b';
  const limit = labels.limit ?? 50;
  const lines = differences.slice(0, limit).map((d) => `${d.path}: ${d.field} ${d.a} (${a}) != ${d.b} (${b})`);
  if (differences.length > limit) lines.push(`... and ${differences.length - limit} more`);
  return lines.join('\n');
}

/**
 * Compares two directories; resolves to the differences (empty when they hold the same tree).
 * @param {string} a
 * @param {string} b
 * @param {Parameters<typeof snapshotTree>[1]} [options]
 */
export async function compareTrees(a, b, options = {}) {
  return diffTrees(await snapshotTree(a, options), await snapshotTree(b, options));
}
