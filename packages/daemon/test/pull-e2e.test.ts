// `berth pull` (daemon-side, through Transfer) end to end against Debian's docker-registry on loopback: the unpacked
// `layers` image is umoci's tree; a registry serving a blob whose bytes do not match its digest fails the pull with
// the digest named and nothing committed; SIGKILL of berthd (and of the CLI) in the middle of a pull, then the pull
// again: it completes, and the blobs committed before the kill are not downloaded again. Each test has its own
// registry and berthd, stopped by PID in its own teardown.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MNT_DETACH, umount2 } from '@berth/sys';
import { afterEach, describe, expect, it } from 'vitest';
import { buildImage, cachedImage, compareTrees, formatDifferences, hasUmoci, snapshotTree, umociUnpack } from '../../../tools/images/index.mjs';
import { CLI_MAIN, hasCtr, hasRoot, QUIET_GC, startBerthd, type Berthd, type RunResult } from './harness.js';
import { hasRegistry, pushLayout, startRegistry, type Registry } from './registry.js';

const ready = hasRoot() && hasCtr() && hasRegistry() && hasUmoci();

const ok = (r: RunResult, what = 'command'): RunResult => {
  expect(r.code, `${what} failed (${r.code}): ${r.stderr}\n${r.stdout}`).toBe(0);
  return r;
};

function isMounted(target: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[4] === target);
}

interface JsonEvent {
  readonly event?: string;
  readonly state?: string;
  readonly name?: string;
}

const parseJsonLines = (stdout: string): JsonEvent[] =>
  stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as JsonEvent);

/**
 * `berth --format json pull` as a child the test watches: `untilLayerDone` resolves with the layer names reported
 * done so far once the first layer is done (or rejects when the pull ends first).
 */
function watchedPull(berthd: Berthd, namespace: string, ref: string) {
  const child = spawn(process.execPath, [CLI_MAIN, '--address', berthd.address, '-n', namespace, '--format', 'json', 'pull', '--plain-http', ref], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let onLine: () => void = () => {};
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    onLine();
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const doneLayers = (): string[] =>
    parseJsonLines(stdout.slice(0, stdout.lastIndexOf('\n') + 1))
      .filter((e) => e.name?.startsWith('layer-') && e.state === 'done')
      .map((e) => e.name!);
  const untilLayerDone = new Promise<string[]>((resolve, reject) => {
    onLine = () => {
      const done = doneLayers();
      if (done.length > 0) resolve(done);
    };
    void exited.then(() => reject(new Error(`the pull ended before a layer was done:\n${stderr}\n${stdout}`)));
  });
  return {
    child,
    exited,
    untilLayerDone,
    output: () => ({ stdout, stderr }),
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      return exited;
    },
  };
}

