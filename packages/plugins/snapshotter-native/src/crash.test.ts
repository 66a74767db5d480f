// Crash safety: a child process works on a snapshotter and is SIGKILLed part way (during a Prepare's copy, while
// files are being written into an active snapshot, during a Commit, during a Remove's delete). After a reopen in
// this process, what the child left is either a record (which Remove takes away) or a directory no record names
// (which Cleanup takes away): after both, only the base snapshot's directory remains, and the same work succeeds.
// A Prepare's cp must die with the process (setpriv --pdeathsig) rather than write on into a directory being cleaned.
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { OpContext } from '@berth/core';
import { expectFailure } from '@berth/core/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NativeSnapshotter } from './native-snapshotter.js';

const ctx: OpContext = { namespace: 'crash' };
const fixture = (name: string) => fileURLToPath(new URL(`./testing-fixtures/${name}`, import.meta.url));
const FILES = 8000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Processes whose command line mentions `text` (the killed child's cp, if it outlived it). */
async function processesMentioning(text: string): Promise<string[]> {
  const out: string[] = [];
  for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(text)) out.push(`${pid}: ${cmd.replaceAll('\0', ' ')}`);
  }
  return out;
}

/** Polls `cond` every millisecond for at most 20 s; false if it never held. */
async function within20s(cond: () => Promise<boolean>): Promise<boolean> {
  for (const t0 = Date.now(); Date.now() - t0 < 20_000; await sleep(1)) if (await cond()) return true;
  return false;
}

/**
 * Runs one step of the child (testing-fixtures/crash-preparer.ts) and SIGKILLs it once it has said `killAfter` and
 * `ready()` holds. Returns every line it said before it died.
 */
async function killDuring(root: string, step: string, killAfter: string, ready: () => Promise<boolean>, count = 0): Promise<string[]> {
  const child = spawn(process.execPath, [fixture('run-ts.mjs'), fixture('crash-preparer.ts'), root, step, String(count)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_code, signal) => resolve(signal)));
  const said: string[] = [];
  let heard: () => void = () => {};
  const heardKillAfter = new Promise<void>((resolve) => (heard = resolve));
  createInterface({ input: child.stdout }).on('line', (line) => {
    said.push(line);
    if (line === killAfter) heard();
  });
  try {
    // Either the line comes or the child ends without it.
    await Promise.race([heardKillAfter, exited]);
    expect(said, stderr).toContain(killAfter);
    expect(await within20s(ready), `the kill point of ${step} was never reached; stderr:\n${stderr}`).toBe(true);
  } finally {
    child.kill('SIGKILL');
  }
  // 'close' comes after stdout has ended, so `said` also holds what the child wrote between our check and the kill.
  expect(await exited, `the child should have been killed; stderr:\n${stderr}`).toBe('SIGKILL');
  return said;
}

describe('crash safety (SIGKILL of the process using the snapshotter)', () => {
  let dir: string;
  let root: string;
  let sn: NativeSnapshotter | undefined;

  const snapshots = () => join(root, 'snapshots');
  const reopen = async () => (sn = await NativeSnapshotter.open({ root }));
  const filesIn = async (name: string) => (await readdir(join(snapshots(), name)).catch(() => [])).length;
  /** A committed `base` of FILES files (directory 1); the snapshotter is closed afterwards. */
  const makeBase = async () => {
    const s = await reopen();
    const base = (await s.prepare(ctx, 'base-a', ''))[0]!.source;
    for (let i = 0; i < FILES; i++) await writeFile(join(base, `f${i}`), `file ${i}\n`.repeat(40));
    await s.commit(ctx, 'base', 'base-a');
    await s.close();
    sn = undefined;
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-native-crash-'));
    root = join(dir, 'native');
  });

  afterEach(async () => {
    await sn?.close();
    sn = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it('during a prepare: the key is free, the copy died too, Cleanup removes the half copy', async () => {
    await makeBase();
    let copied = 0;
    const said = await killDuring(root, 'prepare', 'preparing', async () => {
      const tmp = (await readdir(snapshots())).find((n) => n.startsWith('new-'));
      copied = tmp ? await filesIn(tmp) : 0;
      return copied > 0;
    });
    expect(said).not.toContain('prepared');
    expect(copied).toBeLessThan(FILES);
    // The copy died with its parent (give the kernel a moment to deliver the death signal).
    for (let i = 0; i < 100 && (await processesMentioning(root)).length > 0; i++) await sleep(20);
    expect(await processesMentioning(root)).toEqual([]);

    const s = await reopen();
    await expectFailure(s.stat(ctx, 'victim'), 'not-found');
    expect((await readdir(snapshots())).some((n) => n.startsWith('new-')), 'the interrupted copy is there before Cleanup').toBe(true);
    await s.cleanup(ctx);
    expect(await readdir(snapshots())).toEqual(['1']);
    const victim = (await s.prepare(ctx, 'victim', 'base'))[0]!.source;
    expect((await readdir(victim)).length).toBe(FILES);
  }, 120_000);

  it('while files are written into an active snapshot: it can be removed, and Cleanup leaves nothing else', async () => {
    const said = await killDuring(root, 'apply', 'applying', async () => (await filesIn('1')) > 100, FILES);
    expect(said).not.toContain('committing');
    const s = await reopen();
    expect((await s.stat(ctx, 'work')).kind).toBe('active');
    await s.remove(ctx, 'work');
    await s.cleanup(ctx);
    expect(await readdir(snapshots())).toEqual([]);
    await s.prepare(ctx, 'work', '');
  }, 120_000);

  it('during a commit: the snapshot is either still active or committed, never both or neither; Remove and Cleanup clear it', async () => {
    // The commit measures the tree first (FILES files), so a kill right after `committing` lands inside it.
    const said = await killDuring(root, 'apply', 'committing', async () => true, FILES);
    expect(said).not.toContain('committed');
    const s = await reopen();
    const left: string[] = [];
    for await (const info of s.walk(ctx)) left.push(`${info.name} ${info.kind}`);
    expect(left.length === 1 && ['work active', 'done committed'].includes(left[0]!), left.join(', ')).toBe(true);
    await s.remove(ctx, left[0]!.split(' ')[0]!);
    await s.cleanup(ctx);
    expect(await readdir(snapshots())).toEqual([]);
  }, 120_000);

  it('during a remove: the record is gone, Cleanup finishes the delete', async () => {
    await makeBase();
    const s = await reopen();
    await s.prepare(ctx, 'big', 'base');
    await s.close();
    sn = undefined;
    let moved = false;
    const said = await killDuring(root, 'remove', 'removing', async () => {
      moved = (await readdir(snapshots())).includes('rm-2');
      return moved;
    });
    expect(said).not.toContain('removed');
    const t = await reopen();
    await expectFailure(t.stat(ctx, 'big'), 'not-found');
    expect(await filesIn('rm-2'), 'the delete was still under way at the kill').toBeGreaterThan(0);
    await t.cleanup(ctx);
    expect(await readdir(snapshots())).toEqual(['1']);
    await t.prepare(ctx, 'big', 'base');
  }, 120_000);
});
