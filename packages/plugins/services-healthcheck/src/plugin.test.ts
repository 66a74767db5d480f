import { isNotFound, rpcServicesPoint, type RpcContext } from '@berth/core';
import { createTestHost } from '@berth/core/testing';
import { describe, expect, it } from 'vitest';
import { healthServicePlugin } from './plugin.js';

describe('services-healthcheck', () => {
  it('reports SERVING for the server and known services, NotFound otherwise, and Watch ends on abort', async () => {
    const t = await createTestHost({ plugins: [healthServicePlugin] });
    try {
      const { handlers } = [...t.host.all(rpcServicesPoint).values()][0]!.services[0]!;
      const controller = new AbortController();
      const ctx: RpcContext = { metadata: {}, signal: controller.signal };
      expect(await handlers.Check!({ service: '' }, ctx)).toEqual({ status: 'SERVING' });
      expect(await handlers.Check!({ service: 'containerd.services.version.v1.Version' }, ctx)).toEqual({ status: 'SERVING' });
      await expect(handlers.Check!({ service: 'nope.Service' }, ctx)).rejects.toSatisfy(isNotFound);
      const seen: unknown[] = [];
      const watching = (async () => {
        for await (const s of handlers.Watch!({ service: '' }, ctx) as AsyncIterable<unknown>) seen.push(s);
      })();
      await new Promise((r) => setTimeout(r, 20));
      controller.abort();
      await watching;
      expect(seen).toEqual([{ status: 'SERVING' }]);
    } finally {
      await t.close();
    }
  });
});
