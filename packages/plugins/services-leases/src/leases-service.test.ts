import { messageCodec, ServiceNames, type containerd } from '@berth/api';
import {
  gcToken,
  contentStoreToken,
  rpcServicesPoint,
  type AnyPluginManifest,
  type ContentStore,
  type OpContext,
  type RpcContext,
} from '@berth/core';
import { createTestHost, failureOf as failure, rpcContext, type TestHost } from '@berth/core/testing';
import contentLocalPlugin from '@berth/plugin-content-local';
import gcSchedulerPlugin from '@berth/plugin-gc-scheduler';
import metadataLmdbPlugin from '@berth/plugin-metadata-lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import { generateLeaseId } from './leases-service.js';
import { leasesServicePlugin } from './plugin.js';
import { sha256Digest as sha256 } from '@berth/core';

type Handlers = containerd.services.leases.v1.LeasesHandlers;

const NS = 'testing';
const createCodec = messageCodec('containerd.services.leases.v1.CreateRequest');
const create = (input: containerd.services.leases.v1.CreateRequestInput) => createCodec.decode(createCodec.encode(input));
const resource = (id: string, type: string) => ({ id, type });

function rpc(namespace = NS): RpcContext {
  return rpcContext({ namespace });
}

describe('LeasesService', () => {
  let host: TestHost | undefined;
  afterEach(async () => {
    await host?.close();
    host = undefined;
  });

  async function boot(withScheduler = true): Promise<{ handlers: Handlers; content: ContentStore }> {
    const plugins: AnyPluginManifest[] = [contentLocalPlugin, metadataLmdbPlugin, leasesServicePlugin];
    if (withScheduler) plugins.push(gcSchedulerPlugin);
    host = await createTestHost({ plugins });
    const impl = [...host.host.all(rpcServicesPoint).values()].flatMap((s) => s.services).find((s) => s.service === ServiceNames.Leases);
    return { handlers: impl!.handlers as unknown as Handlers, content: host.host.get(contentStoreToken) };
  }

  async function commit(content: ContentStore, ctx: OpContext, text: string, labels?: Record<string, string>): Promise<string> {
    const data = Buffer.from(text);
    const writer = await content.writer(ctx, { ref: `ref-${text}` });
    await writer.write(data);
    await writer.commit(data.length, sha256(data), labels ? { labels } : undefined);
    return sha256(data);
  }

  it('creates a lease with its id and labels and lists it', async () => {
    const { handlers } = await boot();
    const before = Date.now();
    const { lease } = await handlers.Create(create({ id: 'my-lease', labels: { 'containerd.io/gc.expire': '2099-01-01T00:00:00Z', a: 'b' } }), rpc());
    expect(lease).toMatchObject({ id: 'my-lease', labels: { 'containerd.io/gc.expire': '2099-01-01T00:00:00Z', a: 'b' } });
    const seconds = Number((lease?.created_at as { seconds: number }).seconds);
    expect(seconds * 1000).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);

    const { leases } = await handlers.List({ filters: [] }, rpc());
    expect(leases).toEqual([expect.objectContaining({ id: 'my-lease', labels: { 'containerd.io/gc.expire': '2099-01-01T00:00:00Z', a: 'b' } })]);
    expect((await handlers.List({ filters: [] }, rpc('other'))).leases).toEqual([]);
  });

  it('generates an id like containerd when the request has none', async () => {
    const { handlers } = await boot();
    const { lease } = await handlers.Create(create({}), rpc());
    expect(lease?.id).toMatch(/^\d{1,9}-[A-Za-z0-9_-]{4}$/);
    expect((await handlers.List({ filters: [] }, rpc())).leases?.map((l) => l.id)).toEqual([lease?.id]);
    expect(generateLeaseId()).not.toBe(generateLeaseId());
  });

  it('refuses a duplicate id with AlreadyExists', async () => {
    const { handlers } = await boot();
    await handlers.Create(create({ id: 'dup' }), rpc());
    expect((await failure(handlers.Create(create({ id: 'dup' }), rpc()))).errdef).toBe('already-exists');
  });

  it('filters List by id and by labels', async () => {
    const { handlers } = await boot();
    await handlers.Create(create({ id: 'one', labels: { team: 'a' } }), rpc());
    await handlers.Create(create({ id: 'two', labels: { team: 'b' } }), rpc());
    const ids = async (filters: string[]) => (await handlers.List({ filters }, rpc())).leases?.map((l) => l.id).sort();
    expect(await ids(['id==two'])).toEqual(['two']);
    expect(await ids(['labels.team==a'])).toEqual(['one']);
    expect(await ids(['labels.team==a', 'id==two'])).toEqual(['one', 'two']);
  });

  it('deletes a lease, and answers NotFound for one that does not exist', async () => {
    const { handlers } = await boot();
    await handlers.Create(create({ id: 'gone' }), rpc());
    await handlers.Delete({ id: 'gone', sync: false }, rpc());
    expect((await handlers.List({ filters: [] }, rpc())).leases).toEqual([]);
    const err = await failure(handlers.Delete({ id: 'gone', sync: false }, rpc()));
    expect(err).toEqual({ errdef: 'not-found', message: expect.stringContaining('gone') });
  });

  it('adds, lists and removes resources', async () => {
    const { handlers } = await boot();
    await handlers.Create(create({ id: 'holder' }), rpc());
    const blob = sha256(Buffer.from('x'));
    await handlers.AddResource({ id: 'holder', resource: resource(blob, 'content') }, rpc());
    await handlers.AddResource({ id: 'holder', resource: resource('my-ingest', 'ingests') }, rpc());
    await handlers.AddResource({ id: 'holder', resource: resource('snap-1', 'snapshots/overlayfs') }, rpc());
    expect((await handlers.ListResources({ id: 'holder' }, rpc())).resources).toEqual([
      { id: blob, type: 'content' },
      { id: 'my-ingest', type: 'ingests' },
      { id: 'snap-1', type: 'snapshots/overlayfs' },
    ]);
    await handlers.DeleteResource({ id: 'holder', resource: resource('my-ingest', 'ingests') }, rpc());
    expect((await handlers.ListResources({ id: 'holder' }, rpc())).resources?.map((r) => r.type)).toEqual(['content', 'snapshots/overlayfs']);

    expect((await failure(handlers.AddResource({ id: 'nobody', resource: resource(blob, 'content') }, rpc()))).errdef).toBe('not-found');
    expect((await failure(handlers.ListResources({ id: 'nobody' }, rpc()))).errdef).toBe('not-found');
    expect((await failure(handlers.AddResource({ id: 'holder', resource: resource('x', 'widgets') }, rpc()))).errdef).toBe('not-implemented');
    expect((await failure(handlers.AddResource({ id: 'holder', resource: null }, rpc()))).errdef).toBe('not-implemented');
    expect((await failure(handlers.AddResource({ id: 'holder', resource: resource('../x', 'content') }, rpc()))).errdef).toBe(
      'invalid-argument',
    );
  });

  it('Delete{sync} returns after the GC scheduler collected what only the lease held', async () => {
    const { handlers, content } = await boot(true);
    await handlers.Create(create({ id: 'pull' }), rpc());
    const leased = await commit(content, { namespace: NS, lease: 'pull' }, 'held by the lease');
    const rooted = await commit(content, { namespace: NS }, 'a root', { 'containerd.io/gc.root': 'now' });
    // While the lease exists a collection keeps its content.
    await host!.host.get(gcToken).scheduleAndWait();
    await expect(content.info({ namespace: NS }, leased)).resolves.toMatchObject({ digest: leased });

    await handlers.Delete({ id: 'pull', sync: true }, rpc());
    expect((await failure(content.info({ namespace: NS }, leased))).errdef).toBe('not-found');
    await expect(content.info({ namespace: NS }, rooted)).resolves.toMatchObject({ digest: rooted });
    expect(host!.host.get(gcToken).lastRun?.removed.content).toBeGreaterThanOrEqual(1);
  });

  it('Delete{sync} collects directly when no GC scheduler is loaded', async () => {
    const { handlers, content } = await boot(false);
    await handlers.Create(create({ id: 'pull' }), rpc());
    const leased = await commit(content, { namespace: NS, lease: 'pull' }, 'held by the lease');
    await handlers.Delete({ id: 'pull', sync: true }, rpc());
    expect((await failure(content.info({ namespace: NS }, leased))).errdef).toBe('not-found');
  });

  it('requires a namespace', async () => {
    const { handlers } = await boot();
    expect((await failure(handlers.Create(create({ id: 'x' }), rpc('')))).errdef).toBe('failed-precondition');
    expect((await failure(handlers.List({ filters: [] }, rpc('')))).errdef).toBe('failed-precondition');
  });
});
