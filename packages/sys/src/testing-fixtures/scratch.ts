// A scratch tmpfs for the root-only tests: everything a test mounts lives under it, and dispose() unmounts all of
// it (innermost first, detached if busy) and removes the directory, also after a failed test.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MNT_DETACH, mount, umount2, unmountAll } from '../index.js';

/** Why the root-only tests are skipped here, or undefined when they can run. */
export function whyNoRoot(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (mount, mknod and trusted.* xattrs need CAP_SYS_ADMIN/CAP_MKNOD)';
  return undefined;
}

/** Mount points under `dir`, deepest first, from /proc/self/mountinfo. */
export function mountsUnder(dir: string): string[] {
  const points = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined && (p === dir || p.startsWith(`${dir}/`)))
    .map((p) => p.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
  return points.sort((a, b) => b.length - a.length);
}

export class Scratch {
  private constructor(readonly dir: string) {}

  static async create(): Promise<Scratch> {
    const dir = mkdtempSync(join(tmpdir(), 'berth-sys-'));
    const s = new Scratch(dir);
    try {
      await mount('tmpfs', dir, 'tmpfs', 0, 'mode=0755,size=64m');
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    return s;
  }

  path(...parts: string[]): string {
    return join(this.dir, ...parts);
  }

  /** Unmounts everything stacked on `target`. */
  async unmount(target: string): Promise<void> {
    await unmountAll(target);
  }

  /** Unmounts everything under the scratch dir (the tmpfs last) and removes it. */
  async dispose(): Promise<void> {
    for (let round = 0; round < 5; round++) {
      const points = mountsUnder(this.dir);
      if (points.length === 0) break;
      for (const p of points) await unmountAll(p).catch(() => umount2(p, MNT_DETACH).catch(() => undefined));
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
