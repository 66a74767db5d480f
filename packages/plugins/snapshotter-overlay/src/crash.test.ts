// Crash safety: a child process prepares, commits and removes snapshots through the built snapshotter and is
// SIGKILLed at a random point, five times on one root. Reopened, every record must have its directory, every
// acknowledged commit must be there, the interrupted active snapshots can be removed, and after Cleanup no directory
// may be left without a record.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { SnapshotInfo } from '@berth/core';
import { afterEach, describe, expect, it } from 'vitest';
import { OverlaySnapshotter, UPPERDIR_LABEL } from './overlay-snapshotter.js';
import { ctx, quietLog } from './testing-fixtures/helpers.js';

const child = fileURLToPath(new URL('./testing-fixtures/crash-child.mjs', import.meta.url));
const built = fileURLToPath(new URL('../dist/overlay-snapshotter.js', import.meta.url));

/** Runs the child until it has acknowledged `steps` commits, then SIGKILLs it wherever it is. */
async function runAndKill(root: string, first: number, steps: number): Promise<{ committed: Set<string>; removing: Set<string> }> {
  const proc = spawn(process.execPath, [child, root, String(first)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => proc.on('exit', (_code, signal) => resolve(signal)));
  const committed = new Set<string>();
  const removing = new Set<string>();
  let killing = false;
  for await (const line of createInterface({ input: proc.stdout })) {
    const msg = JSON.parse(line) as { committed?: string; removing?: string };
    if (msg.committed) committed.add(msg.committed);
    if (msg.removing) removing.add(msg.removing);
    // Reading on until the pipe ends: what the child wrote before it died is acknowledged too.
    // A random delay spreads the kills over every step of the cycle (prepare, fill, commit, remove).
    if (committed.size >= steps && !killing) {
      killing = true;
      setTimeout(() => proc.kill('SIGKILL'), Math.random() * 40);
    }
  }
  expect(await exited, `the child should have been killed; stderr:\n${stderr}`).toBe('SIGKILL');
  return { committed, removing };
}

describe('crash safety (SIGKILL of a process using the snapshotter)', () => {
  let dir: string | undefined;
  let s: OverlaySnapshotter | undefined;
  afterEach(async () => {
    await s?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
    s = undefined;
    dir = undefined;
  });

  it.skipIf(!existsSync(built))(`leaves records and directories consistent, and Cleanup removes the debris${existsSync(built) ? '' : ' (skipped: build the package first, the child runs dist/)'}`, async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-overlay-crash-'));
    const root = join(dir, 'root');
    let first = 0;
    for (let round = 0; round < 5; round++) {
      const steps = 5 + Math.floor(Math.random() * 20);
      const { committed, removing } = await runAndKill(root, first, steps);
      first += steps + 50;

      // The upperdir label names each record's directory.
      s = await OverlaySnapshotter.open({ root, log: quietLog, mountOptions: [], upperdirLabel: true });
      const infos: SnapshotInfo[] = [];
      for await (const info of s.walk(ctx)) infos.push(info);
      const byName = new Map(infos.map((i) => [i.name, i]));
      for (const name of committed) if (!removing.has(name)) expect(byName.get(name)?.kind, name).toBe('committed');
      const dirs = infos.map((i) => i.labels[UPPERDIR_LABEL]!);
      for (const upper of dirs) expect(existsSync(upper), upper).toBe(true);

      // The active snapshot the kill interrupted (half filled, perhaps never committed) can be removed.
      const active = infos.filter((i) => i.kind === 'active');
      for (const info of active) await s.remove(ctx, info.name);
      const kept = infos.filter((i) => i.kind !== 'active').map((i) => i.labels[UPPERDIR_LABEL]!);

      await s.cleanup(ctx);
      const listing = (await readdir(join(root, 'snapshots'))).sort();
      expect(listing).toEqual(kept.map((d) => basename(dirname(d))).sort());
      // The store goes on: a new snapshot gets a fresh directory.
      const [m] = await s.prepare(ctx, `after-${round}`, 'base');
      expect(listing).not.toContain(basename(dirname(m!.options.find((o) => o.startsWith('upperdir='))!)));
      await s.remove(ctx, `after-${round}`);
      await s.close();
      s = undefined;
    }
  }, 120_000);
});
