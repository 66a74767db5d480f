// The builder end to end, as a user runs it: the built `berth-build` bin on the two examples (examples/), and on
// manifests it must refuse. Each distribution is started as a real process on temp dirs and driven with Debian's
// ctr; the minimal image store pulls a test image (tools/images) from the loopback registry (Debian's
// docker-registry) and refuses `ctr run`.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { contentProviderToken, contentStoreToken, imagesToken, PLUGIN_API_VERSION } from '@berth/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage } from '../../../tools/images/index.mjs';
import { ctrTable, DAEMON_MAIN, expectOk, hasCtr, hasRoot, run, startBerthd, type Berthd } from '../../daemon/test/harness.js';
import { hasRegistry, pushLayout, startRegistry, type Registry } from '../../daemon/test/registry.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const BUILD = fileURLToPath(new URL('../dist/bin.js', import.meta.url));
const MINIMAL = join(repo, 'examples/minimal-image-store/berth.toml');
const FULL = join(repo, 'examples/full-with-plugin/berth.toml');

const build = (args: readonly string[]) => run(process.execPath, [BUILD, ...args], { timeoutMs: 240_000 });

/** The plugin URIs a distribution says it contains (its distribution.json, written by the build). */
function distributionUris(outDir: string): string[] {
  const meta = JSON.parse(readFileSync(join(outDir, 'distribution.json'), 'utf8')) as { plugins: Array<{ uri: string }> };
  return meta.plugins.map((p) => p.uri);
}

