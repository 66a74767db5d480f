// Applies the entries of one layer's tar to a directory, synchronously and strictly in order (the tar reader calls
// it; it runs inside an apply worker). Two forms of whiteout:
//  - 'overlay': the directory is an overlay snapshot's own upper dir. A deleted entry becomes a 0/0 character
//    device, an opaque directory gets `trusted.overlay.opaque=y`, and a missing parent directory is made with the
//    owner, mode, times and xattrs it has in the nearest lower dir, so the merged view shows what it showed before.
//  - 'delete': the directory holds the whole tree (a native snapshot, a mounted overlay): whiteouts delete.
//
// Path safety, without openat2: every component above an entry is checked with lstat (a verified real directory is
// remembered until something under it is removed), so no entry is ever written through a symbolic link, whether the
// layer made it or a lower layer did; the entry itself is created with O_EXCL/O_NOFOLLOW (mkdir, symlink, link and
// mknod never follow a final symlink either), and whatever was there is unlinked first, never written through (a
// hard link to a file outside the layer keeps its content). Names that climb above the root are refused.
// The directory is the applier's own while it applies (a snapshot being prepared): nothing else renames inside it,
// so the checks cannot be raced.
import {
  closeSync,
  fchmodSync,
  fchownSync,
  chmodSync,
  constants,
  lchownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeSync,
  ftruncateSync,
  type BigIntStats,
  type Stats,
} from 'node:fs';
import { futimens, lgetxattr, llistxattr, lsetxattr, lutimens, makedev, mknod, S_IFBLK, S_IFCHR, S_IFIFO } from '@berth/sys';
import { TarType, type TarEntry, type TarTime } from '../tar/header.js';
import type { TarSink } from '../tar/reader.js';
import { invalidLayer, LayerError } from './errors.js';
import { cleanName, joinRel, parentOf, prefixOf } from './paths.js';

export type WhiteoutMode = 'overlay' | 'delete';
/** What to do with character and block devices in a layer (0/0 character devices, overlay's whiteouts, always pass). */
export type DevicePolicy = 'create' | 'skip' | 'refuse';

export interface LayerTarget {
  /** Absolute path of the directory to apply into. */
  readonly root: string;
  readonly whiteouts: WhiteoutMode;
  /** Overlay lowerdirs, nearest first: where a missing parent directory's metadata comes from. */
  readonly lowers: readonly string[];
  readonly devices: DevicePolicy;
}

export interface ApplyStats {
  entries: number;
  files: number;
  whiteouts: number;
  /** Device entries skipped by the `skip` policy. */
  skippedDevices: number;
  /** `trusted.*` xattrs dropped (containerd refuses to set admin attributes from an archive). */
  droppedXattrs: number;
  /** xattrs the filesystem does not support (ENOTSUP), or `user.*` on a symlink or device (EPERM): dropped. */
  unsupportedXattrs: number;
}

const OPAQUE_MARKER = '.wh..wh..opq';
const WHITEOUT_PREFIX = '.wh.';
const OVERLAY_OPAQUE = 'trusted.overlay.opaque';
/** O_CLOEXEC (Linux; Node's constants do not list it): spawned decompressors must not inherit layer files. */
const O_CLOEXEC = 0o2000000;
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW | O_CLOEXEC;

interface OpenFile {
  readonly fd: number;
  readonly entry: TarEntry;
  readonly rel: string;
  readonly path: string;
  /** A PAX 1.0 sparse file: the map is read from the front of the data, then the data goes to its offsets. */
  sparse?: SparseState;
}

interface SparseState {
  header: Buffer[];
  headerBytes: number;
  /** [offset, length] segments, once the map is complete. */
  segments?: [number, number][];
  index: number;
  written: number;
  /** Bytes of the map (padded to a block) still to skip. */
  skip: number;
}

