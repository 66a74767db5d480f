// The built `berth` CLI (its launcher, dist/berth-launch.cjs) against a real berthd process, cross-checked with Debian's ctr.
// Build first: cd /work/main && pnpm nx run @berth/cli:build --output-style=static (and @berth/daemon:build).
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Berthd, CLI_MAIN, DAEMON_MAIN, hasCtr, hasRoot, startBerthd } from '../../daemon/test/harness.js';
import { sha256Digest as sha256 } from '@berth/core';

const ready = hasRoot() && hasCtr() && existsSync(DAEMON_MAIN) && existsSync(CLI_MAIN);

/** Rows of a table printed by berth or ctr, split on runs of 2+ spaces (or tabs), header dropped. */
function rows(stdout: string): string[][] {
  return stdout
    .trimEnd()
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s{2,}|\t+/));
}

describe.skipIf(!ready)('berth against berthd', () => {
  let daemon: Berthd;
  beforeAll(async () => {
    daemon = await startBerthd();
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  const berth = async (args: readonly string[], input?: Buffer | string) => {
    const r = await daemon.berth(args, { input });
    return r;
  };
  const ok = async (args: readonly string[], input?: Buffer | string) => {
    const r = await berth(args, input);
    expect(r.code, `berth ${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r;
  };
  const ctrOk = async (args: readonly string[], options: { namespace?: string; input?: Buffer } = {}) => {
    const r = await daemon.ctr(args, options);
    expect(r.code, `ctr ${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r;
  };

  it('version prints the client version and the server version and UUID that ctr sees', async () => {
    const r = await ok(['version']);
    expect(r.stdout).toMatch(/^Client:\n\s+Version:\s+\d+\.\d+\.\d+\n\nServer:\n\s+Version:\s+\S+\n\s+Revision:\s+\S+\n\s+UUID:\s+[0-9a-f-]{36}\n$/);
    const ctr = await ctrOk(['version']);
    expect(/UUID:\s+(\S+)/.exec(r.stdout)?.[1]).toBe(/UUID:\s+(\S+)/.exec(ctr.stdout)?.[1]);
    const json = JSON.parse((await ok(['--format', 'json', 'version'])).stdout) as { server: { uuid: string; version: string } };
    expect(json.server.uuid).toBe(/UUID:\s+(\S+)/.exec(ctr.stdout)?.[1]);
    expect(r.stdout).toContain(`Version:  ${json.server.version}`);
  });

  it('plugins ls shows what ctr shows, plus each package version', async () => {
    const mine = rows((await ok(['plugins', 'ls'])).stdout);
    const theirs = rows((await ctrOk(['plugins', 'ls'])).stdout);
    expect(mine.map(([type, id, , platforms, status]) => [type, id, platforms, status])).toEqual(theirs.map((r) => r.slice(0, 4)));
    const content = mine.find(([type, id]) => type === 'io.containerd.content.v1' && id === 'content');
    expect(content?.[2]).toMatch(/^\d+\.\d+\.\d+/);
    expect(content?.[4]).toBe('ok');

    const detailed = (await ok(['plugins', 'ls', '-d'])).stdout;
    expect(detailed).toMatch(/Type:\s+io\.containerd\.content\.v1\nID:\s+content\nVersion:\s+\d+\.\d+\.\d+/);
    expect(detailed).toContain(`root             ${daemon.root}/io.containerd.content.v1.content`);

    const json = JSON.parse((await ok(['--format', 'json', 'plugins', 'ls'])).stdout) as { type: string; id: string; version: string | null; status: string }[];
    expect(json.length).toBe(mine.length);
    expect(json.find((p) => p.id === 'content')?.version).toBe(content?.[2]);
    const quiet = (await ok(['plugins', 'ls', '-q'])).stdout.trim().split('\n');
    expect(quiet).toEqual(mine.map(([, id]) => id));
    const filtered = rows((await ok(['plugins', 'ls', 'type==io.containerd.content.v1'])).stdout);
    expect(filtered.map(([type]) => type)).toEqual(['io.containerd.content.v1']);
  });

  it('namespaces create, ls, label and rm agree with ctr', async () => {
    expect((await ok(['namespaces', 'create', 'cli-ns', 'a=b', 'x=y'])).stdout).toBe('');
    expect((await ctrOk(['namespaces', 'ls'])).stdout).toMatch(/^cli-ns\s+a=b,x=y\s*$/m);
    expect((await ok(['ns', 'label', 'cli-ns', 'c=d', 'a='])).stdout).toBe('c=d,x=y\n');
    expect((await ctrOk(['namespaces', 'ls'])).stdout).toMatch(/^cli-ns\s+c=d,x=y\s*$/m);
    expect((await ok(['ns', 'ls'])).stdout).toMatch(/^cli-ns\s+c=d,x=y$/m);
    expect((await ok(['ns', 'ls', '-q'])).stdout.split('\n')).toContain('cli-ns');
    const json = JSON.parse((await ok(['--format', 'json', 'ns', 'ls'])).stdout) as { name: string; labels: Record<string, string> }[];
    expect(json.find((n) => n.name === 'cli-ns')?.labels).toEqual({ c: 'd', x: 'y' });

    const dup = await berth(['ns', 'create', 'cli-ns']);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toMatch(/^berth: .*cli-ns.*: already exists\n$/);

    const rm = await ok(['ns', 'remove', 'cli-ns', 'cli-ns-missing']);
    expect(rm.stdout).toBe('cli-ns\ncli-ns-missing\n');
    expect(rm.stderr).toMatch(/warning: .*cli-ns-missing.*not found/);
    expect((await ctrOk(['namespaces', 'ls', '-q'])).stdout.split('\n')).not.toContain('cli-ns');

    // Like containerd, labelling a namespace that does not exist creates it.
    expect((await ok(['ns', 'label', 'cli-ns-lazy', 'k=v'])).stdout).toBe('k=v\n');
    expect((await ctrOk(['namespaces', 'ls'])).stdout).toMatch(/^cli-ns-lazy\s+k=v\s*$/m);
  });

  it('content ingest, ls, info, get, label and rm round-trip with ctr', async () => {
    const blob = randomBytes(3 * 1024 * 1024 + 123);
    const digest = sha256(blob);
    // Unreferenced content is garbage: keep it in a lease while the test looks at it.
    await ok(['-n', 'cli-content', 'leases', 'create', '--id', 'cli-content-lease', '--expires', '1h']);
    const ingest = await ok(['-n', 'cli-content', '--lease', 'cli-content-lease', 'content', 'ingest', 'cli-ref-1', '--expected-size', String(blob.length), '--expected-digest', digest], blob);
    expect(ingest.stdout).toBe('');
    expect(ingest.stderr).toBe('');

    const fromCtr = await daemon.ctr(['content', 'get', digest], { namespace: 'cli-content' });
    expect(fromCtr.code, fromCtr.stderr).toBe(0);
    expect(fromCtr.stdoutBuffer.equals(blob)).toBe(true);
    const got = await daemon.berth(['-n', 'cli-content', 'content', 'get', digest]);
    expect(got.code, got.stderr).toBe(0);
    expect(got.stdoutBuffer.equals(blob)).toBe(true);

    const listed = rows((await ok(['-n', 'cli-content', 'content', 'ls'])).stdout);
    expect(listed).toContainEqual([digest, '3.146MB', expect.stringMatching(/second/), '-']);
    const info = JSON.parse((await ok(['-n', 'cli-content', '--format', 'json', 'content', 'info', digest])).stdout) as { size: number; created_at: string };
    expect(info.size).toBe(blob.length);
    expect(Date.parse(info.created_at)).toBeGreaterThan(Date.now() - 60_000);
    expect((await ok(['-n', 'cli-content', 'content', 'info', digest])).stdout).toMatch(new RegExp(`^Digest: +${digest}\nSize: +${blob.length} \\(3\\.146MB\\)\n`));

    expect((await ok(['-n', 'cli-content', 'content', 'label', digest, 'b=2', 'a=1'])).stdout).toBe('a=1,b=2\n');
    expect((await ok(['-n', 'cli-content', 'content', 'label', digest, 'a='])).stdout).toBe('b=2\n');
    expect((await ctrOk(['content', 'ls'], { namespace: 'cli-content' })).stdout).toMatch(new RegExp(`^${digest}\\s.*\\sb=2$`, 'm'));

    // Already present: ctr's WriteBlob semantics make it a success.
    await ok(['-n', 'cli-content', '--lease', 'cli-content-lease', 'content', 'ingest', 'cli-ref-again', '--expected-digest', digest], blob);

    const rm = await ok(['-n', 'cli-content', 'content', 'rm', digest, `sha256:${'0'.repeat(64)}`]);
    expect(rm.stdout).toBe(`${digest}\n`);
    expect((await ctrOk(['content', 'ls', '-q'], { namespace: 'cli-content' })).stdout).not.toContain(digest);
    for (const command of ['get', 'info']) {
      const gone = await berth(['-n', 'cli-content', 'content', command, digest]);
      expect(gone.code).toBe(1);
      expect(gone.stdout).toBe('');
      expect(gone.stderr).toMatch(new RegExp(`^berth: .*${digest}.*: not found\n$`));
    }
  });

  it('content ingest checks the expected digest and can be resumed; active lists the ingest', async () => {
    const blob = randomBytes(100_000);
    const digest = sha256(blob);
    await ok(['-n', 'cli-resume', 'leases', 'create', '--id', 'cli-resume-lease', '--expires', '1h']);
    const ns = ['-n', 'cli-resume', '--lease', 'cli-resume-lease'];
    const wrong = await berth([...ns, 'content', 'ingest', 'cli-wrong-ref', '--expected-digest', sha256(Buffer.from('other'))], blob);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^berth: .*digest/);

    // A commit that fails leaves the ingest, with what was written, for a later resume.
    const short = await berth([...ns, 'content', 'ingest', 'cli-resume-ref', '--expected-size', String(blob.length)], blob.subarray(0, 40_000));
    expect(short.code).toBe(1);
    expect(short.stderr).toMatch(/^berth: .*size.*40000 != 100000/);
    const active = rows((await ok(['-n', 'cli-resume', 'content', 'active'])).stdout);
    expect(active.find(([ref]) => ref === 'cli-resume-ref')?.slice(0, 3)).toEqual(['cli-resume-ref', '40kB', '100kB']);
    const activeJson = JSON.parse((await ok(['-n', 'cli-resume', '--format', 'json', 'content', 'active'])).stdout) as { ref: string; offset: number }[];
    expect(activeJson.find((s) => s.ref === 'cli-resume-ref')?.offset).toBe(40_000);
    expect((await ctrOk(['content', 'active'], { namespace: 'cli-resume' })).stdout).toContain('cli-resume-ref');

    // Resuming sends the whole input again; the first 40000 bytes are skipped client-side.
    const resumed = await daemon.berth(
      ['-n', 'cli-resume', 'content', 'ingest', 'cli-resume-ref', '--expected-size', String(blob.length), '--expected-digest', digest],
      { input: blob, env: { BERTH_LEASE: 'cli-resume-lease' } },
    );
    expect(resumed.code, resumed.stderr).toBe(0);
    const got = await daemon.berth(['-n', 'cli-resume', 'content', 'get', digest]);
    expect(got.stdoutBuffer.equals(blob)).toBe(true);
    expect((await ok(['-n', 'cli-resume', 'content', 'active'])).stdout).not.toContain('cli-resume-ref');
  });

  it('completion bash offers the namespaces of the daemon the command line names', async () => {
    await ctrOk(['namespaces', 'create', 'completion-ns']);
    const script = (await ok(['completion', 'bash'])).stdout;
    const words = [CLI_MAIN, '--address', daemon.address, '-n', 'completion-'];
    const r = spawnSync('bash', ['-c', `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _berth; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('completion-ns\n');
    await ctrOk(['namespaces', 'rm', 'completion-ns']);
  });

  it('namespaces rm refuses a namespace that holds content', async () => {
    await ok(['-n', 'cli-busy', 'leases', 'create', '--id', 'cli-busy-lease']);
    await ok(['-n', 'cli-busy', '--lease', 'cli-busy-lease', 'content', 'ingest', 'busy-ref'], 'busy');
    const rm = await berth(['ns', 'rm', 'cli-busy']);
    expect(rm.code).toBe(1);
    expect(rm.stdout).toBe('');
    expect(rm.stderr).toMatch(/^berth: unable to delete cli-busy: .*failed precondition\n$/);
  });

  it('leases create, ls and rm agree with ctr', async () => {
    const created = await ok(['leases', 'create', '--id', 'cli-lease', '--expires', '1h', 'a=b', 'flag']);
    expect(created.stdout).toBe('cli-lease\n');
    const ctrList = (await ctrOk(['leases', 'ls'])).stdout;
    const line = ctrList.split('\n').find((l) => l.startsWith('cli-lease '));
    // A bare key is an empty label for ctr's lease create, and the store drops empty labels.
    expect(line).toMatch(/ a=b,containerd\.io\/gc\.expire=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s*$/);
    const expire = Date.parse(/gc\.expire=(\S+)/.exec(line ?? '')?.[1] ?? '');
    expect(Math.abs(expire - (Date.now() + 3_600_000))).toBeLessThan(120_000);

    const generated = (await ok(['leases', 'create', '--expires', '0'])).stdout.trim();
    expect(generated).toMatch(/^\d+-[A-Za-z0-9_-]{4}$/);
    const mine = rows((await ok(['leases', 'ls'])).stdout);
    expect(mine.find(([id]) => id === generated)?.[2]).toBe('-');
    expect(mine.find(([id]) => id === 'cli-lease')?.[1]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const json = JSON.parse((await ok(['--format', 'json', 'leases', 'ls'])).stdout) as { id: string; labels: Record<string, string> }[];
    expect(json.find((l) => l.id === 'cli-lease')?.labels).toEqual({ a: 'b', 'containerd.io/gc.expire': expect.stringMatching(/Z$/) });
    expect((await ok(['leases', 'ls', '-q'])).stdout.split('\n')).toEqual(expect.arrayContaining(['cli-lease', generated]));

    expect((await ok(['leases', 'rm', '--sync', 'cli-lease', generated])).stdout).toBe(`cli-lease\n${generated}\n`);
    expect((await ctrOk(['leases', 'ls', '-q'])).stdout).not.toContain('cli-lease');
    const missing = await berth(['leases', 'rm', 'cli-lease']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^berth: .*not found\n$/);
  });

  for (const format of ['table', 'json'] as const) {
    it(`events streams envelopes (${format}) and ends cleanly on SIGINT`, async () => {
      const child = spawn(process.execPath, [CLI_MAIN, '--address', daemon.address, '--format', format, 'events', 'topic=="/namespaces/create"'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      try {
        // Subscribing takes a moment: create namespaces until one is reported.
        const deadline = Date.now() + 15_000;
        for (let i = 0; !out.includes('\n') && Date.now() < deadline; i++) {
          await ctrOk(['namespaces', 'create', `cli-ev-${format}-${i}`, 'k=v']);
          await new Promise((r) => setTimeout(r, 200));
        }
        const first = out.split('\n')[0] ?? '';
        if (format === 'table') {
          const match = /^(\d{4}-\d\d-\d\dT[\d:.]+Z) (\S+) (\/namespaces\/create) (\{.*\})$/.exec(first);
          expect(match, first).not.toBeNull();
          expect(Math.abs(Date.parse(match?.[1] ?? '') - Date.now())).toBeLessThan(60_000);
          expect(JSON.parse(match?.[4] ?? '')).toEqual({ name: expect.stringMatching(/^cli-ev-table-\d+$/), labels: { k: 'v' } });
        } else {
          expect(JSON.parse(first)).toMatchObject({ topic: '/namespaces/create', type: 'containerd.events.NamespaceCreate', event: { labels: { k: 'v' } } });
        }
      } finally {
        child.kill('SIGINT');
      }
      expect(await exited).toBe(0);
      expect(err).toBe('');
    });
  }
});
