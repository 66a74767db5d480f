import { describe, expect, it } from 'vitest';
import { formatEta, PullProgressRenderer, shortName, stateOf, type ProgressEvent, type ProgressMode } from './pull-progress.js';

const A = `layer-sha256:${'a'.repeat(64)}`;
const C = `config-sha256:${'c'.repeat(64)}`;
const MIB = 1024 * 1024;

/** A pull as the Transfer service reports it, each event at its time (ms). */
const PULL: readonly [number, ProgressEvent][] = [
  [0, { event: 'Pulling from 127.0.0.1:5000/test/busybox:latest', name: '', progress: 0, total: 0 }],
  [0, { event: 'waiting', name: A, progress: 0, total: 2 * MIB }],
  [50, { event: 'already exists', name: C, progress: 1000, total: 1000 }],
  [1000, { event: 'downloading', name: A, progress: MIB, total: 2 * MIB }],
  [2000, { event: 'downloading', name: A, progress: 1.5 * MIB, total: 2 * MIB }],
  [2500, { event: 'unpacking', name: A, progress: 2 * MIB, total: 2 * MIB }],
  [3000, { event: 'complete', name: A, progress: 2 * MIB, total: 2 * MIB }],
  [3000, { event: 'saved', name: '127.0.0.1:5000/test/busybox:latest', progress: 0, total: 0 }],
];

function run(mode: ProgressMode): string {
  let now = 0;
  let out = '';
  const renderer = new PullProgressRenderer({ mode, now: () => now, write: (t) => (out += t) });
  for (const [at, event] of PULL) {
    now = at;
    renderer.update(event);
  }
  renderer.finish();
  return out;
}

const ESC = '\x1b';
const A_WAITING = 'layer-sha256:aaaaaaaaaaaa  waiting      2.0 MiB';
const C_EXISTS = 'config-sha256:cccccccccccc  exists       1000.0 B';
const A_START = 'layer-sha256:aaaaaaaaaaaa  downloading  1.0 MiB/2.0 MiB        -';
// 0.5 MiB moved in the second after the first byte count: 512 KiB/s, and 0.5 MiB left.
const A_HALF = 'layer-sha256:aaaaaaaaaaaa  downloading  1.5 MiB/2.0 MiB        512.0 KiB/s  ETA 1s';
// 1 MiB in the 1.5 s from the first byte count to the end of the download.
const A_UNPACKING = 'layer-sha256:aaaaaaaaaaaa  unpacking    2.0 MiB  682.7 KiB/s';
const A_DONE = 'layer-sha256:aaaaaaaaaaaa  done         2.0 MiB  682.7 KiB/s';

describe('PullProgressRenderer', () => {
  it('prints state changes and a periodic snapshot of what moves, with no escape codes, when not a TTY', () => {
    expect(run('plain').split('\n')).toEqual([
      'Pulling from 127.0.0.1:5000/test/busybox:latest',
      A_WAITING,
      C_EXISTS,
      A_START,
      A_HALF,
      // 1.5 MiB + 1000 B of 2 MiB + 1000 B; 0.5 MiB moved in 2 s.
      'total: 1.5 MiB/2.0 MiB  256.0 KiB/s  elapsed 2.0s',
      A_UNPACKING,
      A_DONE,
      // 1 MiB moved in 3 s (the config existed).
      'total: 2.0 MiB/2.0 MiB  341.3 KiB/s  elapsed 3.0s',
      '',
    ]);
  });

  it('redraws the block in place on a TTY, at most every 100 ms', () => {
    const up = (n: number) => `${ESC}[${n}A\r`;
    const line = (text: string) => `${ESC}[2K${text}\n`;
    const expected =
      line('Pulling from 127.0.0.1:5000/test/busybox:latest') +
      // t=0: the first draw; the config at t=50 waits for the next one.
      line(A_WAITING) +
      line('total: 0.0 B/2.0 MiB  -  elapsed 0.0s') +
      up(2) +
      line(A_START) +
      line(C_EXISTS) +
      line('total: 1.0 MiB/2.0 MiB  0.0 B/s  elapsed 1.0s') +
      up(3) +
      line(A_HALF) +
      line(C_EXISTS) +
      line('total: 1.5 MiB/2.0 MiB  256.0 KiB/s  elapsed 2.0s') +
      up(3) +
      line(A_UNPACKING) +
      line(C_EXISTS) +
      line('total: 2.0 MiB/2.0 MiB  409.6 KiB/s  elapsed 2.5s') +
      up(3) +
      line(A_DONE) +
      line(C_EXISTS) +
      line('total: 2.0 MiB/2.0 MiB  341.3 KiB/s  elapsed 3.0s') +
      // finish(): once more, at the same time.
      up(3) +
      line(A_DONE) +
      line(C_EXISTS) +
      line('total: 2.0 MiB/2.0 MiB  341.3 KiB/s  elapsed 3.0s');
    expect(run('tty')).toBe(expected);
  });

  it('draws what was held back when the timer ticks, and nothing when nothing changed', () => {
    let now = 0;
    let out = '';
    const renderer = new PullProgressRenderer({ mode: 'tty', now: () => now, write: (t) => (out += t) });
    renderer.update(PULL[1]![1]);
    now = 50;
    renderer.update(PULL[2]![1]);
    expect(out).not.toContain('config-');
    now = 120;
    renderer.tick();
    expect(out).toContain(`${ESC}[2A\r${ESC}[2K${A_WAITING}\n${ESC}[2K${C_EXISTS}\n`);
    const before = out;
    now = 500;
    renderer.tick();
    expect(out).toBe(before);
  });

  it('writes one JSON object per event for programs, and nothing at all when quiet', () => {
    const lines = run('json').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(PULL.length);
    expect(lines[1]).toEqual({ event: 'waiting', state: 'waiting', name: A, progress: 0, total: 2 * MIB });
    expect(lines[2]).toEqual({ event: 'already exists', state: 'exists', name: C, progress: 1000, total: 1000 });
    expect(lines[6]).toMatchObject({ event: 'complete', state: 'done' });
    expect(lines[0]).toEqual({ event: 'Pulling from 127.0.0.1:5000/test/busybox:latest', name: '', progress: 0, total: 0 });
    expect(run('quiet')).toBe('');
  });

  it('reads containerd 2 event words and its own, shortens refs and formats ETAs', () => {
    expect(['waiting', 'downloading', 'unpacking', 'complete', 'already exists', 'done', 'exists', 'saved'].map(stateOf)).toEqual([
      'waiting', 'downloading', 'unpacking', 'done', 'exists', 'done', 'exists', undefined,
    ]);
    expect(shortName(A)).toBe('layer-sha256:aaaaaaaaaaaa');
    expect(shortName('plain-name')).toBe('plain-name');
    expect([0.2, 59, 61, 3600 + 180].map(formatEta)).toEqual(['1s', '59s', '1m01s', '1h03m']);
  });
});

