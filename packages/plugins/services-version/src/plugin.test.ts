import { rpcServicesPoint, type RpcContext } from '@berth/core';
import { createTestHost } from '@berth/core/testing';
import { describe, expect, it } from 'vitest';
import { versionServicePlugin } from './plugin.js';

const ctx: RpcContext = { metadata: {}, signal: new AbortController().signal };

describe('services-version', () => {
  it('answers Version with the server version and revision', async () => {
    const t = await createTestHost({ plugins: [versionServicePlugin] });
    try {
      const [impl] = [...t.host.all(rpcServicesPoint).values()][0]!.services;
      expect(impl!.service).toBe('containerd.services.version.v1.Version');
      expect(await impl!.handlers.Version!({}, ctx)).toEqual({ version: t.server.version, revision: t.server.revision });
    } finally {
      await t.close();
    }
  });
});
