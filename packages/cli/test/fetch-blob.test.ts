// `berth content fetch-blob` end to end: a real berthd, a real loopback docker-registry, the built berth CLI, and
// Debian's ctr to check what landed in the store.
// Build first: cd /work/main && pnpm nx run @berth/cli:build --output-style=static (and @berth/daemon:build).
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Berthd, CLI_MAIN, DAEMON_MAIN, hasCtr, hasRoot, startBerthd } from '../../daemon/test/harness.js';
import { hasRegistry, sha256Digest, startRegistry, type PushedBlob, type Registry } from '../../daemon/test/registry.js';
import { BerthClient } from '@berth/client';
import { BlobFetcher } from '@berth/registry';
import { runCli } from '../src/cli.js';

const ready = hasRoot() && hasCtr() && hasRegistry() && existsSync(DAEMON_MAIN) && existsSync(CLI_MAIN);
const REPO = 'test/repo';
const SOURCE_LABEL = 'containerd.io/distribution.source.127.0.0.1';

/** A loopback port that nothing listens on (it was free a moment ago). */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
    server.once('error', reject);
  });
}

async function collect(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of source) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}

describe.skipIf(!ready)('berth content fetch-blob', () => {
  let daemon: Berthd | undefined;
  let registry: Registry | undefined;
  let blob: Buffer;
  let pushed: PushedBlob;

  beforeAll(async () => {
    // Each started before the other can fail is still stopped by afterAll.
    [daemon, registry] = await Promise.all([startBerthd({ logLevel: 'info' }), startRegistry()]);
    blob = randomBytes(5 * 1024 * 1024);
    pushed = await registry.pushBlob(REPO, blob);
  });
  afterAll(async () => {
    await Promise.allSettled([daemon?.stop(), registry?.stop()]);
  });

  const d = () => daemon as Berthd;
  const r = () => registry as Registry;
  const ctrOk = async (args: readonly string[]) => {
    const res = await d().ctr(args);
    expect(res.code, `ctr ${args.join(' ')}: ${res.stderr}`).toBe(0);
    return res;
  };
  const berth = (args: readonly string[]) => d().berth(args, { timeoutMs: 60_000 });

  it('streams a 5 MiB blob into the store under a lease, labelled with its source, and ctr reads it back', async () => {
    expect((await berth(['leases', 'create', '--id', 'fetch-test', '--expires', '1h'])).code).toBe(0);
    const res = await berth(['--lease', 'fetch-test', 'content', 'fetch-blob', '--plain-http', `${r().host}/${REPO}`, pushed.digest]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(new RegExp(`^${pushed.digest}: fetched 5\\.00 MiB in \\d+\\.\\d\\ds \\(\\d+\\.\\d MiB/s\\)\\n$`));
    expect(res.stderr).toBe(''); // no progress line without a TTY

    const got = await ctrOk(['content', 'get', pushed.digest]);
    expect(got.stdoutBuffer.length).toBe(blob.length);
    expect(got.stdoutBuffer.equals(blob)).toBe(true);

    const ls = await ctrOk(['content', 'ls']);
    const row = ls.stdout.split('\n').find((line) => line.startsWith(pushed.digest));
    expect(row, ls.stdout).toContain(`${SOURCE_LABEL}=${REPO}`);

    // the blob is a resource of the lease (ctr 1.6 has no command for Leases.ListResources)
    const client = new BerthClient({ address: d().address, namespace: 'default' });
    try {
      const { resources } = await client.leases.ListResources({ id: 'fetch-test' });
      expect(resources).toContainEqual(expect.objectContaining({ id: pushed.digest, type: 'content' }));
    } finally {
      client.close();
    }
    expect((await ctrOk(['content', 'active'])).stdout.trim().split('\n')).toHaveLength(1); // header only: no ingest left
  });

  it('a second fetch is a successful no-op, and another repository is added to the source label', async () => {
    const again = await berth(['content', 'fetch-blob', '--plain-http', `${r().host}/${REPO}:latest`, pushed.digest]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe(`${pushed.digest}: already present (5.00 MiB)\n`);

    await r().pushBlob('other/repo', blob);
    const json = await berth(['--format', 'json', 'content', 'fetch-blob', '--plain-http', `${r().host}/other/repo`, pushed.digest]);
    expect(json.code, json.stderr).toBe(0);
    const out = JSON.parse(json.stdout) as { existed: boolean; fetched: number; size: number; labels: Record<string, string> };
    expect(out).toMatchObject({ existed: true, fetched: 0, size: blob.length, labels: { [SOURCE_LABEL]: `other/repo,${REPO}` } });
    const ls = await ctrOk(['content', 'ls']);
    expect(ls.stdout.split('\n').find((line) => line.startsWith(pushed.digest))).toContain(`${SOURCE_LABEL}=other/repo,${REPO}`);
  });

  it('a digest the registry does not have fails with a clear message and exit 1', async () => {
    const missing = sha256Digest(randomBytes(16));
    const res = await berth(['content', 'fetch-blob', '--plain-http', `${r().host}/${REPO}`, missing]);
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(`berth: blob ${missing} not found in ${r().host}/${REPO}\n`);
    expect(res.stdout).toBe('');
    expect((await d().ctr(['content', 'get', missing])).code).not.toBe(0);
  });

  it('bad arguments are refused before anything is fetched', async () => {
    const noHost = await berth(['content', 'fetch-blob', 'busybox', pushed.digest]);
    expect(noHost.code).toBe(1);
    expect(noHost.stderr).toMatch(/^berth: invalid reference "busybox": expected <host>\/<repository>/);
    const badDigest = await berth(['content', 'fetch-blob', `${r().host}/${REPO}`, 'sha256:nothex']);
    expect(badDigest.code).toBe(1);
    expect(badDigest.stderr).toMatch(/^berth: digest "sha256:nothex" failed validation: invalid checksum digest length/);
  });

  it('a loopback registry is plain http without --plain-http (containerd 1.6), and https named in hosts.toml says so when it fails', async () => {
    const plain = await berth(['content', 'fetch-blob', `${r().host}/${REPO}`, pushed.digest]);
    expect(plain.code, plain.stderr).toBe(0);
    const hostsDir = await mkdtemp(join(tmpdir(), 'berth-hosts-'));
    try {
      await mkdir(join(hostsDir, r().host.replace(/:(\d+)$/, '_$1_')));
      await writeFile(join(hostsDir, r().host.replace(/:(\d+)$/, '_$1_'), 'hosts.toml'), `server = "https://${r().host}"\n`);
      const res = await berth(['content', 'fetch-blob', '--hosts-dir', hostsDir, `${r().host}/${REPO}`, pushed.digest]);
      expect(res.code).toBe(1);
      expect(res.stderr).toContain(`cannot reach registry ${r().host}: HEAD https://${r().host}/v2/${REPO}/blobs/${pushed.digest}`);
      expect(res.stderr).toContain('use --plain-http');
    } finally {
      await rm(hostsDir, { recursive: true, force: true });
    }
  });

  it('bytes that do not match the digest are refused by the store', async () => {
    const data = randomBytes(256 * 1024);
    const { digest } = await r().pushBlob(REPO, data);
    // the registry serves its file as it is: flip bytes in place, keeping the size
    const path = r().blobPath(digest);
    const stored = await readFile(path);
    stored[1000] = (stored[1000] as number) ^ 0xff;
    await writeFile(path, stored);
    const res = await berth(['content', 'fetch-blob', '--plain-http', `${r().host}/${REPO}`, digest]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(new RegExp(`^berth: unexpected commit digest sha256:[0-9a-f]{64}, expected ${digest}: failed precondition\n$`));
    expect((await d().ctr(['content', 'get', digest])).code).not.toBe(0);
    // the bad bytes are not kept for a resume: once the registry serves the right ones, a retry succeeds
    expect((await ctrOk(['content', 'active'])).stdout).not.toContain(digest);
    stored[1000] = (stored[1000] as number) ^ 0xff;
    await writeFile(path, stored);
    // Held by a lease: the failed commit's discard may have scheduled a collection, which takes unreferenced blobs.
    const lease = `fetch-retry-${process.pid}`;
    await ctrOk(['leases', 'create', '--id', lease]);
    try {
      const retry = await berth(['--lease', lease, 'content', 'fetch-blob', '--plain-http', `${r().host}/${REPO}`, digest]);
      expect(retry.code, retry.stderr).toBe(0);
      expect(retry.stdout).toContain(`${digest}: fetched 0.25 MiB`);
      expect((await ctrOk(['content', 'get', digest])).stdoutBuffer.equals(data)).toBe(true);
    } finally {
      await d().ctr(['leases', 'rm', lease]);
    }
  });

  it('resumes an interrupted ingest with a Range request, under the ref a pull uses for a layer', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 123);
    const { digest } = await r().pushBlob(REPO, data);
    const ref = `layer-${digest}`;
    // an ingest that stopped after 1 MiB + 7 bytes: commit fails on the size, the ingest stays
    const partial = await d().berth(['content', 'ingest', ref, '--expected-size', String(data.length), '--expected-digest', digest], {
      input: data.subarray(0, 1024 * 1024 + 7),
    });
    expect(partial.code).toBe(1);
    expect((await ctrOk(['content', 'active'])).stdout).toContain(ref);

    const res = await berth([
      '--format',
      'json',
      'content',
      'fetch-blob',
      '--plain-http',
      '--media-type',
      'application/vnd.oci.image.layer.v1.tar',
      `${r().host}/${REPO}`,
      digest,
    ]);
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout) as { ingest: string; resumed_at: number; fetched: number; existed: boolean };
    expect(out).toMatchObject({ ingest: ref, resumed_at: 1024 * 1024 + 7, fetched: data.length - (1024 * 1024 + 7), existed: false });
    expect((await ctrOk(['content', 'get', digest])).stdoutBuffer.equals(data)).toBe(true);
  });

  it('shows a progress line with bytes, total and MiB/s when stderr is a TTY', async () => {
    const data = randomBytes(2 * 1024 * 1024);
    const { digest } = await r().pushBlob(REPO, data);
    let err = '';
    let out = '';
    const stderr = Object.assign(
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          err += chunk.toString();
          cb();
        },
      }),
      { isTTY: true },
    );
    const stdout = new Writable({
      write(chunk: Buffer, _enc, cb) {
        out += chunk.toString();
        cb();
      },
    });
    const code = await runCli(['--address', d().address, 'content', 'fetch-blob', '--plain-http', `${r().host}/${REPO}`, digest], {
      stdin: Readable.from([]),
      stdout,
      stderr,
    });
    expect(code, err).toBe(0);
    expect(err).toMatch(new RegExp(`\\r\\x1b\\[K${digest}: 2\\.00 MiB / 2\\.00 MiB  (\\d+\\.\\d MiB/s|-)\\n$`));
    expect(out).toMatch(new RegExp(`^${digest}: fetched 2\\.00 MiB`));
  });

  // last: it lets the garbage collector run
  it('the lease holds the fetched blob: deleting it lets the garbage collector remove the blob', async () => {
    expect((await ctrOk(['content', 'get', pushed.digest])).stdoutBuffer.length).toBe(blob.length);
    await ctrOk(['leases', 'rm', '--sync', 'fetch-test']);
    const gone = await d().ctr(['content', 'get', pushed.digest]);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toContain('not found');
  });
});

