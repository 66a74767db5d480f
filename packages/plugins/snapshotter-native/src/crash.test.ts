// Crash safety: a child process prepares a snapshot on a parent of many files and is SIGKILLed while cp copies;
// the copy must die with it (setpriv --pdeathsig), and after a reopen the key is free, Cleanup leaves only what a
// record names, and the same prepare succeeds with the parent's full tree.
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { OpContext } from '@berth/core';
import { expectFailure } from '@berth/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { NativeSnapshotter } from './native-snapshotter.js';

const ctx: OpContext = { namespace: 'crash' };
const fixture = (name: string) => fileURLToPath(new URL(`./testing-fixtures/${name}`, import.meta.url));
const FILES = 8000;

/** Processes whose command line mentions `text` (the killed child's cp, if it outlived it). */
async function processesMentioning(text: string): Promise<string[]> {
  const out: string[] = [];
  for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(text)) out.push(`${pid}: ${cmd.replaceAll('\0', ' ')}`);
  }
  return out;
}

describe('crash safety (SIGKILL during a prepare)', () => {
  let dir: string | undefined;
  let sn: NativeSnapshotter | undefined;

  afterEach(async () => {
    await sn?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
    sn = undefined;
    dir = undefined;
  });

  it('leaves nothing a later Cleanup cannot remove, and no copy running', async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-native-crash-'));
    const root = join(dir, 'native');
    sn = await NativeSnapshotter.open({ root });
    const base = (await sn.prepare(ctx, 'base-a', ''))[0]!.source;
    for (let i = 0; i < FILES; i++) await writeFile(join(base, `f${i}`), `file ${i}\n`.repeat(40));
    await sn.commit(ctx, 'base', 'base-a');
    await sn.close();
    sn = undefined;

    const child = spawn(process.execPath, [fixture('run-ts.mjs'), fixture('crash-preparer.ts'), root], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    let saidPreparing = false;
    for await (const line of createInterface({ input: child.stdout })) {
      if (line === 'preparing') {
        saidPreparing = true;
        break;
      }
    }
    expect(saidPreparing, stderr).toBe(true);
    // Kill once cp has copied some files, but not all of them.
    const snapshots = join(root, 'snapshots');
    let copied = 0;
    for (const t0 = Date.now(); Date.now() - t0 < 20_000; await new Promise((r) => setTimeout(r, 1))) {
      const tmp = (await readdir(snapshots)).find((n) => n.startsWith('new-'));
      copied = tmp ? (await readdir(join(snapshots, tmp)).catch(() => [])).length : 0;
      if (copied > 0) break;
    }
    child.kill('SIGKILL');
    expect(await exited, `the child should have been killed; stderr:\n${stderr}`).toBe('SIGKILL');
    expect(copied, 'the kill landed during the copy').toBeGreaterThan(0);
    expect(copied).toBeLessThan(FILES);

    // The copy died with its parent (give the kernel a moment to deliver the death signal).
    for (let i = 0; i < 100 && (await processesMentioning(root)).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await processesMentioning(root)).toEqual([]);

    sn = await NativeSnapshotter.open({ root });
    await expectFailure(sn.stat(ctx, 'victim'), 'not-found');
    expect((await readdir(snapshots)).some((n) => n.startsWith('new-')), 'the interrupted copy is still there before Cleanup').toBe(true);
    await sn.cleanup(ctx);
    expect(await readdir(snapshots)).toEqual(['1']);
    const victim = (await sn.prepare(ctx, 'victim', 'base'))[0]!.source;
    expect((await readdir(victim)).length).toBe(FILES);
  }, 120_000);
});