export class LayerWriter implements TarSink {
  readonly stats: ApplyStats = { entries: 0, files: 0, whiteouts: 0, skippedDevices: 0, droppedXattrs: 0, unsupportedXattrs: 0 };
  private readonly root: string;
  /** Relative paths known to be real directories (not symlinks) in the target. '' is the root. */
  private readonly knownDirs = new Set<string>(['']);
  /** Paths this layer wrote, and the directories that hold them (an opaque marker or whiteout keeps those). */
  private readonly unpacked = new Set<string>();
  private readonly holders = new Set<string>();
  /** Overlay whiteouts this layer made (a directory later put there must hide the lower one: opaque). */
  private readonly madeWhiteouts = new Set<string>();
  /** Directory times, set last: creating anything inside a directory changes its mtime. */
  private readonly dirTimes: { rel: string; atime: TarTime; mtime: TarTime }[] = [];
  private current: OpenFile | undefined;

  constructor(private readonly target: LayerTarget) {
    this.root = target.root.replace(/\/+$/, '') || '/';
  }

  private abs(rel: string): string {
    return rel === '' ? this.root : `${this.root}/${rel}`;
  }

  entry(e: TarEntry): void {
    this.stats.entries++;
    const parts = cleanName(e.name);
    if (parts.length === 0) {
      // The root itself (`./`): its metadata belongs to the snapshot, as in containerd ("resolved to root").
      return;
    }
    const base = parts[parts.length - 1]!;
    const rel = parts.join('/');
    if (base.startsWith(WHITEOUT_PREFIX)) {
      this.ensureParents(parts, e.name);
      const parent = parentOf(rel);
      this.stats.whiteouts++;
      if (base === OPAQUE_MARKER) this.opaque(parent);
      else this.whiteout(joinRel(parent, validWhiteoutName(base, e.name)), e);
      return;
    }
    this.ensureParents(parts, e.name);
    switch (e.type) {
      case TarType.File:
        this.file(rel, e);
        return; // marked unpacked when complete
      case TarType.Dir:
        this.dir(rel, e);
        break;
      case TarType.Symlink:
        this.symlink(rel, e);
        break;
      case TarType.Link:
        this.hardlink(rel, e);
        break;
      case TarType.Char:
      case TarType.Block:
        if (!this.device(rel, e)) return;
        break;
      case TarType.Fifo:
        this.node(rel, e, S_IFIFO, 0n);
        break;
      default:
        throw invalidLayer(`${e.name}: unsupported tar entry type ${JSON.stringify(e.type)}`);
    }
    this.markUnpacked(rel);
  }

  data(chunk: Buffer): void {
    const f = this.current;
    if (!f) return; // a whiteout, the root, a skipped device: data (if any) is dropped
    if (f.sparse) {
      this.sparseData(f, f.sparse, chunk);
      return;
    }
    writeAll(f.fd, chunk, null);
  }

  end(): void {
    const f = this.current;
    this.current = undefined;
    if (!f) return;
    try {
      if (f.sparse) {
        const s = f.sparse;
        if (!s.segments || s.index < s.segments.length) throw invalidLayer(`${f.entry.name}: sparse file data is shorter than its map`);
        ftruncateSync(f.fd, f.entry.sparseRealSize!);
      }
      const e = f.entry;
      fchownSync(f.fd, e.uid, e.gid);
      // After chown, which clears setuid/setgid; explicit, so the umask never matters.
      fchmodSync(f.fd, e.mode);
      // After chown too, which drops security.capability.
      this.xattrs(f.path, e);
      futimens(f.fd, atimeOf(e), bound(e.mtime));
    } finally {
      closeSync(f.fd);
    }
    this.stats.files++;
    this.markUnpacked(f.rel);
  }

  /** After the last entry: directory times, in the order the entries came. */
  finish(): void {
    if (this.current) {
      closeSync(this.current.fd);
      this.current = undefined;
    }
    for (const { rel, atime, mtime } of this.dirTimes) {
      const st = lstatOrUndefined(this.abs(rel));
      if (st?.isDirectory()) lutimens(this.abs(rel), atime, mtime);
    }
  }

  /** Closes a file left open by a failure. */
  abort(): void {
    if (this.current) {
      try {
        closeSync(this.current.fd);
      } catch {
        // already closed
      }
      this.current = undefined;
    }
  }