describe.skipIf(!hasRegistry())('BlobFetcher against docker-registry', () => {
  let registry: Registry | undefined;
  const data = randomBytes(100_000);
  let digest: string;
  beforeAll(async () => {
    registry = await startRegistry();
    ({ digest } = await registry.pushBlob('fetcher/test', data));
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('reads a blob whole, and from an offset', async () => {
    const fetcher = new BlobFetcher({ host: registry!.host, repository: 'fetcher/test', plainHttp: true });
    expect(await fetcher.head(digest)).toEqual({ size: data.length });
    const whole = await fetcher.open(digest);
    expect((await collect(whole.chunks)).equals(data)).toBe(true);
    const tail = await fetcher.open(digest, 99_000);
    expect(tail.size).toBe(data.length);
    expect((await collect(tail.chunks)).equals(data.subarray(99_000))).toBe(true);
  });

  it('reports a missing blob as not found, and an unreachable registry as unavailable', async () => {
    const fetcher = new BlobFetcher({ host: registry!.host, repository: 'fetcher/none', plainHttp: true });
    await expect(fetcher.head(digest)).rejects.toMatchObject({ errdef: 'not-found' });
    const closed = new BlobFetcher({ host: `127.0.0.1:${await closedPort()}`, repository: 'x', plainHttp: true });
    await expect(closed.head(digest)).rejects.toMatchObject({ errdef: 'unavailable', message: expect.stringContaining('ECONNREFUSED') });
  });
});
