// mount(2) and umount2(2), and containerd's mount semantics on top (fstab-style options, long overlay options).
import { stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { libcOrUndefined } from './binding.js';
import {
  MNT_DETACH,
  MNT_EXPIRE,
  MNT_FORCE,
  MS_BIND,
  MS_DIRSYNC,
  MS_MANDLOCK,
  MS_MOVE,
  MS_NOATIME,
  MS_NODEV,
  MS_NODIRATIME,
  MS_NOEXEC,
  MS_NOSUID,
  MS_PRIVATE,
  MS_RDONLY,
  MS_REC,
  MS_RELATIME,
  MS_REMOUNT,
  MS_SHARED,
  MS_SILENT,
  MS_SLAVE,
  MS_STRICTATIME,
  MS_SYNCHRONOUS,
  MS_UNBINDABLE,
} from './constants.js';
import { errnoError, notImplemented, type SysError } from './errors.js';
import { runTool } from './exec.js';

/**
 * The kernel copies at most one page of mount data (the rest is cut off, which surfaces as a confusing ENOENT for a
 * truncated lowerdir). 4096 is the smallest page Linux uses; data that fits is always safe.
 */
export const MOUNT_DATA_MAX = 4096 - 1;

const MOUNT_TOOL = '/bin/mount';
const UMOUNT_TOOL = '/bin/umount';
const PROPAGATION = MS_SHARED | MS_PRIVATE | MS_SLAVE | MS_UNBINDABLE;

/** A mount as containerd describes one (`types.Mount`): filesystem type, source and fstab-style options. */
export interface Mount {
  readonly type: string;
  readonly source: string;
  readonly options: readonly string[];
}

export interface MountCallOptions {
  /**
   * Working directory for relative paths in `source` and `data` (overlay's relative lowerdirs). Node cannot chdir
   * per call, so a mount with a cwd runs `/bin/mount` in that directory instead of calling mount(2).
   */
  readonly cwd?: string;
}

/**
 * mount(2). Uses the FFI binding; falls back to `/bin/mount` when a `cwd` is given, when koffi cannot load, or
 * when `data` is longer than one page (where mount(2) would truncate it). Rejects with a SysError (`code` EPERM,
 * ENOENT, EINVAL, ...; the paths in the message).
 */
export async function mount(
  source: string,
  target: string,
  fstype: string,
  flags = 0,
  data = '',
  options: MountCallOptions = {},
): Promise<void> {
  const libc = options.cwd === undefined && Buffer.byteLength(data) <= MOUNT_DATA_MAX ? libcOrUndefined() : undefined;
  if (libc) {
    const rc = libc.mount(source || null, target, fstype || null, flags, data || null);
    if (rc !== 0) throw errnoError(libc.errno(), 'mount', source || fstype, target);
    return;
  }
  const args = mountToolArgs(source, isAbsolute(target) ? target : resolve(target), fstype, flags, data);
  await runTool({ file: MOUNT_TOOL, args, cwd: options.cwd, syscall: 'mount', path: source || fstype, dest: target });
}

/** umount2(2) (`MNT_DETACH`, `MNT_FORCE`, ...). Falls back to `/bin/umount` (`-l`, `-f`) when koffi cannot load. */
export async function umount2(target: string, flags = 0): Promise<void> {
  const libc = libcOrUndefined();
  if (libc) {
    if (libc.umount2(target, flags) !== 0) throw errnoError(libc.errno(), 'umount2', target);
    return;
  }
  if (flags & MNT_EXPIRE) throw notImplemented('umount2', 'MNT_EXPIRE needs the FFI binding, and koffi did not load');
  const args = [...(flags & MNT_DETACH ? ['-l'] : []), ...(flags & MNT_FORCE ? ['-f'] : []), target];
  await runTool({ file: UMOUNT_TOOL, args, syscall: 'umount2', path: target });
}

/**
 * Unmounts every mount stacked on `target` (until it is no mount point: EINVAL), retrying EBUSY for a while as
 * containerd does. A missing target is not an error.
 */
export async function unmountAll(target: string, flags = 0): Promise<void> {
  for (let busy = 0; ; ) {
    try {
      await umount2(target, flags);
    } catch (err) {
      const code = (err as SysError).code;
      if (code === 'EINVAL' || code === 'ENOENT') return;
      if (code === 'EBUSY' && ++busy < 50) {
        await sleep(50);
        continue;
      }
      throw err;
    }
  }
}

/**
 * Mounts each mount onto `target` in order, with containerd's semantics: fstab-style options become flags and
 * data; propagation flags are applied by a second call; `bind,ro` is remounted read-only; overlay options too
 * long for one page have their lowerdirs made relative to their common parent and are mounted from there. If a
 * later mount fails, the earlier ones are unmounted again before the error is thrown.
 */
export async function mountAll(mounts: readonly Mount[], target: string): Promise<void> {
  let done = 0;
  try {
    for (const m of mounts) {
      await mountOne(m, target);
      done++;
    }
  } catch (err) {
    for (; done > 0; done--) await umount2(target, MNT_DETACH).catch(() => undefined);
    throw err;
  }
}

async function mountOne(m: Mount, target: string): Promise<void> {
  let options = m.options;
  let cwd: string | undefined;
  if (m.type === 'overlay' && options.reduce((n, o) => n + o.length, 0) >= MOUNT_DATA_MAX + 1 - 512) {
    ({ cwd, options } = compactLowerdir(options));
  }
  const { flags, data, loop } = parseMountOptions(options);
  if (loop) throw notImplemented('mount', `loop devices (option "loop" on ${m.source})`);
  if (Buffer.byteLength(data) > MOUNT_DATA_MAX) {
    const err = errnoError(7 /* E2BIG */, 'mount', m.source, target);
    (err as { message: string }).message += ` (the options are ${Buffer.byteLength(data)} bytes, more than one page)`;
    throw err;
  }
  if (cwd !== undefined) {
    const st = await stat(cwd).catch((err: unknown) => err as SysError);
    if (st instanceof Error) throw errnoError(-st.errno, 'mount', cwd, target);
    if (!st.isDirectory()) throw errnoError(20 /* ENOTDIR */, 'mount', cwd, target);
  }
  const oflags = flags & ~PROPAGATION;
  if (!(flags & MS_REMOUNT) || data) await mount(m.source, target, m.type, oflags, data, { cwd });
  if (flags & PROPAGATION) await mount('', target, '', flags & (PROPAGATION | MS_REC | MS_SILENT));
  if ((oflags & (MS_BIND | MS_RDONLY)) === (MS_BIND | MS_RDONLY)) await mount('', target, '', oflags | MS_REMOUNT);
}

// The options mount(8) and containerd know as flags; every other option is filesystem data.
const FLAG_OPTIONS: Readonly<Record<string, readonly [clear: boolean, flag: number]>> = {
  async: [true, MS_SYNCHRONOUS],
  atime: [true, MS_NOATIME],
  bind: [false, MS_BIND],
  defaults: [false, 0],
  dev: [true, MS_NODEV],
  diratime: [true, MS_NODIRATIME],
  dirsync: [false, MS_DIRSYNC],
  exec: [true, MS_NOEXEC],
  mand: [false, MS_MANDLOCK],
  noatime: [false, MS_NOATIME],
  nodev: [false, MS_NODEV],
  nodiratime: [false, MS_NODIRATIME],
  noexec: [false, MS_NOEXEC],
  nomand: [true, MS_MANDLOCK],
  norelatime: [true, MS_RELATIME],
  nostrictatime: [true, MS_STRICTATIME],
  nosuid: [false, MS_NOSUID],
  rbind: [false, MS_BIND | MS_REC],
  relatime: [false, MS_RELATIME],
  remount: [false, MS_REMOUNT],
  ro: [false, MS_RDONLY],
  rw: [true, MS_RDONLY],
  strictatime: [false, MS_STRICTATIME],
  suid: [true, MS_NOSUID],
  sync: [false, MS_SYNCHRONOUS],
  private: [false, MS_PRIVATE],
  rprivate: [false, MS_PRIVATE | MS_REC],
  shared: [false, MS_SHARED],
  rshared: [false, MS_SHARED | MS_REC],
  slave: [false, MS_SLAVE],
  rslave: [false, MS_SLAVE | MS_REC],
  unbindable: [false, MS_UNBINDABLE],
  runbindable: [false, MS_UNBINDABLE | MS_REC],
};

/** fstab-style options to mount(2) flags and the filesystem's data string (containerd's parseMountOptions). */
export function parseMountOptions(options: readonly string[]): { flags: number; data: string; loop: boolean } {
  let flags = 0;
  let loop = false;
  const data: string[] = [];
  for (const o of options) {
    const known = Object.hasOwn(FLAG_OPTIONS, o) ? FLAG_OPTIONS[o] : undefined;
    if (known && known[1] !== 0) flags = known[0] ? flags & ~known[1] : flags | known[1];
    else if (o === 'loop') loop = true;
    else if (!known) data.push(o);
  }
  return { flags, data: data.join(','), loop };
}

/**
 * containerd's compactLowerdirOption: rewrites `lowerdir=` relative to the parent of the lowerdirs' longest common
 * prefix (the snapshots directory, as snapshot ids are numbers) and returns that directory. Options are unchanged
 * when there is one lowerdir or no common parent below `/`.
 */
export function compactLowerdir(options: readonly string[]): { cwd?: string; options: readonly string[] } {
  const idx = options.findIndex((o) => o.startsWith('lowerdir='));
  if (idx === -1) return { options };
  const dirs = options[idx]!.slice('lowerdir='.length).split(':');
  if (dirs.length === 1) return { options };
  const common = longestCommonPrefix(dirs);
  if (common === '') return { options };
  // Go's path.Dir: everything up to the last slash (so "/r/snapshots/" stays "/r/snapshots", "/r/s/1" becomes "/r/s").
  const slash = common.lastIndexOf('/');
  if (slash <= 0) return { options };
  const base = `${common.slice(0, slash)}/`;
  const rest = options.filter((_, i) => i !== idx);
  return { cwd: base, options: [...rest, `lowerdir=${dirs.map((d) => d.slice(base.length)).join(':')}`] };
}

function longestCommonPrefix(strs: readonly string[]): string {
  let min = strs[0]!;
  let max = strs[0]!;
  for (const s of strs) {
    if (s < min) min = s;
    if (s > max) max = s;
  }
  let i = 0;
  while (i < min.length && i < max.length && min[i] === max[i]) i++;
  return min.slice(0, i);
}

/** The argv of `/bin/mount` that makes the same call as mount(2) with these flags and data. */
export function mountToolArgs(source: string, target: string, fstype: string, flags: number, data: string): string[] {
  const args = ['--internal-only', '--no-mtab'];
  const propagation = flags & PROPAGATION;
  if (propagation) {
    const r = flags & MS_REC ? 'r' : '';
    const kind = propagation & MS_SHARED ? 'shared' : propagation & MS_SLAVE ? 'slave' : propagation & MS_PRIVATE ? 'private' : 'unbindable';
    return [...args, `--make-${r}${kind}`, target];
  }
  if (flags & MS_MOVE) return [...args, '--move', source, target];
  const words: string[] = [];
  const remount = (flags & MS_REMOUNT) !== 0;
  if (remount) words.push('remount');
  if (flags & MS_BIND) args.push(flags & MS_REC ? '--rbind' : '--bind');
  for (const [word, [clear, flag]] of Object.entries(FLAG_OPTIONS)) {
    if (clear || flag === 0 || flag & (MS_BIND | MS_REC | MS_REMOUNT | PROPAGATION)) continue;
    if ((flags & flag) === flag) words.push(word);
  }
  if (data) words.push(data);
  if (words.length > 0) args.push('-o', words.join(','));
  if (remount) return [...args, target];
  if (fstype && !(flags & MS_BIND)) args.push('-t', fstype);
  args.push(source || 'none', target);
  return args;
}
