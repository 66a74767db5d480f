import { packAny } from '@berth/api';
import { exchangePlugin, isFailedPrecondition, isInvalidArgument, rpcServicesPoint, type RpcContext } from '@berth/core';
import { createTestHost } from '@berth/core/testing';
import { describe, expect, it } from 'vitest';
import { eventsServicePlugin } from './plugin.js';

const ctxFor = (namespace?: string, signal = new AbortController().signal): RpcContext => ({
  metadata: namespace ? { 'containerd-namespace': namespace } : {},
  signal,
});

describe('services-events', () => {
  it('delivers published and forwarded events to subscribers whose filters match', async () => {
    const t = await createTestHost({ plugins: [exchangePlugin, eventsServicePlugin] });
    try {
      const [grpcEvents, ttrpcEvents] = [...t.host.all(rpcServicesPoint).values()][0]!.services;
      expect(ttrpcEvents!.transports).toEqual(['ttrpc']);
      const controller = new AbortController();
      const received: Array<{ namespace: string; topic: string; event: { type_url: string } }> = [];
      const subscription = grpcEvents!.handlers.Subscribe!({ filters: ['event.container_id==c1', 'topic=="/custom"'] }, ctxFor(undefined, controller.signal)) as AsyncIterable<(typeof received)[number]>;
      const reading = (async () => {
        for await (const e of subscription) {
          received.push(e);
          if (received.length === 2) controller.abort();
        }
      })();
      await new Promise((r) => setTimeout(r, 10));
      const exit = packAny('containerd.events.TaskExit', { container_id: 'c1', id: 'c1', pid: 42, exit_status: 3 });
      const other = packAny('containerd.events.TaskExit', { container_id: 'c2' });
      await grpcEvents!.handlers.Publish!({ topic: '/tasks/exit', event: other }, ctxFor('default'));
      await ttrpcEvents!.handlers.Forward!(
        { envelope: { timestamp: { seconds: 1700000000, nanos: 5 }, namespace: 'shimns', topic: '/tasks/exit', event: exit } },
        ctxFor(),
      );
      await grpcEvents!.handlers.Publish!({ topic: '/custom', event: packAny('containerd.events.ContentDelete', { digest: 'd' }) }, ctxFor('ns2'));
      await reading;
      expect(received.map((e) => [e.namespace, e.topic, e.event.type_url])).toEqual([
        ['shimns', '/tasks/exit', 'containerd.events.TaskExit'],
        ['ns2', '/custom', 'containerd.events.ContentDelete'],
      ]);
    } finally {
      await t.close();
    }
  });

  it('rejects a publish without namespace, with a bad topic, or without an event', async () => {
    const t = await createTestHost({ plugins: [exchangePlugin, eventsServicePlugin] });
    try {
      const { handlers } = [...t.host.all(rpcServicesPoint).values()][0]!.services[0]!;
      const event = packAny('containerd.events.ContentDelete', { digest: 'd' });
      await expect(handlers.Publish!({ topic: '/x', event }, ctxFor())).rejects.toSatisfy(isFailedPrecondition);
      await expect(handlers.Publish!({ topic: 'x', event }, ctxFor('default'))).rejects.toSatisfy(isInvalidArgument);
      await expect(handlers.Publish!({ topic: '/x', event: null }, ctxFor('default'))).rejects.toSatisfy(isInvalidArgument);
      await expect(handlers.Forward!({ envelope: null }, ctxFor())).rejects.toSatisfy(isInvalidArgument);
    } finally {
      await t.close();
    }
  });
});
