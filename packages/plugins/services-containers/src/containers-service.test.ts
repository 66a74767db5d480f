import { messageCodec, ServiceNames, type containerd } from '@berth/api';
import {
  eventsToken,
  exchangePlugin,
  isAlreadyExists,
  isInvalidArgument,
  isNotFound,
  OCI_SPEC_TYPE_URL,
  rpcServicesPoint,
  type Envelope,
  type RpcContext,
} from '@berth/core';
import { createTestHost, rpcContext, type TestHost } from '@berth/core/testing';
import contentLocalPlugin from '@berth/plugin-content-local';
import metadataLmdbPlugin from '@berth/plugin-metadata-lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import { containersServicePlugin } from './plugin.js';

type Handlers = containerd.services.containers.v1.ContainersHandlers;

const NS = 'testing';
/** Requests as the wire delivers them (absent fields defaulted by the codec). */
const createCodec = messageCodec('containerd.services.containers.v1.CreateContainerRequest');
const updateCodec = messageCodec('containerd.services.containers.v1.UpdateContainerRequest');
const createReq = (input: containerd.services.containers.v1.CreateContainerRequestInput) => createCodec.decode(createCodec.encode(input));
const updateReq = (input: containerd.services.containers.v1.UpdateContainerRequestInput) => updateCodec.decode(updateCodec.encode(input));
const rpc = (namespace = NS): RpcContext => rpcContext({ namespace });
/** Answers as the wire carries them: List and ListStream answer with encoded bytes, which only the codec reads. */
const listCodec = messageCodec('containerd.services.containers.v1.ListContainersResponse');
const streamCodec = messageCodec('containerd.services.containers.v1.ListContainerMessage');
const getCodec = messageCodec('containerd.services.containers.v1.GetContainerResponse');
const listed = (answer: containerd.services.containers.v1.ListContainersResponseInput) => listCodec.decode(listCodec.encode(answer)).containers;
const streamed = (message: containerd.services.containers.v1.ListContainerMessageInput) => streamCodec.decode(streamCodec.encode(message)).container;
const got = (answer: containerd.services.containers.v1.GetContainerResponseInput) => getCodec.decode(getCodec.encode(answer)).container;

const spec = { type_url: OCI_SPEC_TYPE_URL, value: Buffer.from('{"ociVersion":"1.0.2"}') };
const runc = { name: 'io.containerd.runc.v2', options: { type_url: 'containerd.runc.v1.Options', value: Buffer.alloc(0) } };
const ext = (doc: unknown) => ({ type_url: 'acme.io/ownership', value: Buffer.from(JSON.stringify(doc)) });