  // --- parents -----------------------------------------------------------------------------------------------

  /**
   * Every directory above the entry exists and is a real directory; missing ones are made (mkparent). In an upper
   * dir, a missing one is looked up in the lower dirs: a symlink or a non-directory there is refused as it would be
   * in the merged tree, and one this layer whited out becomes a new, opaque directory.
   */
  private ensureParents(parts: readonly string[], name: string): void {
    let creating = false;
    let hidden = false; // an ancestor was whited out by this layer: the lower dirs have nothing below it
    for (let n = 1; n < parts.length; n++) {
      const rel = prefixOf(parts, n);
      if (!creating && this.knownDirs.has(rel)) continue;
      if (!creating) {
        const st = lstatOrUndefined(this.abs(rel));
        if (st?.isDirectory()) {
          this.knownDirs.add(rel);
          continue;
        }
        if (st && this.madeWhiteouts.has(rel)) {
          this.remove(rel);
          hidden = true;
        } else if (st?.isSymbolicLink()) {
          throw invalidLayer(`${name}: ${rel} is a symbolic link, and a layer cannot write through one`);
        } else if (st) {
          throw invalidLayer(`${name}: ${rel} is not a directory`);
        }
        creating = true; // everything below a missing directory is missing too
      }
      this.makeParent(rel, name, hidden);
      this.knownDirs.add(rel);
    }
  }

  private makeParent(rel: string, name: string, hidden: boolean): void {
    const path = this.abs(rel);
    const lower = this.target.whiteouts === 'overlay' && !hidden ? this.lowerDir(rel, name) : undefined;
    mkdirSync(path, 0o700);
    if (hidden) {
      lsetxattr(path, OVERLAY_OPAQUE, 'y');
    }
    if (!lower) {
      chmodSync(path, 0o755);
      return;
    }
    const st = lower.stat;
    lchownSync(path, Number(st.uid), Number(st.gid));
    chmodSync(path, Number(st.mode) & 0o7777);
    for (const x of llistxattr(lower.path)) {
      if (x.startsWith('trusted.')) continue; // overlay's own and admin attributes stay where they are
      lsetxattr(path, x, lgetxattr(lower.path, x));
    }
    this.dirTimes.push({ rel, atime: timespecOf(st.atimeNs), mtime: timespecOf(st.mtimeNs) });
  }

  /**
   * The directory `rel` in the nearest lower dir that has it, each component checked with lstat (a symlink in a
   * lower dir is never followed, so nothing outside the lower dirs is read). A symlink or another non-directory at
   * `rel` or above it, in the nearest lower that has something there, is what the merged tree shows there: the
   * entry would be written through it or under a file, and is refused as it is in a whole tree.
   */
  private lowerDir(rel: string, name: string): { path: string; stat: BigIntStats } | undefined {
    const parts = rel.split('/');
    for (const lower of this.target.lowers) {
      let st: BigIntStats | undefined;
      let path = lower;
      for (const [i, part] of parts.entries()) {
        path = `${path}/${part}`;
        st = lstatSync(path, { bigint: true, throwIfNoEntry: false });
        if (!st) break;
        if (st.isDirectory()) continue;
        const at = parts.slice(0, i + 1).join('/');
        // A whiteout device in a lower dir: deleted there, so nothing below it either.
        if (st.isCharacterDevice() && st.rdev === 0n) return undefined;
        if (st.isSymbolicLink()) throw invalidLayer(`${name}: ${at} is a symbolic link in a lower layer, and a layer cannot write through one`);
        throw invalidLayer(`${name}: ${at} is not a directory in a lower layer`);
      }
      if (st) return { path, stat: st };
      // An opaque directory above hides the lower dirs beneath this one.
      if (this.opaqueAbove(lower, parts)) return undefined;
    }
    return undefined;
  }

  /** Whether a directory on the way to `parts` in `lower` is opaque (the lowers beneath it do not show there). */
  private opaqueAbove(lower: string, parts: readonly string[]): boolean {
    let path = lower;
    for (const part of parts) {
      path = `${path}/${part}`;
      const st = lstatSync(path, { throwIfNoEntry: false });
      if (!st?.isDirectory()) return false;
      try {
        if (lgetxattr(path, OVERLAY_OPAQUE).toString() === 'y') return true;
      } catch {
        // no such attribute
      }
    }
    return false;
  }

