// Leases service acceptance: Debian's real ctr against a berthd process; content written under a lease over raw
// gRPC (ctr's content commands take no lease) must survive garbage collection until the lease goes.
import { randomBytes } from 'node:crypto';
import { credentials, makeGenericClientConstructor, Metadata, type Client, type ClientDuplexStream } from '@grpc/grpc-js';
import { serviceDefinition, ServiceNames } from '@berth/api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { unaryCall } from './grpc-raw.js';
import { hasCtr, hasRoot, QUIET_GC, startBerthd, type Berthd } from './harness.js';
import { sha256Digest as sha256 } from '@berth/core';

const MiB = 1 << 20;

const ctrLines = (stdout: string) => stdout.trim().split('\n').slice(1);

/**
 * Writes `data` under a lease through Content.Write, as containerd's client does during a pull: STAT with the ref,
 * WRITE in 1 MiB pieces, then COMMIT (or, with `commit: false`, half-closes and leaves the ingest).
 */
async function writeWithLease(
  daemon: Berthd,
  lease: string,
  ref: string,
  data: Buffer,
  { commit = true }: { commit?: boolean } = {},
): Promise<void> {
  const Ctor = makeGenericClientConstructor(serviceDefinition(ServiceNames.Content) as never, 'Content');
  const client = new Ctor(`unix://${daemon.address}`, credentials.createInsecure()) as Client & Record<string, (...args: unknown[]) => unknown>;
  const md = new Metadata();
  md.set('containerd-namespace', 'default');
  md.set('containerd-lease', lease);
  try {
    const call = client.Write!(md, { deadline: Date.now() + 30_000 }) as ClientDuplexStream<object, { offset: number }>;
    const responses = call[Symbol.asyncIterator]();
    const send = async (request: object) => {
      call.write(request);
      const next = await responses.next();
      if (next.done) throw new Error('write call ended early');
      return next.value;
    };
    await send({ action: 'STAT', ref, total: data.length, expected: sha256(data) });
    let offset = 0;
    for (; offset < data.length && (commit || offset + MiB < data.length); offset += MiB) {
      await send({ action: 'WRITE', offset, data: data.subarray(offset, offset + MiB) });
    }
    if (commit) await send({ action: 'COMMIT', offset: data.length, total: data.length, expected: sha256(data) });
    else call.cancel();
    if (commit) {
      call.end();
      while (!(await responses.next()).done);
    }
  } finally {
    client.close();
  }
}

