import { messageCodec, ServiceNames, type containerd } from '@berth/api';
import {
  contentStoreToken,
  eventsToken,
  exchangePlugin,
  isAlreadyExists,
  isInvalidArgument,
  isNotFound,
  rpcServicesPoint,
  sha256Digest as sha256,
  type AnyPluginManifest,
  type ContentStore,
  type Envelope,
  type OpContext,
  type RpcContext,
} from '@berth/core';
import { createTestHost, rpcContext, type TestHost } from '@berth/core/testing';
import contentLocalPlugin from '@berth/plugin-content-local';
import gcSchedulerPlugin from '@berth/plugin-gc-scheduler';
import metadataLmdbPlugin from '@berth/plugin-metadata-lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import { imagesServicePlugin } from './plugin.js';

type Handlers = containerd.services.images.v1.ImagesHandlers;

const NS = 'testing';
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** Requests as the wire delivers them (absent fields defaulted by the codec). */
const createCodec = messageCodec('containerd.services.images.v1.CreateImageRequest');
const updateCodec = messageCodec('containerd.services.images.v1.UpdateImageRequest');
const createReq = (input: containerd.services.images.v1.CreateImageRequestInput) => createCodec.decode(createCodec.encode(input));
const updateReq = (input: containerd.services.images.v1.UpdateImageRequestInput) => updateCodec.decode(updateCodec.encode(input));

const rpc = (namespace = NS): RpcContext => rpcContext({ namespace });
const desc = (text: string) => ({ media_type: MANIFEST, digest: sha256(Buffer.from(text)), size: Buffer.byteLength(text) });

