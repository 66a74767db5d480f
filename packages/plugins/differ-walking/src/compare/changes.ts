// The changes from a lower tree to an upper one, by walking both in step (continuity's double walk, which containerd's
// walking differ uses): names in byte order per directory; a name only in the lower tree is a deletion (a whole
// deleted directory is one deletion), only in the upper one an addition (with everything below it), in both a
// modification unless the two are the same file by containerd's test (type, mode, owner, device, xattrs; for
// non-directories also size and mtime, and the content or link target when the mtimes have no sub-second part).
// Synchronous: it runs in a worker, pulled one change at a time by the tar writer.
import { closeSync, lstatSync, openSync, readSync, readdirSync, readlinkSync, type BigIntStats } from 'node:fs';
import { lgetxattr, llistxattr } from '@berth/sys';

export type ChangeKind = 'add' | 'modify' | 'delete';

export interface Change {
  readonly kind: ChangeKind;
  /** Relative path, '/'-separated, never empty. */
  readonly rel: string;
  /** The upper tree's stat of it (absent for a deletion). */
  readonly stat?: BigIntStats;
}

/** xattrs that describe the host, not the content: never compared or carried in a layer. */
export function carriedXattr(name: string): boolean {
  return !name.startsWith('trusted.') && name !== 'security.selinux';
}

export function readXattrs(path: string): Map<string, Buffer> | undefined {
  let names: string[];
  try {
    names = llistxattr(path);
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOTSUP') return undefined;
    throw err;
  }
  let out: Map<string, Buffer> | undefined;
  for (const name of names) {
    if (!carriedXattr(name)) continue;
    try {
      (out ??= new Map()).set(name, lgetxattr(path, name));
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENODATA') throw err;
    }
  }
  return out;
}

const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function list(path: string): string[] {
  return readdirSync(path).sort(byName);
}

export function* changes(lower: string, upper: string): Generator<Change> {
  yield* walkDir(lower, upper, '', true);
}

function* walkDir(lower: string, upper: string, rel: string, lowerHere: boolean): Generator<Change> {
  const upperNames = list(rel ? `${upper}/${rel}` : upper);
  const lowerNames = lowerHere ? list(rel ? `${lower}/${rel}` : lower) : [];
  let i = 0;
  let j = 0;
  while (i < upperNames.length || j < lowerNames.length) {
    const u = upperNames[i];
    const l = lowerNames[j];
    if (u === undefined || (l !== undefined && l < u)) {
      yield { kind: 'delete', rel: join(rel, l!) };
      j++;
      continue;
    }
    const child = join(rel, u);
    const us = lstatSync(`${upper}/${child}`, { bigint: true });
    if (l !== u) {
      i++;
      yield { kind: 'add', rel: child, stat: us };
      if (us.isDirectory()) yield* walkDir(lower, upper, child, false);
      continue;
    }
    i++;
    j++;
    const ls = lstatSync(`${lower}/${child}`, { bigint: true });
    if (us.isDirectory()) {
      const bothDirs = ls.isDirectory();
      if (!bothDirs || !sameFile(ls, us, `${lower}/${child}`, `${upper}/${child}`)) yield { kind: 'modify', rel: child, stat: us };
      yield* walkDir(lower, upper, child, bothDirs);
      continue;
    }
    if (!sameFile(ls, us, `${lower}/${child}`, `${upper}/${child}`)) yield { kind: 'modify', rel: child, stat: us };
  }
}

function join(rel: string, name: string): string {
  return rel ? `${rel}/${name}` : name;
}

/** continuity's sameFile, with every carried xattr compared (containerd compares security.capability only). */
function sameFile(a: BigIntStats, b: BigIntStats, pa: string, pb: string): boolean {
  if (a.dev === b.dev && a.ino === b.ino) return true;
  if (a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid || a.rdev !== b.rdev) return false;
  if (!sameXattrs(readXattrs(pa), readXattrs(pb))) return false;
  if (a.isDirectory()) return true;
  if (a.size !== b.size) return false;
  const sa = a.mtimeNs / 1_000_000_000n;
  const sb = b.mtimeNs / 1_000_000_000n;
  if (sa !== sb) return false;
  const na = a.mtimeNs % 1_000_000_000n;
  const nb = b.mtimeNs % 1_000_000_000n;
  if (na === 0n && nb === 0n) {
    // Whole-second times (a filesystem or an archive that truncates them) say too little: look at the content.
    if (a.isSymbolicLink()) return readlinkSync(pa) === readlinkSync(pb);
    if (a.size === 0n) return true;
    return sameContent(pa, pb);
  }
  return na === nb;
}

function sameXattrs(a: Map<string, Buffer> | undefined, b: Map<string, Buffer> | undefined): boolean {
  const sa = a?.size ?? 0;
  if (sa !== (b?.size ?? 0)) return false;
  if (sa === 0) return true;
  for (const [k, v] of a!) {
    const w = b!.get(k);
    if (!w || !w.equals(v)) return false;
  }
  return true;
}

function sameContent(pa: string, pb: string): boolean {
  const fa = openSync(pa, 'r');
  try {
    const fb = openSync(pb, 'r');
    try {
      const ba = Buffer.allocUnsafe(1 << 16);
      const bb = Buffer.allocUnsafe(1 << 16);
      for (;;) {
        const na = readSync(fa, ba, 0, ba.length, null);
        const nb = readSync(fb, bb, 0, bb.length, null);
        if (na !== nb || !ba.subarray(0, na).equals(bb.subarray(0, nb))) return false;
        if (na === 0) return true;
      }
    } finally {
      closeSync(fb);
    }
  } finally {
    closeSync(fa);
  }
}
