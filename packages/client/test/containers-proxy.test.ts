// ContainersProxy against a real berthd process (the built daemon bundle), over the real wire: what a command
// written against containersToken sees when the CLI composes the proxy. Build first: nx run @berth/daemon:build.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlreadyExists, isInvalidArgument, isNotFound, OCI_SPEC_TYPE_URL, type ContainerInput, type OpContext } from '@berth/core';
import { BerthClient, ContainersProxy } from '@berth/client';
import { DAEMON_MAIN, QUIET_GC, startBerthd, type Berthd } from '../../daemon/test/harness.js';

const spec = { typeUrl: OCI_SPEC_TYPE_URL, value: Buffer.from('{"ociVersion":"1.0.2"}') };
const base = (id: string, extra: Partial<ContainerInput> = {}): ContainerInput => ({ id, spec, runtime: { name: 'io.containerd.runc.v2' }, ...extra });

describe.skipIf(!existsSync(DAEMON_MAIN))('ContainersProxy over berthd', () => {
  let daemon: Berthd | undefined;
  let client: BerthClient | undefined;
  let containers: ContainersProxy;
  const fresh = (): OpContext => ({ namespace: `containers-${randomBytes(6).toString('hex')}` });

  beforeAll(async () => {
    daemon = await startBerthd({ config: QUIET_GC, logLevel: 'warn' });
    client = new BerthClient({ address: daemon.address });
    containers = new ContainersProxy(client);
  });

  afterAll(async () => {
    client?.close();
    await daemon?.stop();
  });

  it('creates, gets, lists (over ListStream), updates and deletes, with the store’s values and times', async () => {
    const ctx = fresh();
    const before = Date.now() - 1000;
    const ext = { typeUrl: 'acme.io/x', value: Buffer.from('{"a":1}') };
    const created = await containers.create(ctx, base('c1', { labels: { team: 'x' }, image: 'example.com/app:1', snapshotter: 'native', snapshotKey: 'c1', extensions: { 'acme.io/x': ext } }));
    expect(created).toMatchObject({ id: 'c1', labels: { team: 'x' }, image: 'example.com/app:1', runtime: { name: 'io.containerd.runc.v2' }, snapshotter: 'native', snapshotKey: 'c1' });
    expect(Buffer.from(created.spec!.value)).toEqual(spec.value);
    expect(Buffer.from(created.extensions['acme.io/x']!.value)).toEqual(ext.value);
    expect(created.createdAt.getTime()).toBeGreaterThan(before);
    expect(await containers.get(ctx, 'c1')).toEqual(created);
    await containers.create(ctx, base('c2'));
    expect((await containers.list(ctx)).map((c) => c.id)).toEqual(['c1', 'c2']);
    expect((await containers.list(ctx, ['labels.team==x'])).map((c) => c.id)).toEqual(['c1']);
    expect(await containers.list(fresh())).toEqual([]);

    const updated = await containers.update(ctx, { id: 'c1', labels: { tier: 't' }, image: 'ignored' }, ['labels.tier']);
    expect(updated.labels).toEqual({ team: 'x', tier: 't' });
    expect(updated.image).toBe('example.com/app:1');
    expect(updated.createdAt).toEqual(created.createdAt);
    const unext = await containers.update(ctx, { id: 'c1' }, ['extensions.acme.io/x']);
    expect(unext.extensions).toEqual({});

    await containers.delete(ctx, 'c1');
    await expect(containers.get(ctx, 'c1')).rejects.toSatisfy(isNotFound);
  });

  it('rebuilds the errdefs of refusals', async () => {
    const ctx = fresh();
    await containers.create(ctx, base('x'));
    await expect(containers.create(ctx, base('x'))).rejects.toSatisfy(isAlreadyExists);
    await expect(containers.create(ctx, base('y', { runtime: { name: '' } }))).rejects.toThrow('container.Runtime.Name must be set');
    await expect(containers.update(ctx, { id: 'x' }, ['runtime'])).rejects.toThrow('cannot update "runtime" field on "x"');
    await expect(containers.delete(ctx, 'missing')).rejects.toSatisfy(isNotFound);
    await expect(containers.list(ctx, ['id=='])).rejects.toSatisfy(isInvalidArgument);
  });
});
