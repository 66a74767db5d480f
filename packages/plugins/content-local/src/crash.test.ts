// Crash safety: a child process writes through the store (one endless ingest, and a loop of small blobs being
// written and committed) and is SIGKILLed; the store reopened afterwards must show intact blobs only, and the
// interrupted ingests listed, resumable and abortable.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ContentInfo, OpContext } from '@berth/core';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalContentStore } from './local-content-store.js';
import { ENDLESS_REF, pattern } from './testing-fixtures/pattern.js';
import { sha256Digest as sha256 } from '@berth/core';

const ctx: OpContext = { namespace: 'crash' };
const fixture = (name: string) => fileURLToPath(new URL(`./testing-fixtures/${name}`, import.meta.url));

interface Progress {
  committed: string[];
  written: number;
}

/** Starts the child, waits until it has committed `commits` blobs and written `bytes`, then SIGKILLs it. */
async function runAndKill(root: string, firstBlob: number, commits: number, bytes: number): Promise<Progress> {
  const child = spawn(process.execPath, [fixture('run-ts.mjs'), fixture('crash-writer.ts'), root, String(firstBlob)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  const progress: Progress = { committed: [], written: 0 };
  const lines = createInterface({ input: child.stdout });
  for await (const line of lines) {
    const msg = JSON.parse(line) as { committed?: string; written?: number };
    if (msg.committed) progress.committed.push(msg.committed);
    if (msg.written) progress.written = msg.written;
    if (progress.committed.length >= commits && progress.written >= bytes) {
      child.kill('SIGKILL');
      break;
    }
  }
  const signal = await exited;
  expect(signal, `child should have been killed; stderr:\n${stderr}`).toBe('SIGKILL');
  return progress;
}

describe('crash safety (SIGKILL of a writing process)', () => {
  let dir: string | undefined;
  let store: LocalContentStore | undefined;

  afterEach(async () => {
    await store?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
    store = undefined;
    dir = undefined;
  });

  it('keeps committed blobs intact and interrupted ingests resumable and abortable', async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-content-crash-'));
    const root = join(dir, 'content');
    // Three children in a row on the same directory, killed at different points; each resumes the endless ingest.
    const committed: string[] = [];
    let written = 0;
    for (const [round, commits, bytes] of [[0, 2, 300_000], [1, 5, 1 << 20], [2, 3, 2 << 20]] as const) {
      const progress = await runAndKill(root, round * 1000, commits, written + bytes);
      committed.push(...progress.committed);
      written = Math.max(written, progress.written);
    }
    const progress: Progress = { committed, written };

    store = await LocalContentStore.open({ root });

    // Every blob visible is whole: its bytes hash to its name, and it is read only. No torn blob, whenever the kill
    // landed (the commit loop runs continuously, so it may have been mid-commit).
    const listed: ContentInfo[] = [];
    for await (const info of store.list(ctx)) listed.push(info);
    const listedDigests = listed.map((i) => i.digest);
    for (const digest of progress.committed) expect(listedDigests).toContain(digest);
    expect(listed.length).toBeGreaterThanOrEqual(progress.committed.length);
    for (const info of listed) {
      const blob = join(root, 'blobs', 'sha256', info.digest.slice('sha256:'.length));
      expect(sha256(await readFile(blob)), `blob ${info.digest}`).toBe(info.digest);
      expect((await stat(blob)).mode & 0o777).toBe(0o444);
    }

    // The endless ingest is listed with at least what the child reported written.
    const statuses = await store.listStatuses(ctx);
    const endless = statuses.find((s) => s.ref === ENDLESS_REF);
    expect(endless, JSON.stringify(statuses)).toBeDefined();
    expect(endless!.offset).toBeGreaterThanOrEqual(progress.written);
    for (const s of statuses) expect(s.ref === ENDLESS_REF || s.ref.startsWith('crash/blob-')).toBe(true);

    // Resume it: the running digest is rebuilt from disk, the rest is appended, the commit verifies the whole.
    const w = await store.writer(ctx, { ref: ENDLESS_REF });
    const offset = (await w.status()).offset;
    expect(offset).toBe(endless!.offset);
    expect(w.digest()).toBe(sha256(pattern(0, offset)));
    const total = offset + 100_000;
    await w.write(pattern(offset, total - offset));
    await w.commit(total, sha256(pattern(0, total)));
    expect((await store.info(ctx, sha256(pattern(0, total)))).size).toBe(total);

    // Whatever blob ingest was interrupted can be aborted.
    for (const s of statuses) if (s.ref !== ENDLESS_REF) await store.abort(ctx, s.ref);
    expect(await store.listStatuses(ctx)).toEqual([]);
  });
});
