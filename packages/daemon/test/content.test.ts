// Content service acceptance: Debian's real ctr (and raw gRPC where ctr cannot reach) against a berthd process.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  credentials,
  makeGenericClientConstructor,
  Metadata,
  type Client,
  type ClientDuplexStream,
  type ClientReadableStream,
  type ServiceError,
} from '@grpc/grpc-js';
import { serviceDefinition, ServiceNames } from '@berth/api';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { unaryCall } from './grpc-raw.js';
import { CTR, hasCtr, hasRoot, QUIET_GC, startBerthd, type Berthd } from './harness.js';
import { sha256Digest as sha256 } from '@berth/core';

const MiB = 1 << 20;
const NS_HEADER = { 'containerd-namespace': 'default' };
const CONTENT = ServiceNames.Content;

interface Outcome {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** ctr with stdin read from a file (a regular file, so ctr can seek in it to resume an ingest). */
async function ctrFromFile(daemon: Berthd, args: readonly string[], file: string): Promise<Outcome> {
  const fh = await open(file, 'r');
  try {
    const child = spawn(CTR, ['--address', daemon.address, ...args], { stdio: [fh.fd, 'pipe', 'pipe'] });
    return await finished(child);
  } finally {
    await fh.close();
  }
}

/** ctr with its stdout hashed as it streams (blobs too large to hold in the test). */
async function ctrDigest(daemon: Berthd, args: readonly string[]): Promise<Outcome & { digest: string; size: number }> {
  const child = spawn(CTR, ['--address', daemon.address, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const hash = createHash('sha256');
  let size = 0;
  child.stdout.on('data', (d: Buffer) => {
    hash.update(d);
    size += d.length;
  });
  const outcome = await finished(child, false);
  return { ...outcome, digest: `sha256:${hash.digest('hex')}`, size };
}

function finished(child: ReturnType<typeof spawn>, keepStdout = true): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    if (keepStdout) child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function ingestStatus(daemon: Berthd, ref: string): Promise<{ offset: number; total: number } | undefined> {
  const { response, error } = await unaryCall<{ status: { offset: number; total: number } }>(
    daemon.address,
    CONTENT,
    'Status',
    { ref },
    NS_HEADER,
  );
  if (error) {
    if (error.code === 5) return undefined;
    throw error;
  }
  return { offset: Number(response!.status.offset), total: Number(response!.status.total) };
}

async function waitFor<T>(probe: () => Promise<T | undefined | false>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function contentClient(daemon: Berthd): Client & Record<string, (...args: unknown[]) => unknown> {
  const Ctor = makeGenericClientConstructor(serviceDefinition(CONTENT) as never, 'Content');
  return new Ctor(`unix://${daemon.address}`, credentials.createInsecure()) as Client & Record<string, (...args: unknown[]) => unknown>;
}

function headers(values: Record<string, string>): Metadata {
  const md = new Metadata();
  for (const [k, v] of Object.entries(values)) md.set(k, v);
  return md;
}

/** A Read call through grpc-js: the chunks it got and how it ended. */
async function readCall(daemon: Berthd, request: object): Promise<{ chunks: { offset: number; data: Buffer }[]; error?: ServiceError }> {
  const client = contentClient(daemon);
  try {
    const stream = client.Read!(request, headers(NS_HEADER)) as ClientReadableStream<{ offset: number; data: Buffer }>;
    const chunks: { offset: number; data: Buffer }[] = [];
    try {
      for await (const chunk of stream) chunks.push({ offset: Number(chunk.offset), data: chunk.data });
      return { chunks };
    } catch (err) {
      return { chunks, error: err as ServiceError };
    }
  } finally {
    client.close();
  }
}

/**
 * A Write call that sends the given requests one by one, each after the previous answer, then half-closes and
 * waits for the status (`end`), or cancels the call (`cancel`). A call still open after 15 s fails.
 */
async function writeCall(
  daemon: Berthd,
  requests: readonly object[],
  finish: 'end' | 'cancel' = 'end',
): Promise<{ responses: unknown[]; error?: ServiceError }> {
  const client = contentClient(daemon);
  try {
    const call = client.Write!(headers(NS_HEADER), { deadline: Date.now() + 15_000 }) as ClientDuplexStream<object, unknown>;
    const responses: unknown[] = [];
    const incoming = call[Symbol.asyncIterator]();
    try {
      for (const request of requests) {
        call.write(request);
        const next = await incoming.next();
        if (next.done) break;
        responses.push(next.value);
      }
      if (finish === 'cancel') {
        call.cancel();
        return { responses };
      }
      call.end();
      while (!(await incoming.next()).done);
      return { responses };
    } catch (err) {
      return { responses, error: err as ServiceError };
    }
  } finally {
    client.close();
  }
}

const ctrLines = (stdout: string) => stdout.trim().split('\n').slice(1);

describe.skipIf(!hasRoot() || !hasCtr())('content through ctr', () => {
  let daemon: Berthd;
  let work: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-content-it-'));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });
  beforeEach(async () => {
    daemon = await startBerthd({ config: QUIET_GC, logLevel: 'info' });
  });
  afterEach(async () => {
    await daemon?.stop();
  });

  it('ingests, lists, reads back byte for byte, labels and removes a blob of several MiB', async () => {
    const data = randomBytes(6 * MiB + 12345);
    const digest = sha256(data);

    const ingest = await daemon.ctr(['content', 'ingest', 'several-mib'], { input: data });
    expect(ingest.code, ingest.stderr).toBe(0);
    expect(ctrLines((await daemon.ctr(['content', 'active'])).stdout)).toEqual([]);

    const ls = await daemon.ctr(['content', 'ls']);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ctrLines(ls.stdout)).toEqual([expect.stringMatching(new RegExp(`^${digest}\\s+6\\.304MB\\s+.+\\s+-$`))]);
    expect((await daemon.ctr(['content', 'ls', '-q'])).stdout.trim()).toBe(digest);

    const get = await daemon.ctr(['content', 'get', digest]);
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdoutBuffer.equals(data)).toBe(true);

    // Ingesting it again with its digest: the daemon answers AlreadyExists at once, which ctr takes as success.
    const again = await daemon.ctr(['content', 'ingest', '--expected-digest', digest, 'again'], { input: data });
    expect(again.code, again.stderr).toBe(0);
    expect(ctrLines((await daemon.ctr(['content', 'active'])).stdout)).toEqual([]);

    const label = await daemon.ctr(['content', 'label', digest, 'origin=test', 'containerd.io/gc.root=now']);
    expect(label.code, label.stderr).toBe(0);
    expect(label.stdout.trim().split(',').sort()).toEqual(['containerd.io/gc.root=now', 'origin=test']);
    expect((await daemon.ctr(['content', 'label', digest, 'origin='])).stdout.trim()).toBe('containerd.io/gc.root=now');
    expect((await daemon.ctr(['content', 'ls'])).stdout).toMatch(new RegExp(`${digest}\\s+6\\.304MB\\s+.+\\s+containerd\\.io/gc\\.root=now\\n`));

    const removed = await daemon.ctr(['content', 'rm', digest]);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout.trim()).toBe(digest);
    expect(ctrLines((await daemon.ctr(['content', 'ls'])).stdout)).toEqual([]);
    const gone = await daemon.ctr(['content', 'get', digest]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('not found');
    // Removing what is not there: NotFound, which ctr ignores (no output, exit 0), as with containerd.
    expect(await daemon.ctr(['content', 'rm', digest])).toMatchObject({ code: 0, stdout: '' });
  });

  it('shows an open ingest in ctr content active and resumes an interrupted one from its offset', async () => {
    const data = randomBytes(8 * MiB);
    const file = join(work, 'resumable');
    await writeFile(file, data);

    // A client that sends 3 MiB, then stalls with the stream open.
    const first = spawn(CTR, ['--address', daemon.address, 'content', 'ingest', 'resumable'], { stdio: ['pipe', 'ignore', 'pipe'] });
    const firstDone = finished(first);
    first.stdin!.write(data.subarray(0, 3 * MiB));
    await waitFor(async () => (await ingestStatus(daemon, 'resumable'))?.offset === 3 * MiB, '3 MiB to arrive');

    const active = await daemon.ctr(['content', 'active']);
    expect(active.code, active.stderr).toBe(0);
    expect(ctrLines(active.stdout)).toEqual([expect.stringMatching(/^resumable\s+3\.146MB\s+/)]);

    first.kill('SIGKILL');
    await firstDone;
    expect(ctrLines((await daemon.ctr(['content', 'active'])).stdout)).toEqual([expect.stringMatching(/^resumable\s+3\.146MB\s+/)]);

    // Resume from a file whose first 3 MiB are zeros: only a resume from offset 3 MiB yields the original blob.
    const doctored = join(work, 'doctored');
    await writeFile(doctored, Buffer.concat([Buffer.alloc(3 * MiB), data.subarray(3 * MiB)]));
    const resumed = await ctrFromFile(daemon, ['content', 'ingest', 'resumable'], doctored);
    expect(resumed.code, resumed.stderr).toBe(0);

    expect((await daemon.ctr(['content', 'ls', '-q'])).stdout.trim()).toBe(sha256(data));
    expect(ctrLines((await daemon.ctr(['content', 'active'])).stdout)).toEqual([]);
    const get = await daemon.ctr(['content', 'get', sha256(data)]);
    expect(get.stdoutBuffer.equals(data)).toBe(true);
  });

  it('fails an ingest whose bytes do not match --expected-digest, clearly and without a blob', async () => {
    const data = randomBytes(2 * MiB);
    const wrong = sha256(Buffer.from('something else'));
    const bad = await daemon.ctr(['content', 'ingest', '--expected-digest', wrong, 'mismatch'], { input: data });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`unexpected commit digest ${sha256(data)}, expected ${wrong}`);
    expect(bad.stderr).toContain('failed precondition');
    expect((await daemon.ctr(['content', 'ls', '-q'])).stdout.trim()).toBe('');
    expect((await daemon.ctr(['content', 'get', sha256(data)])).code).toBe(1);
    expect(existsSync(join(daemon.root, 'io.containerd.content.v1.content', 'blobs', 'sha256', sha256(data).slice(7)))).toBe(false);

    // Like containerd, the failed ingest stays (resumable or abortable) until aborted.
    expect(ctrLines((await daemon.ctr(['content', 'active'])).stdout)).toEqual([expect.stringMatching(/^mismatch\s+2\.097MB/)]);
    const abort = await unaryCall(daemon.address, CONTENT, 'Abort', { ref: 'mismatch' }, NS_HEADER);
    expect(abort.error).toBeUndefined();
    expect(ctrLines((await daemon.ctr(['content', 'active'])).stdout)).toEqual([]);

    const short = await daemon.ctr(['content', 'ingest', '--expected-size', String(3 * MiB), 'short'], { input: data });
    expect(short.code).toBe(1);
    expect((await daemon.ctr(['content', 'ls', '-q'])).stdout.trim()).toBe('');
  });

  it('answers invalid digests with InvalidArgument and stays up', async () => {
    const invalid = ['sha256:../../x', `sha256:${'a'.repeat(63)}`, `md5:${'a'.repeat(32)}`, `sha256:../../${'a'.repeat(58)}`];
    // ctr itself refuses to send them.
    for (const args of [['get'], ['rm'], ['label']]) {
      const r = await daemon.ctr(['content', ...args, invalid[0]!, ...(args[0] === 'label' ? ['a=b'] : [])]);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(/invalid checksum digest/);
    }
    // Sent anyway, the daemon refuses them before they reach the store.
    for (const digest of invalid) {
      for (const [method, request] of [
        ['Info', { digest }],
        ['Delete', { digest }],
        ['Update', { info: { digest, labels: { a: 'b' } }, update_mask: { paths: ['labels.a'] } }],
      ] as const) {
        const r = await unaryCall(daemon.address, CONTENT, method, request, NS_HEADER);
        expect(r.error?.code, `${method} ${digest}`).toBe(3);
      }
      expect((await readCall(daemon, { digest })).error?.code).toBe(3);
      const write = await writeCall(daemon, [{ action: 'STAT', ref: 'w', expected: digest }]);
      expect(write.error?.code).toBe(3);
    }
    expect(existsSync(join(daemon.root, 'x'))).toBe(false);
    expect(daemon.alive).toBe(true);
    expect((await daemon.ctr(['version'])).code).toBe(0);
  });

  it('reads ranges over gRPC and refuses offsets past the end with OutOfRange', async () => {
    const data = randomBytes(3 * MiB + 7);
    expect((await daemon.ctr(['content', 'ingest', 'ranged'], { input: data })).code).toBe(0);
    const digest = sha256(data);
    const whole = await readCall(daemon, { digest });
    expect(whole.error).toBeUndefined();
    expect(whole.chunks.map((c) => [c.offset, c.data.length])).toEqual([
      [0, MiB],
      [MiB, MiB],
      [2 * MiB, MiB],
      [3 * MiB, 7],
    ]);
    const part = await readCall(daemon, { digest, offset: MiB - 5, size: 10 });
    expect(Buffer.concat(part.chunks.map((c) => c.data)).equals(data.subarray(MiB - 5, MiB + 5))).toBe(true);
    const past = await readCall(daemon, { digest, offset: data.length + 1 });
    expect(past.error?.code).toBe(11);
    expect(past.error?.details).toBe(`read past object length ${data.length} bytes`);
  });

  it('ends a write that the client half-closes without committing, keeping the ingest resumable', async () => {
    const data = Buffer.alloc(64 * 1024, 9);
    const open = await writeCall(daemon, [
      { action: 'STAT', ref: 'half-closed' },
      { action: 'WRITE', data },
    ]);
    expect(open.error).toBeUndefined();
    expect(open.responses).toEqual([expect.objectContaining({ offset: 0 }), expect.objectContaining({ offset: data.length })]);
    // The ref is free again: a second call resumes at the offset and commits.
    const resumed = await writeCall(daemon, [
      { action: 'STAT', ref: 'half-closed' },
      { action: 'COMMIT', offset: data.length, data, expected: sha256(Buffer.concat([data, data])) },
    ]);
    expect(resumed.error).toBeUndefined();
    expect(resumed.responses[0]).toMatchObject({ offset: data.length });
    expect((await daemon.ctr(['content', 'ls', '-q'])).stdout.trim()).toBe(sha256(Buffer.concat([data, data])));
  });

  it('answers a write at the wrong offset with OutOfRange and a client without a ref with InvalidArgument', async () => {
    const noRef = await writeCall(daemon, [{ action: 'STAT' }]);
    expect(noRef.error?.code).toBe(3);
    const gap = await writeCall(daemon, [
      { action: 'STAT', ref: 'gap' },
      { action: 'WRITE', data: Buffer.alloc(100, 1) },
      { action: 'WRITE', offset: 300, data: Buffer.alloc(100, 2) },
    ]);
    expect(gap.error?.code).toBe(11);
    expect(gap.error?.details).toBe('write @300 must occur at current offset 100');
    expect(await ingestStatus(daemon, 'gap')).toMatchObject({ offset: 100 });
  });
});

describe.skipIf(!hasRoot() || !hasCtr())('berthd killed during a large write', () => {
  const daemons: Berthd[] = [];
  let work: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-content-crash-'));
  });
  afterAll(async () => {
    // The last one stopped removes the shared dir.
    for (const d of daemons.reverse()) await d.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('keeps committed blobs intact and the partial ingest resumable or abortable after SIGKILL', { timeout: 240_000 }, async () => {
    const first = await startBerthd({ config: QUIET_GC, logLevel: 'info' });
    daemons.push(first);

    const committed: { file: string; digest: string }[] = [];
    for (const name of ['kept-1', 'kept-2']) {
      const data = randomBytes(5 * MiB + committed.length);
      const file = join(work, name);
      await writeFile(file, data);
      const r = await ctrFromFile(first, ['content', 'ingest', name], file);
      expect(r.code, r.stderr).toBe(0);
      // Rooted, so that the collection run after the restart must keep them.
      expect((await first.ctr(['content', 'label', sha256(data), 'containerd.io/gc.root=test'])).code).toBe(0);
      committed.push({ file, digest: sha256(data) });
    }

    // A small ingest left behind by a client that died, to be aborted after the restart.
    const stalled = spawn(CTR, ['--address', first.address, 'content', 'ingest', 'left-behind'], { stdio: ['pipe', 'ignore', 'ignore'] });
    const stalledDone = finished(stalled);
    stalled.stdin!.write(randomBytes(2 * MiB));
    await waitFor(async () => (await ingestStatus(first, 'left-behind'))?.offset === 2 * MiB, 'the small ingest');
    stalled.kill('SIGKILL');
    await stalledDone;

    // 200 MiB through ctr; the daemon dies somewhere in the middle.
    const big = join(work, 'big');
    const bigHash = createHash('sha256');
    const out = await open(big, 'w');
    for (let i = 0; i < 200; i++) {
      const chunk = randomBytes(MiB);
      bigHash.update(chunk);
      await out.write(chunk);
    }
    await out.close();
    const bigDigest = `sha256:${bigHash.digest('hex')}`;
    const writing = ctrFromFile(first, ['content', 'ingest', 'big'], big);
    await waitFor(async () => ((await ingestStatus(first, 'big'))?.offset ?? 0) >= 40 * MiB, '40 MiB of the large write', 60_000);
    await first.kill('SIGKILL');
    const interrupted = await writing;
    expect(interrupted.code).not.toBe(0);

    const second = await startBerthd({ dir: first.dir, config: QUIET_GC, logLevel: 'info' });
    daemons.push(second);

    // A collection after the restart keeps the rooted blobs and the ingests (not expired yet).
    expect((await second.ctr(['leases', 'create', '--id', 'gc-trigger'])).code).toBe(0);
    expect((await second.ctr(['leases', 'rm', '--sync', 'gc-trigger'])).code).toBe(0);

    for (const { digest } of committed) {
      const got = await ctrDigest(second, ['content', 'get', digest]);
      expect(got.code, got.stderr).toBe(0);
      expect(got.digest).toBe(digest);
    }

    const active = await second.ctr(['content', 'active']);
    expect(active.code, active.stderr).toBe(0);
    const refs = ctrLines(active.stdout).map((l) => l.split(/\s+/)[0]).sort();
    expect(refs).toEqual(['big', 'left-behind']);
    const partial = await ingestStatus(second, 'big');
    expect(partial!.offset).toBeGreaterThanOrEqual(40 * MiB);
    expect(partial!.offset).toBeLessThan(200 * MiB);
    // What the ingest holds is exactly a prefix of what was sent.
    const prefix = createHash('sha256');
    for await (const chunk of createReadStream(big, { end: partial!.offset - 1 })) prefix.update(chunk as Buffer);
    const status = await writeCall(second, [{ action: 'STAT', ref: 'big' }], 'cancel');
    expect(status.error).toBeUndefined();
    expect((status.responses[0] as { digest: string }).digest).toBe(`sha256:${prefix.digest('hex')}`);

    const resumed = await ctrFromFile(second, ['content', 'ingest', 'big'], big);
    expect(resumed.code, resumed.stderr).toBe(0);
    const got = await ctrDigest(second, ['content', 'get', bigDigest]);
    expect(got).toMatchObject({ code: 0, digest: bigDigest, size: 200 * MiB });

    const abort = await unaryCall(second.address, CONTENT, 'Abort', { ref: 'left-behind' }, NS_HEADER);
    expect(abort.error).toBeUndefined();
    expect(ctrLines((await second.ctr(['content', 'active'])).stdout)).toEqual([]);
    expect(second.alive).toBe(true);
  });
});