describe('ImagesService', () => {
  let host: TestHost | undefined;
  let stop: AbortController | undefined;
  afterEach(async () => {
    stop?.abort();
    await host?.close();
    host = undefined;
  });

  async function boot(withScheduler = true): Promise<{ handlers: Handlers; content: ContentStore; events: Envelope[] }> {
    const plugins: AnyPluginManifest[] = [contentLocalPlugin, metadataLmdbPlugin, exchangePlugin, imagesServicePlugin];
    if (withScheduler) plugins.push(gcSchedulerPlugin);
    host = await createTestHost({ plugins });
    const impl = [...host.host.all(rpcServicesPoint).values()].flatMap((s) => s.services).find((s) => s.service === ServiceNames.Images);
    const events: Envelope[] = [];
    stop = new AbortController();
    const signal = stop.signal;
    const exchange = host.host.get(eventsToken);
    void (async () => {
      for await (const e of exchange.subscribe([], signal)) events.push(e);
    })();
    return { handlers: impl!.handlers as unknown as Handlers, content: host.host.get(contentStoreToken), events };
  }

  async function commit(content: ContentStore, ctx: OpContext, text: string): Promise<string> {
    const data = Buffer.from(text);
    const writer = await content.writer(ctx, { ref: `ref-${text}` });
    await writer.write(data);
    await writer.commit(data.length, sha256(data));
    return sha256(data);
  }

  it('creates, gets, lists, updates and deletes images over the wire shapes, publishing containerd 1.6 events', async () => {
    const { handlers, events } = await boot();
    const name = '127.0.0.1:5000/test/busybox:latest';
    const created = await handlers.Create(createReq({ image: { name, labels: { a: '1' }, target: { ...desc('m'), annotations: { k: 'v' } } } }), rpc());
    expect(created.image).toMatchObject({ name, labels: { a: '1' }, target: { ...desc('m'), annotations: { k: 'v' } } });
    expect(Number(created.image?.created_at?.seconds)).toBeGreaterThan(0);
    expect(created.image?.updated_at).toEqual(created.image?.created_at);

    expect((await handlers.Get({ name }, rpc())).image).toEqual(created.image);
    expect((await handlers.List({ filters: [] }, rpc())).images).toEqual([created.image]);
    expect((await handlers.List({ filters: ['labels.a==2'] }, rpc())).images).toEqual([]);
    expect((await handlers.List({ filters: [] }, rpc('elsewhere'))).images).toEqual([]);

    const updated = await handlers.Update(updateReq({ image: { name, labels: { b: '2' } }, update_mask: { paths: ['labels.b'] } }), rpc());
    expect(updated.image?.labels).toEqual({ a: '1', b: '2' });
    expect(updated.image?.target).toEqual(created.image?.target);
    // ctr images label k= sends an empty value for the path: the label goes.
    const unlabelled = await handlers.Update(updateReq({ image: { name, labels: { a: '' } }, update_mask: { paths: ['labels.a'] } }), rpc());
    expect(unlabelled.image?.labels).toEqual({ b: '2' });

    await handlers.Delete({ name, sync: false }, rpc());
    await expect(handlers.Get({ name }, rpc())).rejects.toSatisfy(isNotFound);

    await new Promise((r) => setTimeout(r, 20));
    expect(events.map((e) => `${e.namespace} ${e.topic} ${e.event.typeUrl}`)).toEqual([
      `${NS} /images/create containerd.services.images.v1.ImageCreate`,
      `${NS} /images/update containerd.services.images.v1.ImageUpdate`,
      `${NS} /images/update containerd.services.images.v1.ImageUpdate`,
      `${NS} /images/delete containerd.services.images.v1.ImageDelete`,
    ]);
    const decode = (type: 'containerd.services.images.v1.ImageCreate' | 'containerd.services.images.v1.ImageUpdate' | 'containerd.services.images.v1.ImageDelete', e: Envelope) =>
      messageCodec(type).decode(e.event.value);
    expect(decode('containerd.services.images.v1.ImageCreate', events[0]!)).toEqual({ name, labels: { a: '1' } });
    expect(decode('containerd.services.images.v1.ImageUpdate', events[1]!)).toEqual({ name, labels: { a: '1', b: '2' } });
    expect(decode('containerd.services.images.v1.ImageDelete', events[3]!)).toEqual({ name });
  });

  it('refuses bad requests with containerd errors, publishing nothing and storing nothing', async () => {
    const { handlers, events } = await boot();
    const refusals: Array<[() => Promise<unknown>, (e: unknown) => boolean, string]> = [
      [() => handlers.Create(createReq({ image: { name: '', target: desc('m') } }), rpc()), isInvalidArgument, 'Image.Name required'],
      [() => handlers.Create(createReq({}), rpc()), isInvalidArgument, 'Image.Name required'],
      [() => handlers.Create(createReq({ image: { name: 'x' } }), rpc()), isInvalidArgument, 'Target.Digest "" invalid'],
      [() => handlers.Create(createReq({ image: { name: 'x', target: { ...desc('m'), digest: 'nope' } } }), rpc()), isInvalidArgument, 'Target.Digest "nope" invalid'],
      [() => handlers.Create(createReq({ image: { name: 'x', target: { ...desc('m'), size: 0 } } }), rpc()), isInvalidArgument, 'Target.Size must be greater than zero'],
      [() => handlers.Create(createReq({ image: { name: 'x', target: { ...desc('m'), media_type: '' } } }), rpc()), isInvalidArgument, 'Target.MediaType must be set'],
      [() => handlers.Update(updateReq({ image: { name: '' } }), rpc()), isInvalidArgument, 'Image.Name required'],
      [() => handlers.Update(updateReq({ image: { name: 'missing', target: desc('m') } }), rpc()), isNotFound, 'image "missing": not found'],
      [() => handlers.Get({ name: 'missing' }, rpc()), isNotFound, 'image "missing": not found'],
      [() => handlers.Delete({ name: 'missing', sync: true }, rpc()), isNotFound, 'image "missing": not found'],
      [() => handlers.List({ filters: ['name=='] }, rpc()), isInvalidArgument, ''],
    ];
    for (const [call, is, message] of refusals) {
      const err = await call().then(() => undefined, (e: unknown) => e);
      expect(is(err), `${message}: ${String(err)}`).toBe(true);
      expect((err as Error).message).toContain(message);
    }
    await handlers.Create(createReq({ image: { name: 'x', target: desc('m') } }), rpc());
    await expect(handlers.Create(createReq({ image: { name: 'x', target: desc('n') } }), rpc())).rejects.toSatisfy(isAlreadyExists);
    for (const paths of [['name'], ['labels.a', 'created_at'], ['target.digest']]) {
      const err = await handlers.Update(updateReq({ image: { name: 'x', target: desc('n') }, update_mask: { paths } }), rpc()).then(() => undefined, (e: unknown) => e);
      expect(isInvalidArgument(err), String(err)).toBe(true);
      expect((err as Error).message).toMatch(/^cannot update ".*" field on image "x"/);
    }
    // A whole-image update (no mask) without a target is refused, and the image keeps its target.
    await expect(handlers.Update(updateReq({ image: { name: 'x' } }), rpc())).rejects.toSatisfy(isInvalidArgument);
    expect((await handlers.Get({ name: 'x' }, rpc())).image?.target).toMatchObject(desc('m'));
    await new Promise((r) => setTimeout(r, 20));
    expect(events.map((e) => e.topic)).toEqual(['/images/create']);
  });

  for (const withScheduler of [true, false]) {
    it(`Delete with sync returns after the image's content is collected (${withScheduler ? 'GC scheduler' : 'no scheduler'})`, async () => {
      const { handlers, content } = await boot(withScheduler);
      const ctx: OpContext = { namespace: NS };
      const digest = await commit(content, ctx, 'manifest bytes');
      const target = { media_type: MANIFEST, digest, size: Buffer.byteLength('manifest bytes') };
      await handlers.Create(createReq({ image: { name: 'a', target } }), rpc());
      await handlers.Create(createReq({ image: { name: 'b', target } }), rpc());
      await handlers.Delete({ name: 'a', sync: true }, rpc());
      // Still held by b.
      expect((await content.info(ctx, digest)).digest).toBe(digest);
      await handlers.Delete({ name: 'b', sync: true }, rpc());
      await expect(content.info(ctx, digest)).rejects.toSatisfy(isNotFound);
    });
  }
});
