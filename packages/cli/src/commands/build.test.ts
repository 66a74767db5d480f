import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../cli.js';

const MINIMAL = fileURLToPath(new URL('../../../../examples/minimal-image-store/berth.toml', import.meta.url));

async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await runCli(args, { stdin: Readable.from([]), stdout, stderr });
  return { code, stdout: out, stderr: err };
}

describe('berth build (runs @berth/builder)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-cli-build-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('--check of the minimal example passes and writes nothing', async () => {
    const r = await run('build', '--check', MINIMAL, '-o', join(dir, 'out'));
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^minimal-image-store 0\.1\.0: \d+ plugins, the selection is complete\n$/);
    expect(r.code).toBe(0);
    expect(await readdir(dir)).toEqual([]);
  }, 60_000);

  it('a refused manifest exits 1 with the builder\'s message', async () => {
    const manifest = join(dir, 'empty.toml');
    await writeFile(manifest, '[distribution]\nname = "empty"\nversion = "1.0.0"\n');
    const r = await run('build', manifest);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('[[plugins]]: the distribution names no plugins');
  }, 60_000);
});
