import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isInvalidArgument } from '@berth/core';
import { runCli } from './cli.js';
import { resolveGlobalOptions } from './context.js';

async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (b: Buffer) => out.push(b));
  stderr.on('data', (b: Buffer) => err.push(b));
  const code = await runCli(args, { stdin: Readable.from([]), stdout, stderr });
  return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'berth-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('resolveGlobalOptions', () => {
  it('applies defaults and parses the timeout', () => {
    expect(resolveGlobalOptions({})).toEqual({ address: '/run/berth/berth.sock', namespace: 'default', format: 'table', timeoutMs: 0 });
    expect(resolveGlobalOptions({ address: '/x.sock', namespace: 'n', format: 'json', timeout: '1m', lease: 'l1' })).toEqual({
      address: '/x.sock',
      namespace: 'n',
      format: 'json',
      timeoutMs: 60_000,
      lease: 'l1',
    });
  });

  it('refuses an unknown format', () => {
    let err: unknown;
    try {
      resolveGlobalOptions({ format: 'yaml' });
    } catch (e) {
      err = e;
    }
    expect(isInvalidArgument(err)).toBe(true);
  });
});

describe('runCli', () => {
  it('prints help and the version with exit 0', async () => {
    const help = await run('--help');
    expect(help.code).toBe(0);
    for (const cmd of ['version', 'plugins', 'namespaces', 'events', 'content', 'leases', 'snapshots']) expect(help.stdout).toContain(cmd);
    const version = await run('--version');
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('reports usage errors as berth: … with exit 1', async () => {
    const unknown = await run('frobnicate');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^berth: unknown command 'frobnicate'/);
    const format = await run('--format', 'yaml', 'version');
    expect(format.code).toBe(1);
    expect(format.stderr).toMatch(/^berth: option '--format <format>' argument 'yaml' is invalid/);
    const missing = await run('ns', 'create');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^berth: missing required argument 'name'/);
  });

  it('reports bad values before connecting', async () => {
    const res = await run('-a', join(dir, 'none.sock'), 'content', 'rm', 'not-a-digest');
    expect(res.code).toBe(1);
    expect(res.stderr).toBe('berth: could not delete not-a-digest: digest "not-a-digest" failed validation: invalid checksum digest format: invalid argument\n');
    const duration = await run('-a', join(dir, 'none.sock'), 'leases', 'create', '--expires', '1d');
    expect(duration.stderr).toBe('berth: invalid duration "1d": invalid argument\n');
  });

  it('checks the arguments of the snapshots commands before connecting', async () => {
    const address = join(dir, 'none.sock');
    const commit = await run('-a', address, 'snapshots', 'commit', 'c1');
    expect(commit.code).toBe(1);
    expect(commit.stderr).toMatch(/^berth: missing required argument 'key'/);
    const mounts = await run('-a', address, 'snapshot', 'mounts', '/mnt/x');
    expect(mounts.stderr).toMatch(/^berth: missing required argument 'key'/);
    const prepare = await run('-a', address, 'snapshots', 'prepare', 'k1', 'c1', 'extra');
    expect(prepare.stderr).toMatch(/^berth: too many arguments for 'prepare'/);
    const label = await run('-a', address, 'snapshots', '--snapshotter', 'native', 'label', 'k1', '=v');
    expect(label.stderr).toBe('berth: label "=v" has an empty key: invalid argument\n');
    const diff = await run('-a', address, 'snapshots', 'diff', '--label', '=x', 'k1');
    expect(diff.stderr).toBe('berth: label "=x" has an empty key: invalid argument\n');
  });

  it('says when berthd is not there', async () => {
    const address = join(dir, 'none.sock');
    const res = await run('--address', address, 'namespaces', 'ls');
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(`berth: cannot connect to berthd at ${address}: connect ENOENT ${address}\n`);
  });
});
