import { describe, expect, it } from 'vitest';
import { errdefOf } from '../errdefs/errdefs.js';
import type { Stream } from '../kinds/streaming.js';
import { streamManagerToken } from '../kinds/tokens.js';
import { PluginKind } from '../kinds/plugin-kind.js';
import { pluginUri } from '../registry/manifest.js';
import { createTestHost } from '../testing/test-host.js';
import { LocalStreamManager } from './manager.js';
import { streamManagerPlugin } from './plugin.js';

function fakeStream(): Stream {
  return { send: async () => {}, recv: async () => undefined, close: () => {} };
}

function errdefOfCall(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return errdefOf(err);
  }
  return 'none';
}

describe('LocalStreamManager', () => {
  it('finds a stream by namespace and id until it is unregistered', () => {
    const manager = new LocalStreamManager();
    const a = fakeStream();
    const off = manager.register('ns1', 'progress-1', a);
    expect(manager.get('ns1', 'progress-1')).toBe(a);
    expect(errdefOfCall(() => manager.get('ns2', 'progress-1'))).toBe('not-found');
    off();
    expect(errdefOfCall(() => manager.get('ns1', 'progress-1'))).toBe('not-found');
    expect(manager.size).toBe(0);
  });

  it('refuses a taken id in one namespace, allows it in another, and an old unregister leaves a newer stream', () => {
    const manager = new LocalStreamManager();
    const first = fakeStream();
    const off = manager.register('ns', 'x', first);
    expect(errdefOfCall(() => manager.register('ns', 'x', fakeStream()))).toBe('already-exists');
    manager.register('other', 'x', fakeStream());
    off();
    const second = fakeStream();
    manager.register('ns', 'x', second);
    off();
    expect(manager.get('ns', 'x')).toBe(second);
    expect(errdefOfCall(() => manager.register('ns', '', fakeStream()))).toBe('invalid-argument');
  });

  it('is io.containerd.streaming.v1.manager and boots in a host', async () => {
    expect(pluginUri(streamManagerPlugin)).toBe(`${PluginKind.Streaming}.manager`);
    const t = await createTestHost({ plugins: [streamManagerPlugin], required: ['io.containerd.streaming.v1.manager'] });
    try {
      expect(t.host.get(streamManagerToken)).toBeInstanceOf(LocalStreamManager);
    } finally {
      await t.close();
    }
  });
});
