// Whether overlayfs works in the snapshotter's root, and with which options (containerd's overlayutils checks).
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { MNT_DETACH, mountAll, unmountAll } from '@berth/sys';
import type { Logger } from '@berth/core';
import { hasOption } from './mounts.js';

const PROBE_PREFIX = 'probe-';
const INDEX_PARAMETER = '/sys/module/overlay/parameters/index';
const TMPFS_MAGIC = 0x01021994;

/** The filesystem type the probe mounts when told to simulate a kernel without overlayfs (no kernel has it). */
export const UNAVAILABLE_FSTYPE = 'berth-simulated-no-overlay';

export interface ProbeOptions {
  /** The filesystem type to mount: `overlay`, or UNAVAILABLE_FSTYPE to fail as a kernel without overlayfs fails. */
  readonly fstype?: string;
}

export type ProbeResult = { readonly ok: true; readonly options: readonly string[] } | { readonly ok: false; readonly reason: string };

/**
 * Mounts a small overlay in a temporary directory under `root` and uses it: two lowerdirs stacked in order, a
 * write copied up into the upperdir, a deletion recorded as a whiteout (a 0/0 character device), which is what the
 * snapshots and the layer applier rely on. Returns the options every overlay mount of this snapshotter should
 * carry (the probe used exactly them), or why overlayfs cannot serve here.
 *
 * The options follow containerd: `index=off` where the kernel has the `index` feature (so an upperdir can be
 * mounted over other lowerdirs later), `userxattr` inside a user namespace off tmpfs (where `trusted.*` xattrs are
 * not allowed), then the configured `mount_options`; an option the configuration sets itself is not added again.
 * The kernel's other defaults (redirect_dir, metacopy) are left alone, as containerd leaves them.
 */
export async function probeOverlay(root: string, configured: readonly string[], log: Logger, probe: ProbeOptions = {}): Promise<ProbeResult> {
  const fstype = probe.fstype ?? 'overlay';
  await removeStaleProbes(root, log);
  const userxattr = !hasOption(configured, 'userxattr') && (await needsUserXattr(root));
  let reason = '';
  for (const withUserxattr of userxattr ? [true, false] : [false]) {
    const indexKnown = existsSync(INDEX_PARAMETER);
    let options = baseOptions(configured, withUserxattr, indexKnown);
    let result = await tryOverlay(root, options, log, fstype);
    // The first overlay mount of a boot may load the module, and only then does its `index` parameter appear.
    if (result === undefined && !indexKnown && existsSync(INDEX_PARAMETER) && !hasOption(configured, 'index')) {
      options = baseOptions(configured, withUserxattr, true);
      result = await tryOverlay(root, options, log, fstype);
    }
    if (result === undefined) return { ok: true, options };
    reason = result;
  }
  return { ok: false, reason };
}

function baseOptions(configured: readonly string[], userxattr: boolean, index: boolean): string[] {
  const options: string[] = [];
  if (index && !hasOption(configured, 'index')) options.push('index=off');
  if (userxattr) options.push('userxattr');
  return [...options, ...configured];
}

/** Mounts and exercises one overlay with `options`; returns undefined when it works, else the reason. */
async function tryOverlay(root: string, options: readonly string[], log: Logger, fstype: string): Promise<string | undefined> {
  const td = await mkdtemp(join(root, PROBE_PREFIX));
  const at = (name: string) => join(td, name);
  const merged = at('merged');
  let mounted = false;
  try {
    for (const dir of ['lower1', 'lower2', 'upper', 'work', 'merged']) mkdirSync(at(dir), { mode: 0o755 });
    writeFileSync(join(at('lower1'), 'shadowed'), 'lower1');
    writeFileSync(join(at('lower2'), 'shadowed'), 'lower2');
    writeFileSync(join(at('lower1'), 'deleted'), 'lower1');
    const overlay = [...options, `workdir=${at('work')}`, `upperdir=${at('upper')}`, `lowerdir=${at('lower2')}:${at('lower1')}`];
    try {
      await mountAll([{ type: fstype, source: 'overlay', options: overlay }], merged);
    } catch (err) {
      const what = fstype === 'overlay' ? 'overlay' : JSON.stringify(fstype);
      return `${what} mount with options ${JSON.stringify(overlay.join(','))} failed: ${(err as Error).message}`;
    }
    mounted = true;
    if ((await readFile(join(merged, 'shadowed'), 'utf8')) !== 'lower2') return 'the lowerdirs do not stack in the order given';
    writeFileSync(join(merged, 'written'), 'x');
    if (!existsSync(join(at('upper'), 'written'))) return 'a file written into the overlay did not reach its upperdir';
    unlinkSync(join(merged, 'deleted'));
    const whiteout = lstatSync(join(at('upper'), 'deleted'), { throwIfNoEntry: false });
    if (!whiteout?.isCharacterDevice() || whiteout.rdev !== 0) return 'a deletion in the overlay left no whiteout (0/0 character device) in its upperdir';
    return undefined;
  } catch (err) {
    return `overlay probe in ${td} failed: ${(err as Error).message}`;
  } finally {
    await dispose(td, mounted, log);
  }
}

async function dispose(td: string, mounted: boolean, log: Logger): Promise<void> {
  const merged = join(td, 'merged');
  if (mounted || existsSync(merged)) {
    try {
      await unmountAll(merged, MNT_DETACH);
    } catch (err) {
      // Never remove a tree that may still be mounted: leave it for the next start.
      log.warn('could not unmount the overlay probe', { path: merged, error: err });
      return;
    }
  }
  await rm(td, { recursive: true, force: true }).catch((err: unknown) => log.warn('could not remove the overlay probe', { path: td, error: err }));
}

/** Probe directories a crash left behind (perhaps still mounted). */
async function removeStaleProbes(root: string, log: Logger): Promise<void> {
  for (const name of readdirSync(root)) {
    if (name.startsWith(PROBE_PREFIX)) await dispose(join(root, name), true, log);
  }
}

/** containerd's NeedsUserXAttr: inside a user namespace, except on tmpfs (which takes `trusted.*` there). */
async function needsUserXattr(root: string): Promise<boolean> {
  let map: string;
  try {
    map = readFileSync('/proc/self/uid_map', 'utf8');
  } catch {
    return false;
  }
  const initial = /^\s*0\s+0\s+4294967295\s*$/.test(map);
  if (initial) return false;
  const fs = await statfs(root).catch(() => undefined);
  return fs?.type !== TMPFS_MAGIC;
}