describe.skipIf(!ready)(`berth pull end to end${ready ? '' : ' (skipped: needs root, /usr/bin/ctr, docker-registry and umoci)'}`, () => {
  // what each test started, stopped in afterEach even when the test failed
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
  });

  async function setup(prefix: string): Promise<{ work: string; registry: Registry }> {
    const work = await mkdtemp(join(tmpdir(), `berth-pull-e2e-${prefix}-`));
    cleanups.push(() => rm(work, { recursive: true, force: true }));
    const registry = await startRegistry();
    cleanups.push(() => registry.stop());
    return { work, registry };
  }

  async function daemon(options: { dir?: string } = {}): Promise<Berthd> {
    const berthd = await startBerthd({ config: QUIET_GC, logLevel: 'info', ...options });
    cleanups.push(() => berthd.stop());
    return berthd;
  }

  it('berth pull of layers unpacks to the tree umoci unpacks (mounted with ctr images mount)', async () => {
    const { work, registry } = await setup('trees');
    const image = await buildImage('layers', join(work, 'layout'));
    const { reference: ref } = await pushLayout(registry, image.dir, 'test/layers:latest');
    const berthd = await daemon();
    const ns = 'e2e-trees';
    const pull = ok(await berthd.berth(['-n', ns, 'pull', '--plain-http', ref], { timeoutMs: 120_000 }), 'berth pull');
    expect(pull.stdout.trim()).toBe(`${ref}: ${image.target.digest}`);

    const target = join(work, 'mnt');
    await mkdir(target);
    cleanups.push(async () => {
      if (isMounted(target)) await umount2(target, MNT_DETACH);
    });
    ok(await berthd.ctr(['images', 'mount', ref, target], { namespace: ns, timeoutMs: 60_000 }), 'ctr images mount');
    try {
      const umoci = umociUnpack(image.dir, 'latest', join(work, 'umoci'));
      const differences = (await compareTrees(umoci, target)).filter((d) => d.path !== '.');
      expect(formatDifferences(differences, { a: 'umoci', b: 'berthd' })).toBe('');
      // the control: the mount shows the image, feature layers included
      const tree = await snapshotTree(target);
      expect(tree.get('bin/busybox')?.type).toBe('file');
      expect(tree.get('data/setuid')?.mode).toBe(0o4755);
    } finally {
      ok(await berthd.ctr(['images', 'unmount', '--rm', target], { namespace: ns, timeoutMs: 60_000 }), 'ctr images unmount');
    }
    expect(isMounted(target)).toBe(false);
  }, 240_000);

  it('a blob whose bytes do not match its digest fails the pull naming the digest, commits nothing, and berthd stays up', async () => {
    const { work, registry } = await setup('tamper');
    const image = await buildImage('tiny', join(work, 'layout'));
    const { reference: ref } = await pushLayout(registry, image.dir, 'test/tampered:latest');
    const layer = image.manifests[0]!.layers[0]!;
    const dataFile = registry.blobPath(layer.descriptor.digest);
    const { size } = await stat(dataFile);
    expect(size).toBe(layer.descriptor.size);
    await writeFile(dataFile, Buffer.alloc(size, 0x5a)); // same size, other bytes
    const berthd = await daemon();
    const ns = 'e2e-tamper';

    const pull = await berthd.berth(['-n', ns, 'pull', '--plain-http', ref], { timeoutMs: 120_000 });
    expect(pull.code).not.toBe(0);
    expect(pull.stderr).toMatch(/^berth: /m);
    expect(pull.stderr).toContain(`failed to fetch ${layer.descriptor.mediaType} ${layer.descriptor.digest}`);
    expect(pull.stdout).not.toContain(image.target.digest);

    const content = ok(await berthd.ctr(['content', 'ls', '--quiet'], { namespace: ns }), 'ctr content ls');
    expect(content.stdout.split('\n')).not.toContain(layer.descriptor.digest);
    const snapshots = ok(await berthd.ctr(['snapshots', 'ls'], { namespace: ns }), 'ctr snapshots ls');
    expect(snapshots.stdout).not.toContain(layer.diffId);
    expect(snapshots.stdout).not.toMatch(/Committed/);
    expect(ok(await berthd.ctr(['images', 'ls', '-q'], { namespace: ns }), 'ctr images ls').stdout.split('\n')).not.toContain(ref);
    ok(await berthd.ctr(['version']), 'ctr version');
  }, 180_000);

  it('SIGKILL of berthd mid-pull: after a restart on the same root the pull completes without downloading the finished layers again', async () => {
    const { registry } = await setup('kill-daemon');
    const image = await cachedImage('big', { big: { mib: 40 } });
    const { reference: ref } = await pushLayout(registry, image.dir, 'test/big:latest');
    const layers = image.manifests[0]!.layers.map((l) => `layer-${l.descriptor.digest}`);
    expect(layers.length).toBeGreaterThan(1);
    const first = await daemon();
    const ns = 'e2e-kill-daemon';

    const pull = watchedPull(first, ns, ref);
    cleanups.push(() => pull.kill());
    const doneBeforeKill = await pull.untilLayerDone;
    await first.kill('SIGKILL');
    const ended = await pull.exited;
    expect(ended.code, 'the CLI reports the lost daemon').not.toBe(0);
    for (const name of doneBeforeKill) expect(layers).toContain(name);
    // the control: the kill landed in the middle of the pull
    expect(doneBeforeKill.length).toBeLessThan(layers.length);

    const second = await daemon({ dir: first.dir });
    const again = ok(await second.berth(['-n', ns, '--format', 'json', 'pull', '--plain-http', ref], { timeoutMs: 180_000 }), 'second berth pull');
    const events = parseJsonLines(again.stdout);
    expect(events.at(-1)).toEqual({ image: ref, digest: image.target.digest });
    for (const name of doneBeforeKill) {
      const states = events.filter((e) => e.name === name).map((e) => e.state);
      expect(states, name).toContain('exists');
      expect(states, name).not.toContain('downloading');
    }
    expect(ok(await second.ctr(['images', 'check'], { namespace: ns }), 'ctr images check').stdout).toMatch(/complete/);
    const snapshots = ok(await second.ctr(['snapshots', 'ls'], { namespace: ns }), 'ctr snapshots ls').stdout;
    expect(snapshots.match(/Committed/g)?.length).toBe(layers.length);
  }, 300_000);

  it('SIGKILL of the CLI mid-pull: berthd stays up and the pull can be redone to completion', async () => {
    const { registry } = await setup('kill-cli');
    const image = await cachedImage('big', { big: { mib: 40 } });
    const { reference: ref } = await pushLayout(registry, image.dir, 'test/big:latest');
    const layers = image.manifests[0]!.layers;
    const berthd = await daemon();
    const ns = 'e2e-kill-cli';

    const pull = watchedPull(berthd, ns, ref);
    cleanups.push(() => pull.kill());
    await pull.untilLayerDone;
    expect((await pull.kill()).signal).toBe('SIGKILL');
    ok(await berthd.ctr(['version']), 'ctr version');

    const again = ok(await berthd.berth(['-n', ns, '--format', 'json', 'pull', '--plain-http', ref], { timeoutMs: 180_000 }), 'second berth pull');
    expect(parseJsonLines(again.stdout).at(-1)).toEqual({ image: ref, digest: image.target.digest });
    expect(ok(await berthd.ctr(['images', 'check'], { namespace: ns }), 'ctr images check').stdout).toMatch(/complete/);
    const snapshots = ok(await berthd.ctr(['snapshots', 'ls'], { namespace: ns }), 'ctr snapshots ls').stdout;
    expect(snapshots.match(/Committed/g)?.length).toBe(layers.length);
    ok(await berthd.ctr(['version']), 'ctr version');
    expect(berthd.alive).toBe(true);
  }, 300_000);
});