/** TYPE.ID of every row of `ctr plugins ls`. */
async function servedUris(daemon: Berthd): Promise<string[]> {
  const rows = ctrTable(expectOk(await daemon.ctr(['plugins', 'ls']), 'ctr plugins ls').stdout);
  return rows.map((r) => `${r.TYPE}.${r.ID}`);
}

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'berth-builder-'));
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('refused selections', () => {
  /** A manifest in its own dir, from the minimal example's text with `edit` applied. */
  async function manifestLike(name: string, edit: (text: string) => string): Promise<{ file: string; out: string; dir: string }> {
    const dir = join(work, name);
    await mkdir(dir, { recursive: true });
    const file = join(dir, 'berth.toml');
    await writeFile(file, edit(readFileSync(MINIMAL, 'utf8')));
    return { file, out: join(dir, 'out', 'dist'), dir };
  }

  it('the minimal example checks as complete', async () => {
    const checked = expectOk(await build([MINIMAL, '--check']), 'berth build --check');
    expect(checked.stdout).toMatch(/^minimal-image-store 0\.1\.0: 17 plugins, the selection is complete/);
  });

  it('leaving out the metadata plugin is refused, naming the missing tokens and who requires them; nothing is written', async () => {
    const { file, out } = await manifestLike('no-metadata', (t) => t.replace('[[plugins]]\npackage = "@berth/plugin-metadata-lmdb"\n', ''));
    expect(readFileSync(file, 'utf8')).not.toContain('metadata-lmdb');
    const r = await build([file, '-o', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^berth build: distribution minimal-image-store 0\.1\.0 .* cannot run:/);
    expect(r.stderr).toContain(`plugin io.containerd.grpc.v1.content requires "${contentStoreToken.id}"`);
    expect(r.stderr).toContain(`plugin io.containerd.grpc.v1.images requires "${imagesToken.id}"`);
    expect(r.stderr).toContain(`plugin io.containerd.differ.v1.walking requires "${contentProviderToken.id}"`);
    expect(existsSync(join(out, '..'))).toBe(false);
  });

  it('a plugin whose pluginApi range the core does not satisfy is refused, naming the plugin, its range and the core version', async () => {
    const { file, out, dir } = await manifestLike('old-api', (t) => `${t.replace('[config]', '[[plugins]]\npath = "./old-plugin.mjs"\n\n[config]')}`);
    // What a plugin built against an older core looks like: the manifest envelope definePlugin makes, by hand.
    await writeFile(
      join(dir, 'old-plugin.mjs'),
      "export default { $$type: '@berth/PluginManifest', manifestVersion: 1, type: 'io.example.old.v1', id: 'legacy', version: '0.9.0', pluginApi: '^1.0.0', init: () => ({}) };\n",
    );
    const r = await build([file, '-o', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`plugin io.example.old.v1.legacy@0.9.0 requires plugin API ^1.0.0, but the core provides ${PLUGIN_API_VERSION}`);
    expect(readdirSync(dir).sort()).toEqual(['berth.toml', 'old-plugin.mjs']);
  });

  it('a bad manifest is refused with every problem at once', async () => {
    const { file, out } = await manifestLike('bad', (t) =>
      t.replace('name = "minimal-image-store"', 'name = "Not A Name"').replace('package = "@berth/plugin-services-diff"', 'package = "@berth/plugin-services-diff"\npath = "./x"'),
    );
    const r = await build([file, '-o', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('distribution.name: must be lower-case words');
    expect(r.stderr).toContain(': give exactly one of package or path');
    expect(existsSync(join(out, '..'))).toBe(false);
  });

  it('a plugin section of the default config that its schema refuses fails the build', async () => {
    const { file, out } = await manifestLike('bad-config', (t) => `${t}\n[config.plugins."io.containerd.gc.v1.scheduler"]\nno_such_key = 1\n`);
    const r = await build([file, '-o', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('io.containerd.gc.v1.scheduler');
    expect(r.stderr).toContain('no_such_key');
    expect(existsSync(join(out, '..'))).toBe(false);
  });
});

const ready = hasCtr() && hasRoot() && hasRegistry();

describe.skipIf(!ready)('the minimal image store example', () => {
  let out: string;
  let daemon: Berthd | undefined;
  let registry: Registry | undefined;

  beforeAll(async () => {
    out = join(work, 'minimal');
    expectOk(await build([MINIMAL, '-o', out]), 'berth build');
    daemon = await startBerthd({ bin: join(out, 'bin', 'minimal-image-store'), logLevel: 'info' });
    registry = await startRegistry();
  }, 300_000);

  afterAll(async () => {
    await daemon?.stop();
    await registry?.stop();
  });

  it('is a directory with its own bin and default config', () => {
    expect(readdirSync(out).sort()).toEqual(['bin', 'config.toml', 'distribution.json', 'lib', 'node_modules', 'package.json']);
    expect(readFileSync(join(out, 'config.toml'), 'utf8')).toContain('address = "/run/minimal-image-store/minimal-image-store.sock"');
  });

  it('--version names the distribution and every plugin with its version', async () => {
    const r = expectOk(await run(join(out, 'bin', 'minimal-image-store'), ['--version']));
    const [first, ...rest] = r.stdout.trimEnd().split('\n');
    expect(first).toBe('minimal-image-store v0.1.0 minimal-image-store-0.1.0');
    const meta = JSON.parse(readFileSync(join(out, 'distribution.json'), 'utf8')) as { plugins: Array<{ uri: string; version: string }> };
    expect(rest.map((l) => l.trim())).toEqual(meta.plugins.map((p) => `${p.uri} ${p.version}`));
    expect(rest.join('\n')).toContain('io.containerd.content.v1.content');
  });

  it('answers ctr version with its own version', async () => {
    const r = expectOk(await daemon!.ctr(['version']));
    expect(r.stdout).toMatch(/Server:\s+Version:\s+v0\.1\.0\s+Revision:\s+minimal-image-store-0\.1\.0/);
  });

  it('ctr plugins ls shows exactly its plugins: no runtime, tasks or containers', async () => {
    const served = await servedUris(daemon!);
    expect([...served].sort()).toEqual(distributionUris(out).sort());
    // One plugin per [[plugins]] entry of the manifest (each names a package with one manifest).
    expect(served).toHaveLength((readFileSync(MINIMAL, 'utf8').match(/^\[\[plugins\]\]$/gm) ?? []).length);
    expect(served).not.toContain('io.containerd.runtime.v2.task');
    expect(served.some((u) => u.startsWith('io.containerd.grpc.v1.tasks') || u.startsWith('io.containerd.grpc.v1.containers'))).toBe(false);
  });

  it('ctr images pull fills it from the loopback registry; ctr run is refused with Unimplemented', async () => {
    const image = await buildImage('tiny', join(work, 'layouts', 'tiny'));
    await pushLayout(registry!, image.dir, 'test/tiny:latest');
    const ref = `${registry!.host}/test/tiny:latest`;
    expectOk(await daemon!.ctr(['images', 'pull', '--plain-http', ref], { timeoutMs: 120_000 }), 'ctr images pull');
    const images = ctrTable(expectOk(await daemon!.ctr(['images', 'ls'])).stdout);
    expect(images.map((i) => i.REF)).toContain(ref);
    const snapshots = expectOk(await daemon!.ctr(['snapshots', 'ls'])).stdout;
    expect(snapshots.split('\n').filter((l) => l.trim() !== '').length).toBeGreaterThan(1);

    const runResult = await daemon!.ctr(['run', '--rm', ref, 'refused', '/bin/true'], { timeoutMs: 60_000 });
    expect(runResult.code).not.toBe(0);
    expect(runResult.stderr).toMatch(/not implemented|unimplemented/i);
    expect(runResult.stderr).toContain('containerd.services.containers.v1.Containers');
    // The daemon is still up and still has the image.
    expect(ctrTable(expectOk(await daemon!.ctr(['images', 'ls'])).stdout).map((i) => i.REF)).toContain(ref);
  }, 180_000);
});

describe.skipIf(!hasCtr())('the full daemon with a third-party plugin example', () => {
  let out: string;

  beforeAll(async () => {
    out = join(work, 'full');
    expectOk(await build([FULL, '-o', out]), 'berth build');
  }, 300_000);

  it('--version lists berthd\'s plugins and the greeter', async () => {
    const r = expectOk(await run(join(out, 'bin', 'berthd-greeter'), ['--version']));
    expect(r.stdout.split('\n')[0]).toBe('berthd-greeter v1.0.0 berthd-greeter-1.0.0');
    expect(r.stdout).toContain('  io.example.greeter.v1.hello 1.2.0\n');
    expect(r.stdout).toContain('  io.containerd.runtime.v2.task ');
  });

  it('serves every berthd plugin plus the greeter, configured from the distribution\'s config.toml', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-full-example-'));
    const address = join(dir, 'd.sock');
    // No --config: the distribution's own config.toml (with the greeter's section), paths from flags.
    const child = spawn(process.execPath, [join(out, 'bin', 'berthd-greeter'), '--root', join(dir, 'root'), '--state', join(dir, 'state'), '--address', address], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let logs = '';
    child.stdout.on('data', (d: Buffer) => (logs += d.toString()));
    child.stderr.on('data', (d: Buffer) => (logs += d.toString()));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      const deadline = Date.now() + 30_000;
      while (!existsSync(address) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
      expect(existsSync(address), `the distribution did not start:\n${logs}`).toBe(true);
      const ctr = (args: string[]) => run('/usr/bin/ctr', ['--address', address, ...args]);
      const rows = ctrTable(expectOk(await ctr(['plugins', 'ls'])).stdout);
      expect(rows.map((r) => `${r.TYPE}.${r.ID}`).sort()).toEqual(distributionUris(out).sort());
      // The same set as berthd's own plugins (its --version lists them), plus the greeter.
      const berthdUris = expectOk(await run(DAEMON_MAIN, ['--version'])).stdout.split('\n').slice(1).filter((l) => l !== '').map((l) => l.trim().split(' ')[0]!);
      expect(berthdUris.length).toBeGreaterThan(20);
      expect(rows.map((r) => `${r.TYPE}.${r.ID}`).sort()).toEqual([...berthdUris, 'io.example.greeter.v1.hello'].sort());
      expect(rows.find((r) => r.TYPE === 'io.example.greeter.v1')?.STATUS).toBe('ok');
      const detail = expectOk(await ctr(['plugins', 'ls', '-d', 'id==hello'])).stdout;
      expect(detail).toContain('hello from berthd-greeter');
      expect(expectOk(await ctr(['version'])).stdout).toMatch(/Version:\s+v1\.0\.0/);
    } finally {
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