describe.skipIf(!hasRoot() || !hasCtr())('leases through ctr', () => {
  let daemon: Berthd;
  beforeEach(async () => {
    daemon = await startBerthd({ config: QUIET_GC, logLevel: 'info' });
  });
  afterEach(async () => {
    await daemon?.stop();
  });

  it('creates, lists and removes leases', async () => {
    const created = await daemon.ctr(['leases', 'create', '--id', 'my-lease', 'team=berth']);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout.trim()).toBe('my-lease');
    // Without --id ctr makes one up (`<nanoseconds>-<random>`); the daemon keeps it.
    const generated = await daemon.ctr(['leases', 'create', '--expires', '0']);
    expect(generated.code, generated.stderr).toBe(0);
    const generatedId = generated.stdout.trim();
    expect(generatedId).toMatch(/^\d+-[A-Za-z0-9_-]+$/);

    const ls = await daemon.ctr(['leases', 'ls']);
    expect(ls.code, ls.stderr).toBe(0);
    const rows = ctrLines(ls.stdout);
    expect(rows).toHaveLength(2);
    const mine = rows.find((r) => r.startsWith('my-lease '));
    expect(mine).toMatch(/^my-lease\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+containerd\.io\/gc\.expire=\S+,team=berth\s*$/);
    expect(rows.find((r) => r.startsWith(`${generatedId} `))).toMatch(new RegExp(`^${generatedId}\\s+\\S+Z\\s+-\\s*$`));
    expect((await daemon.ctr(['leases', 'ls', '-q'])).stdout.trim().split('\n').sort()).toEqual([generatedId, 'my-lease'].sort());
    expect((await daemon.ctr(['leases', 'ls', '-q', 'labels.team==berth'])).stdout.trim()).toBe('my-lease');

    const dup = await daemon.ctr(['leases', 'create', '--id', 'my-lease']);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toContain('already exists');

    const removed = await daemon.ctr(['leases', 'rm', 'my-lease', generatedId]);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout.trim().split('\n')).toEqual(['my-lease', generatedId]);
    expect(ctrLines((await daemon.ctr(['leases', 'ls'])).stdout)).toEqual([]);

    const missing = await daemon.ctr(['leases', 'rm', '--sync', 'my-lease']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('lease "my-lease": not found');
    // Other namespaces have their own leases.
    expect((await daemon.ctr(['leases', 'create', '--id', 'my-lease'], { namespace: 'other' })).code).toBe(0);
    expect(ctrLines((await daemon.ctr(['leases', 'ls'])).stdout)).toEqual([]);
  });

  it('keeps content and ingests written under a lease through GC until ctr leases rm --sync', async () => {
    expect((await daemon.ctr(['leases', 'create', '--id', 'pull'])).code).toBe(0);
    const held = randomBytes(3 * MiB + 17);
    await writeWithLease(daemon, 'pull', 'held-blob', held);
    const partial = randomBytes(3 * MiB);
    await writeWithLease(daemon, 'pull', 'held-ingest', partial, { commit: false });

    // A control: ingested by ctr without lease or root label, so the next collection may take it.
    const loose = randomBytes(MiB);
    expect((await daemon.ctr(['content', 'ingest', 'loose'], { input: loose })).code).toBe(0);
    expect((await daemon.ctr(['content', 'ls', '-q'])).stdout.trim().split('\n').sort()).toEqual([sha256(held), sha256(loose)].sort());

    const resources = await unaryCall<{ resources: { id: string; type: string }[] }>(
      daemon.address,
      ServiceNames.Leases,
      'ListResources',
      { id: 'pull' },
      { 'containerd-namespace': 'default' },
    );
    expect(resources.error).toBeUndefined();
    expect(resources.response?.resources).toEqual([
      { id: sha256(held), type: 'content' },
      { id: 'held-ingest', type: 'ingests' },
    ]);

    // Collect now, through another lease's synchronous removal.
    expect((await daemon.ctr(['leases', 'create', '--id', 'trigger'])).code).toBe(0);
    expect((await daemon.ctr(['leases', 'rm', '--sync', 'trigger'])).code).toBe(0);
    expect((await daemon.ctr(['content', 'ls', '-q'])).stdout.trim()).toBe(sha256(held));
    const get = await daemon.ctr(['content', 'get', sha256(held)]);
    expect(get.stdoutBuffer.equals(held)).toBe(true);
    expect(ctrLines((await daemon.ctr(['content', 'active'])).stdout)).toEqual([expect.stringMatching(/^held-ingest\s+/)]);

    // Once the lease goes (synchronously) what only it held is gone when ctr returns.
    const rm = await daemon.ctr(['leases', 'rm', '--sync', 'pull']);
    expect(rm.code, rm.stderr).toBe(0);
    expect(rm.stdout.trim()).toBe('pull');
    expect((await daemon.ctr(['content', 'ls', '-q'])).stdout.trim()).toBe('');
    expect(ctrLines((await daemon.ctr(['content', 'active'])).stdout)).toEqual([]);
    const after = await daemon.ctr(['content', 'get', sha256(held)]);
    expect(after.code).toBe(1);
    expect(after.stderr).toContain('not found');
  });

  it('refuses writes under a lease that does not exist', async () => {
    await expect(writeWithLease(daemon, 'no-such-lease', 'orphan', randomBytes(1024))).rejects.toMatchObject({ code: 5 });
    expect(ctrLines((await daemon.ctr(['content', 'active'])).stdout)).toEqual([]);
  });
});