describe('ContainersService', () => {
  let host: TestHost | undefined;
  let stop: AbortController | undefined;
  afterEach(async () => {
    stop?.abort();
    await host?.close();
    host = undefined;
  });

  async function boot(): Promise<{ handlers: Handlers; events: Envelope[] }> {
    host = await createTestHost({ plugins: [contentLocalPlugin, metadataLmdbPlugin, exchangePlugin, containersServicePlugin] });
    const impl = [...host.host.all(rpcServicesPoint).values()].flatMap((s) => s.services).find((s) => s.service === ServiceNames.Containers);
    const events: Envelope[] = [];
    stop = new AbortController();
    const signal = stop.signal;
    const exchange = host.host.get(eventsToken);
    void (async () => {
      for await (const e of exchange.subscribe([], signal)) events.push(e);
    })();
    return { handlers: impl!.handlers as unknown as Handlers, events };
  }

  const settle = () => new Promise((r) => setTimeout(r, 20));

  it('creates, gets, lists, streams, updates and deletes over the wire shapes, publishing containerd 1.6 events', async () => {
    const { handlers, events } = await boot();
    const created = await handlers.Create(
      createReq({ container: { id: 'c1', image: 'docker.io/library/busybox:latest', labels: { a: '1' }, runtime: runc, spec, snapshotter: 'overlayfs', snapshot_key: 'c1' } }),
      rpc(),
    );
    expect(created.container).toMatchObject({ id: 'c1', image: 'docker.io/library/busybox:latest', labels: { a: '1' }, runtime: { name: 'io.containerd.runc.v2' }, snapshotter: 'overlayfs', snapshot_key: 'c1', extensions: {} });
    expect(Buffer.from(created.container!.spec!.value!)).toEqual(spec.value);
    expect(created.container?.runtime?.options?.type_url).toBe('containerd.runc.v1.Options');
    expect(Number(created.container?.created_at?.seconds)).toBeGreaterThan(0);

    expect((await handlers.Get({ id: 'c1' }, rpc())).container).toEqual(created.container);
    const c1 = got(await handlers.Get({ id: 'c1' }, rpc()));
    expect(listed(await handlers.List({ filters: [] }, rpc()))).toEqual([c1]);
    expect(listed(await handlers.List({ filters: ['labels.a==2'] }, rpc()))).toEqual([]);
    expect(listed(await handlers.List({ filters: [] }, rpc('elsewhere')))).toEqual([]);
    await handlers.Create(createReq({ container: { id: 'c2', runtime: runc, spec } }), rpc());
    const stream: unknown[] = [];
    for await (const message of handlers.ListStream({ filters: [] }, rpc())) stream.push(streamed(message));
    expect(stream).toEqual([c1, got(await handlers.Get({ id: 'c2' }, rpc()))]);

    // ctr containers label c1 k=v: Update{container{id, labels, image:""}, mask labels.k}
    const labelled = await handlers.Update(updateReq({ container: { id: 'c1', labels: { k: 'v' } }, update_mask: { paths: ['labels.k'] } }), rpc());
    expect(labelled.container?.labels).toEqual({ a: '1', k: 'v' });
    expect(labelled.container?.image).toBe('docker.io/library/busybox:latest');

    await handlers.Delete({ id: 'c1' }, rpc());
    await expect(handlers.Get({ id: 'c1' }, rpc())).rejects.toSatisfy(isNotFound);

    await settle();
    expect(events.map((e) => `${e.namespace} ${e.topic} ${e.event.typeUrl}`)).toEqual([
      `${NS} /containers/create containerd.events.ContainerCreate`,
      `${NS} /containers/create containerd.events.ContainerCreate`,
      `${NS} /containers/update containerd.events.ContainerUpdate`,
      `${NS} /containers/delete containerd.events.ContainerDelete`,
    ]);
    expect(messageCodec('containerd.events.ContainerCreate').decode(events[0]!.event.value)).toMatchObject({
      id: 'c1',
      image: 'docker.io/library/busybox:latest',
      runtime: { name: 'io.containerd.runc.v2', options: { type_url: 'containerd.runc.v1.Options' } },
    });
    expect(messageCodec('containerd.events.ContainerUpdate').decode(events[2]!.event.value)).toEqual({
      id: 'c1',
      image: 'docker.io/library/busybox:latest',
      labels: { a: '1', k: 'v' },
      snapshot_key: 'c1',
    });
    expect(messageCodec('containerd.events.ContainerDelete').decode(events[3]!.event.value)).toEqual({ id: 'c1' });
  });

  it('publishes /containers/extensions/update per extension a write changes', async () => {
    const { handlers, events } = await boot();
    await handlers.Create(createReq({ container: { id: 'c', runtime: runc, spec, extensions: { 'acme.io/ownership': ext({ team: 'a' }) } } }), rpc());
    await handlers.Update(updateReq({ container: { id: 'c', labels: { x: 'y' } }, update_mask: { paths: ['labels.x'] } }), rpc());
    await handlers.Update(
      updateReq({ container: { id: 'c', extensions: { 'acme.io/ownership': ext({ team: 'b' }), 'acme.io/other': ext({}) } }, update_mask: { paths: ['extensions'] } }),
      rpc(),
    );
    await handlers.Update(updateReq({ container: { id: 'c' }, update_mask: { paths: ['extensions.acme.io/other'] } }), rpc());
    await handlers.Delete({ id: 'c' }, rpc());
    await settle();
    const decode = messageCodec('berth.services.extensions.v1.ContainerExtensionUpdate');
    const updates = events
      .filter((e) => e.topic === '/containers/extensions/update')
      .map((e) => {
        expect(e.event.typeUrl).toBe('berth.services.extensions.v1.ContainerExtensionUpdate');
        const m = decode.decode(e.event.value);
        return `${m.container_id} ${m.name} ${String(m.revision)} ${m.deleted}`;
      });
    expect(updates).toEqual([
      'c acme.io/ownership 1 false',
      'c acme.io/ownership 2 false',
      'c acme.io/other 1 false',
      'c acme.io/other 1 true',
      'c acme.io/ownership 2 true',
    ]);
  });

  it('refuses bad requests with containerd errors, publishing nothing and storing nothing', async () => {
    const { handlers, events } = await boot();
    const refusals: Array<[() => Promise<unknown>, (e: unknown) => boolean, string]> = [
      [() => handlers.Create(createReq({}), rpc()), isInvalidArgument, 'container.ID: identifier must not be empty'],
      [() => handlers.Create(createReq({ container: { id: 'c', spec } }), rpc()), isInvalidArgument, 'container.Runtime.Name must be set'],
      [() => handlers.Create(createReq({ container: { id: 'c', runtime: runc } }), rpc()), isInvalidArgument, 'container.Spec must be set'],
      [() => handlers.Create(createReq({ container: { id: 'c', runtime: runc, spec, snapshot_key: 'k' } }), rpc()), isInvalidArgument, 'container.Snapshotter must be set'],
      [() => handlers.Create(createReq({ container: { id: 'c', runtime: runc, spec, labels: { big: 'x'.repeat(4094) } } }), rpc()), isInvalidArgument, 'key: big'],
      [() => handlers.Update(updateReq({ container: { id: '' } }), rpc()), isInvalidArgument, 'Container.ID required'],
      [() => handlers.Update(updateReq({}), rpc()), isInvalidArgument, 'Container.ID required'],
      [() => handlers.Update(updateReq({ container: { id: 'missing' }, update_mask: { paths: ['labels.a'] } }), rpc()), isNotFound, 'container "missing": not found'],
      [() => handlers.Get({ id: 'missing' }, rpc()), isNotFound, 'container "missing" in namespace "testing": not found'],
      [() => handlers.Delete({ id: 'missing' }, rpc()), isNotFound, 'container "missing": not found'],
      [() => handlers.List({ filters: ['id=='] }, rpc()), isInvalidArgument, ''],
    ];
    for (const [call, is, message] of refusals) {
      const err = await call().then(() => undefined, (e: unknown) => e);
      expect(is(err), `${message}: ${String(err)}`).toBe(true);
      expect((err as Error).message).toContain(message);
    }
    await handlers.Create(createReq({ container: { id: 'c', runtime: runc, spec } }), rpc());
    await expect(handlers.Create(createReq({ container: { id: 'c', runtime: runc, spec } }), rpc())).rejects.toSatisfy(isAlreadyExists);
    for (const paths of [['runtime'], ['snapshotter'], ['labels.a', 'created_at'], ['id']]) {
      const err = await handlers.Update(updateReq({ container: { id: 'c', runtime: { name: 'other' } }, update_mask: { paths } }), rpc()).then(() => undefined, (e: unknown) => e);
      expect(isInvalidArgument(err), String(err)).toBe(true);
      expect((err as Error).message).toMatch(/^cannot update ".*" field on "c"/);
    }
    await expect(handlers.Update(updateReq({ container: { id: 'c', runtime: { name: 'other' }, spec } }), rpc())).rejects.toThrow('container.Runtime.Name field is immutable');
    expect((await handlers.Get({ id: 'c' }, rpc())).container?.runtime?.name).toBe('io.containerd.runc.v2');
    await settle();
    expect(events.map((e) => e.topic)).toEqual(['/containers/create']);
  });
});