  // --- whiteouts ---------------------------------------------------------------------------------------------

  private whiteout(rel: string, e: TarEntry): void {
    const path = this.abs(rel);
    if (this.unpacked.has(rel) || this.holders.has(rel)) {
      // This layer's own entry: a whiteout hides only what is below it (OCI), so the entry stays; a directory of
      // this layer hides the lower one's content.
      if (lstatOrUndefined(path)?.isDirectory()) this.opaque(rel);
      return;
    }
    if (lstatOrUndefined(path)) this.remove(rel);
    if (this.target.whiteouts === 'overlay') {
      mknod(path, S_IFCHR, 0n);
      lchownSync(path, e.uid, e.gid);
      this.madeWhiteouts.add(rel);
    }
  }

  /** The directory hides what the lower layers have in it; what this layer put there stays. */
  private opaque(dirRel: string): void {
    if (this.target.whiteouts === 'overlay') {
      lsetxattr(this.abs(dirRel), OVERLAY_OPAQUE, 'y');
      return;
    }
    this.removeUnpackedExcept(dirRel);
  }

  private removeUnpackedExcept(dirRel: string): void {
    for (const name of readdirSync(this.abs(dirRel))) {
      const rel = joinRel(dirRel, name);
      if (this.holders.has(rel)) {
        if (lstatOrUndefined(this.abs(rel))?.isDirectory()) this.removeUnpackedExcept(rel);
      } else if (!this.unpacked.has(rel)) {
        this.remove(rel);
      } else if (lstatOrUndefined(this.abs(rel))?.isDirectory()) {
        // A directory entry of this layer merged with a lower one: the lower one's content goes too.
        this.removeUnpackedExcept(rel);
      }
    }
  }

  // --- entries -----------------------------------------------------------------------------------------------

  private file(rel: string, e: TarEntry): void {
    const path = this.abs(rel);
    let fd: number;
    try {
      fd = openSync(path, CREATE_FLAGS, 0o600);
    } catch (err) {
      if (code(err) !== 'EEXIST') throw err;
      this.remove(rel);
      fd = openSync(path, CREATE_FLAGS, 0o600);
    }
    this.current = { fd, entry: e, rel, path };
    if (e.sparseRealSize !== undefined) this.current.sparse = { header: [], headerBytes: 0, index: 0, written: 0, skip: 0 };
  }

  private dir(rel: string, e: TarEntry): void {
    const path = this.abs(rel);
    const wasWhiteout = this.madeWhiteouts.has(rel);
    try {
      mkdirSync(path, 0o700);
    } catch (err) {
      if (code(err) !== 'EEXIST') throw err;
      if (!lstatSync(path).isDirectory()) {
        this.remove(rel);
        mkdirSync(path, 0o700);
      }
    }
    this.knownDirs.add(rel);
    if (wasWhiteout) {
      // `.wh.x` and then `x/` in one layer: the lower x is gone and this one replaces it, so it must not merge.
      this.madeWhiteouts.delete(rel);
      lsetxattr(path, OVERLAY_OPAQUE, 'y');
    }
    lchownSync(path, e.uid, e.gid);
    chmodSync(path, e.mode);
    this.xattrs(path, e);
    this.dirTimes.push({ rel, atime: atimeOf(e), mtime: bound(e.mtime) });
  }

  private symlink(rel: string, e: TarEntry): void {
    const path = this.abs(rel);
    this.create(rel, () => symlinkSync(e.linkname, path));
    lchownSync(path, e.uid, e.gid);
    this.xattrs(path, e);
    lutimens(path, atimeOf(e), bound(e.mtime));
  }

