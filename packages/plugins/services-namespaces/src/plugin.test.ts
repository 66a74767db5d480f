import contentLocalPlugin from '@berth/plugin-content-local';
import metadataLmdbPlugin from '@berth/plugin-metadata-lmdb';
import { eventsToken, exchangePlugin, isAlreadyExists, isInvalidArgument, isNotFound, rpcServicesPoint, type RpcContext } from '@berth/core';
import { createTestHost } from '@berth/core/testing';
import { describe, expect, it } from 'vitest';
import { namespacesServicePlugin } from './plugin.js';

const ctx: RpcContext = { metadata: { 'containerd-namespace': 'default' }, signal: new AbortController().signal };

describe('services-namespaces', () => {
  it('creates, lists, updates with field masks and deletes namespaces, publishing events', async () => {
    const t = await createTestHost({ plugins: [contentLocalPlugin, metadataLmdbPlugin, exchangePlugin, namespacesServicePlugin] });
    const controller = new AbortController();
    try {
      const { handlers } = [...t.host.all(rpcServicesPoint).values()][0]!.services[0]!;
      const topics: string[] = [];
      const reading = (async () => {
        for await (const e of t.host.get(eventsToken).subscribe([], controller.signal)) topics.push(`${e.namespace} ${e.topic}`);
      })();
      await handlers.Create!({ namespace: { name: 'foo', labels: { a: 'b' } } }, ctx);
      await expect(handlers.Create!({ namespace: { name: 'foo', labels: {} } }, ctx)).rejects.toSatisfy(isAlreadyExists);
      await expect(handlers.Create!({ namespace: { name: 'bad name', labels: {} } }, ctx)).rejects.toSatisfy(isInvalidArgument);
      const updated = await handlers.Update!({ namespace: { name: 'foo', labels: { c: 'd' } }, update_mask: { paths: ['labels.c', 'labels.a'] } }, ctx);
      expect(updated).toEqual({ namespace: { name: 'foo', labels: { c: 'd' } } });
      await expect(handlers.Update!({ namespace: { name: 'foo', labels: {} }, update_mask: { paths: ['name'] } }, ctx)).rejects.toSatisfy(isInvalidArgument);
      // A bare `labels` path would replace every label: containerd refuses it, and refuses the whole update.
      for (const paths of [['labels'], ['labels.x', 'labels']]) {
        const refused = handlers.Update!({ namespace: { name: 'foo', labels: { x: 'y' } }, update_mask: { paths } }, ctx);
        await expect(refused).rejects.toThrow('cannot update "labels" field');
        await expect(refused).rejects.toSatisfy(isInvalidArgument);
      }
      await expect(handlers.Update!({ namespace: { name: 'foo', labels: { '': 'v' } }, update_mask: { paths: ['labels.'] } }, ctx)).rejects.toSatisfy(isInvalidArgument);
      expect(await handlers.Get!({ name: 'foo' }, ctx)).toEqual({ namespace: { name: 'foo', labels: { c: 'd' } } });
      expect((await handlers.List!({ filter: '' }, ctx)).namespaces).toEqual([{ name: 'foo', labels: { c: 'd' } }]);
      await handlers.Delete!({ name: 'foo' }, ctx);
      // As containerd: a name that does not exist reads as empty labels (and is not created by reading it).
      expect(await handlers.Get!({ name: 'foo' }, ctx)).toEqual({ namespace: { name: 'foo', labels: {} } });
      expect(await handlers.Get!({ name: 'never-made' }, ctx)).toEqual({ namespace: { name: 'never-made', labels: {} } });
      expect((await handlers.List!({ filter: '' }, ctx)).namespaces).toEqual([]);
      await expect(handlers.Delete!({ name: 'foo' }, ctx)).rejects.toSatisfy(isNotFound);
      await new Promise((r) => setTimeout(r, 10));
      expect(topics).toEqual(['default /namespaces/create', 'default /namespaces/update', 'default /namespaces/delete']);
    } finally {
      controller.abort();
      await t.close();
    }
  });
});