describe('berth pull options', () => {
  it('takes --platform and --label repeatedly without swallowing the reference', async () => {
    const { Command } = await import('commander');
    const { CliContext } = await import('./context.js');
    const { registerPull } = await import('./commands/pull.js');
    const { PassThrough } = await import('node:stream');
    const program = new Command('berth').exitOverride();
    const ctx = new CliContext({ stdin: new PassThrough(), stdout: new PassThrough(), stderr: new PassThrough() });
    registerPull(program, ctx);
    const pull = program.commands.find((c) => c.name() === 'pull')!;
    let seen: { ref: string; opts: Record<string, unknown> } | undefined;
    pull.action((ref: string, opts: Record<string, unknown>) => {
      seen = { ref, opts };
    });
    await program.parseAsync(['pull', '--platform', 'linux/arm64', '--platform', 'linux/amd64', '--label', 'a=b', 'host:5000/r/x:1'], { from: 'user' });
    expect(seen).toEqual({ ref: 'host:5000/r/x:1', opts: expect.objectContaining({ platform: ['linux/arm64', 'linux/amd64'], label: ['a=b'] }) });
  });
});

describe('imageStoreOf', () => {
  it('names the image after the reference, fetches the host or the given platforms, and unpacks them', async () => {
    const { imageStoreOf } = await import('./commands/pull.js');
    const arm = { os: 'linux', architecture: 'arm64', variant: '', os_version: '' };
    expect(imageStoreOf('h/r:1', { platform: ['linux/arm64'], snapshotter: 'native', label: ['k=v'] })).toEqual({
      name: 'h/r:1',
      labels: { k: 'v' },
      platforms: [arm],
      unpacks: [{ platform: arm, snapshotter: 'native' }],
    });
    const all = imageStoreOf('h/r:1', { allPlatforms: true });
    expect(all.platforms).toEqual([]);
    expect(all.unpacks).toHaveLength(1);
    expect(imageStoreOf('h/r:1', { unpack: false }).unpacks).toEqual([]);
    expect(() => imageStoreOf('h/r:1', { allPlatforms: true, platform: ['linux/amd64'] })).toThrow(/exclude each other/);
    expect(() => imageStoreOf('h/r:1', { platform: ['not/a/plat/form'] })).toThrow();
  });
});

describe('push states', () => {
  const L = `layer-sha256:${'b'.repeat(64)}`;
  const M = `manifest-sha256:${'d'.repeat(64)}`;
  it('shows uploading with bytes and rate, mounted and exists without moving bytes, in plain mode', () => {
    let now = 0;
    let out = '';
    const renderer = new PullProgressRenderer({ mode: 'plain', now: () => now, write: (t) => (out += t) });
    renderer.update({ event: 'waiting', name: A, progress: 0, total: 2 * MIB });
    renderer.update({ event: 'mounted', name: L, progress: MIB, total: MIB });
    renderer.update({ event: 'exists', name: C, progress: 1000, total: 1000 });
    now = 1000;
    renderer.update({ event: 'uploading', name: A, progress: MIB, total: 2 * MIB });
    now = 2000;
    renderer.update({ event: 'uploading', name: A, progress: 1.5 * MIB, total: 2 * MIB });
    renderer.tick();
    now = 2500;
    renderer.update({ event: 'done', name: A, progress: 2 * MIB, total: 2 * MIB });
    renderer.update({ event: 'done', name: M, progress: 500, total: 500 });
    renderer.finish();
    const lines = out.trimEnd().split('\n');
    expect(lines).toContain('layer-sha256:bbbbbbbbbbbb  mounted      1.0 MiB');
    expect(lines).toContain(C_EXISTS);
    expect(lines).toContain('layer-sha256:aaaaaaaaaaaa  uploading    1.0 MiB/2.0 MiB        -');
    expect(lines).toContain('layer-sha256:aaaaaaaaaaaa  uploading    1.5 MiB/2.0 MiB        512.0 KiB/s  ETA 1s');
    // the mounted and existing blobs count as there, not as moved bytes
    expect(lines.at(-1)).toMatch(/^total: 3\.0 MiB\/3\.0 MiB {2}/);
    expect(stateOf('mounted')).toBe('mounted');
    expect(stateOf('uploading')).toBe('uploading');
  });
});