  /**
   * A hard link to an entry already applied (or, in a whole tree, already there). The target is resolved like an
   * entry name (it may not leave the root, and no component above it may be a symlink); the link gets the target's
   * metadata, as GNU tar leaves it (containerd re-applies the link header's owner, mode and times to the shared inode).
   */
  private hardlink(rel: string, e: TarEntry): void {
    const parts = cleanName(e.linkname, `hard link target of ${e.name}`);
    if (parts.length === 0) throw invalidLayer(`${e.name}: a hard link to the root`);
    const targetRel = parts.join('/');
    if (targetRel === rel) return; // a link to itself: nothing to do
    for (let n = 1; n < parts.length; n++) {
      const dir = prefixOf(parts, n);
      if (this.knownDirs.has(dir)) continue;
      const st = lstatOrUndefined(this.abs(dir));
      if (!st) throw invalidLayer(`${e.name}: hard link target ${e.linkname} does not exist`);
      if (st.isSymbolicLink()) throw invalidLayer(`${e.name}: hard link target ${e.linkname} is under the symbolic link ${dir}`);
      if (!st.isDirectory()) throw invalidLayer(`${e.name}: hard link target ${e.linkname}: ${dir} is not a directory`);
      this.knownDirs.add(dir);
    }
    const target = this.abs(targetRel);
    const st = lstatOrUndefined(target);
    if (!st) throw invalidLayer(`${e.name}: hard link target ${e.linkname} does not exist`);
    if (st.isDirectory()) throw invalidLayer(`${e.name}: hard link target ${e.linkname} is a directory`);
    const path = this.abs(rel);
    // link(2) does not follow a symlink target: the link is to the symlink itself, as in containerd.
    this.create(rel, () => linkSync(target, path));
  }

  /** false when the device is skipped by policy. */
  private device(rel: string, e: TarEntry): boolean {
    const whiteoutForm = e.type === TarType.Char && e.devmajor === 0 && e.devminor === 0;
    if (!whiteoutForm && this.target.devices !== 'create') {
      if (this.target.devices === 'refuse') {
        throw invalidLayer(`${e.name}: device nodes are not allowed here (${e.type === TarType.Char ? 'character' : 'block'} device ${e.devmajor}:${e.devminor})`);
      }
      this.stats.skippedDevices++;
      return false;
    }
    this.node(rel, e, e.type === TarType.Char ? S_IFCHR : S_IFBLK, makedev(e.devmajor, e.devminor));
    return true;
  }

  private node(rel: string, e: TarEntry, type: number, dev: bigint): void {
    const path = this.abs(rel);
    this.create(rel, () => mknod(path, type | (e.mode & 0o7777), dev));
    lchownSync(path, e.uid, e.gid);
    chmodSync(path, e.mode);
    this.xattrs(path, e);
    lutimens(path, atimeOf(e), bound(e.mtime));
  }

  /** Runs a creating call; if something is already there, removes it (never follows or writes through it) and retries. */
  private create(rel: string, make: () => void): void {
    try {
      make();
    } catch (err) {
      if (code(err) !== 'EEXIST') throw err;
      this.remove(rel);
      make();
    }
  }

  private remove(rel: string): void {
    const path = this.abs(rel);
    const st = lstatOrUndefined(path);
    if (!st) return;
    this.madeWhiteouts.delete(rel);
    if (st.isDirectory()) {
      rmSync(path, { recursive: true, force: true }); // lstat-based: symlinks inside are removed, not followed
      for (const dir of this.knownDirs) if (dir === rel || dir.startsWith(`${rel}/`)) this.knownDirs.delete(dir);
    } else {
      unlinkSync(path);
    }
  }

  private markUnpacked(rel: string): void {
    this.unpacked.add(rel);
    for (let p = parentOf(rel); p !== '' && !this.holders.has(p); p = parentOf(p)) this.holders.add(p);
  }

  private xattrs(path: string, e: TarEntry): void {
    if (!e.xattrs) return;
    for (const [name, value] of e.xattrs) {
      if (name.startsWith('trusted.')) {
        this.stats.droppedXattrs++;
        continue;
      }
      try {
        lsetxattr(path, name, value);
      } catch (err) {
        const c = code(err);
        if (c === 'ENOTSUP' || (c === 'EPERM' && name.startsWith('user.') && e.type !== TarType.File && e.type !== TarType.Dir)) {
          this.stats.unsupportedXattrs++;
          continue;
        }
        throw err;
      }
    }
  }

  // --- sparse files (GNU PAX format 1.0) ---------------------------------------------------------------------

  private sparseData(f: OpenFile, s: SparseState, chunk: Buffer): void {
    let pos = 0;
    if (!s.segments) {
      s.header.push(Buffer.from(chunk));
      s.headerBytes += chunk.length;
      const all = Buffer.concat(s.header, s.headerBytes);
      const parsed = parseSparseMap(all, f.entry.name);
      if (!parsed) {
        if (s.headerBytes > 1 << 20) throw invalidLayer(`${f.entry.name}: sparse map larger than 1 MiB`);
        return;
      }
      s.segments = parsed.segments;
      s.header = [];
      const rest = all.subarray(parsed.length);
      chunk = rest;
      pos = 0;
    }
    while (pos < chunk.length && s.index < s.segments.length) {
      const [offset, length] = s.segments[s.index]!;
      const n = Math.min(length - s.written, chunk.length - pos);
      writeAll(f.fd, chunk.subarray(pos, pos + n), offset + s.written);
      pos += n;
      s.written += n;
      if (s.written === length) {
        s.index++;
        s.written = 0;
      }
    }
  }
}

/**
 * The map at the front of a GNU 1.0 sparse file's data: decimal lines (count, then offset and length of each
 * segment), padded with zeros to a whole block. undefined while incomplete.
 */
function parseSparseMap(buf: Buffer, name: string): { segments: [number, number][]; length: number } | undefined {
  const numbers: number[] = [];
  let pos = 0;
  let need = 1;
  while (numbers.length < need) {
    const nl = buf.indexOf(0x0a, pos);
    if (nl < 0) return undefined;
    const text = buf.toString('latin1', pos, nl);
    if (!/^[0-9]+$/.test(text)) throw invalidLayer(`${name}: malformed sparse map`);
    numbers.push(Number(text));
    pos = nl + 1;
    if (numbers.length === 1) {
      if (numbers[0]! > 100_000) throw invalidLayer(`${name}: sparse map with ${numbers[0]} segments`);
      need = 1 + 2 * numbers[0]!;
    }
  }
  const length = Math.ceil(pos / 512) * 512;
  if (buf.length < length) return undefined;
  const segments: [number, number][] = [];
  for (let i = 1; i < numbers.length; i += 2) segments.push([numbers[i]!, numbers[i + 1]!]);
  return { segments, length };
}

function validWhiteoutName(base: string, name: string): string {
  const target = base.slice(WHITEOUT_PREFIX.length);
  if (target === '' || target === '.' || target === '..') throw invalidLayer(`${name}: invalid whiteout name ${JSON.stringify(base)}`);
  return target;
}

function writeAll(fd: number, chunk: Buffer, position: number | null): void {
  let done = 0;
  while (done < chunk.length) {
    const n = writeSync(fd, chunk, done, chunk.length - done, position === null ? null : position + done);
    if (n <= 0) throw new LayerError('unknown', 'short write');
    done += n;
  }
}

function lstatOrUndefined(path: string): Stats | undefined {
  return lstatSync(path, { throwIfNoEntry: false });
}

function timespecOf(ns: bigint): TarTime {
  return { sec: Number(ns / 1_000_000_000n), nsec: Number(ns % 1_000_000_000n) };
}

function code(err: unknown): string | undefined {
  return (err as { code?: string } | null)?.code;
}

/** Times before the epoch become the epoch, as containerd bounds them. */
function bound(t: TarTime): TarTime {
  return t.sec < 0 ? { sec: 0, nsec: 0 } : t;
}

/** containerd's atime: the later of atime and mtime. */
function atimeOf(e: TarEntry): TarTime {
  const m = bound(e.mtime);
  if (!e.atime) return m;
  const a = bound(e.atime);
  return a.sec > m.sec || (a.sec === m.sec && a.nsec > m.nsec) ? a : m;
}
