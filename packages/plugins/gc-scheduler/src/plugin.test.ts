import {
  collectableToken,
  coreTokens,
  gcToken,
  isPluginManifest,
  pluginUri,
  PluginKind,
  type GarbageCollectable,
  type GCStats,
} from '@berth/core';
import { createTestHost, override, type TestHost } from '@berth/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { gcSchedulerConfigDefaults, gcSchedulerConfigSchema } from './config.js';
import gcSchedulerDefault, { gcSchedulerPlugin } from './index.js';
import { GcScheduler } from './scheduler.js';
import { PACKAGE_VERSION } from './version.js';

const URI = 'io.containerd.gc.v1.scheduler';

/** Stands in for the metadata plugin (a plugin never imports another): what the scheduler collects. */
function fakeMetadata(): { store: GarbageCollectable; runs: () => number; emit: (kind: 'delete' | 'write') => void } {
  let runs = 0;
  const listeners = new Set<(kind: 'delete' | 'write') => void>();
  const collectable: GarbageCollectable = {
    async garbageCollect(): Promise<GCStats> {
      runs++;
      return { startedAt: new Date(), durationMs: 1, removed: { content: 0, ingests: 0, snapshots: 0, leases: 0 } };
    },
    onMutation(listener: (kind: 'delete' | 'write') => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  return {
    store: collectable,
    runs: () => runs,
    emit: (kind) => listeners.forEach((l) => l(kind)),
  };
}

describe('gcSchedulerPlugin', () => {
  const hosts: TestHost[] = [];
  afterEach(async () => {
    for (const h of hosts.splice(0)) await h.close();
  });

  it('is io.containerd.gc.v1.scheduler, requiring what it collects and providing the gc token', () => {
    expect(isPluginManifest(gcSchedulerPlugin)).toBe(true);
    expect(gcSchedulerDefault).toBe(gcSchedulerPlugin);
    expect(pluginUri(gcSchedulerPlugin)).toBe(URI);
    expect(gcSchedulerPlugin.type).toBe(PluginKind.GC);
    expect(gcSchedulerPlugin.version).toBe(PACKAGE_VERSION);
    expect(gcSchedulerPlugin.provides).toBe(gcToken);
    expect(gcSchedulerPlugin.requires).toEqual({ collectable: collectableToken, log: coreTokens.logger, metrics: coreTokens.metrics });
    expect(gcSchedulerConfigSchema.$id).toBe(URI);
    expect(gcSchedulerPlugin.config?.defaults).toEqual(gcSchedulerConfigDefaults);
  });

  it('boots with the defaults: collects after startup, reports containerd exports, stops on close', async () => {
    const metadata = fakeMetadata();
    const t = await createTestHost({ plugins: [gcSchedulerPlugin], required: [URI], overrides: [override(collectableToken, metadata.store)] });
    hosts.push(t);
    const gc = t.host.get(gcToken);
    expect(gc).toBeInstanceOf(GcScheduler);
    expect(t.host.list().find((r) => r.uri === URI)).toMatchObject({
      status: 'ok',
      exports: { PauseThreshold: '0.02', DeletionThreshold: '0', MutationThreshold: '100', ScheduleDelay: '0s' },
    });
    const deadline = Date.now() + 2000;
    while (metadata.runs() === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(metadata.runs()).toBe(1); // startup_delay 100ms
    await gc.scheduleAndWait();
    expect(metadata.runs()).toBe(2);

    await t.close();
    hosts.pop();
    await expect(gc.scheduleAndWait()).rejects.toThrow('gc scheduler is closed');
    metadata.emit('delete');
    await new Promise((r) => setTimeout(r, 30));
    expect(metadata.runs()).toBe(2);
  });

  it('takes its section from the config: durations, thresholds', async () => {
    const metadata = fakeMetadata();
    const t = await createTestHost({
      plugins: [gcSchedulerPlugin],
      required: [URI],
      overrides: [override(collectableToken, metadata.store)],
      pluginConfig: { [URI]: { startup_delay: '0s', schedule_delay: '1m30s', deletion_threshold: 2, pause_threshold: 0.9 } },
    });
    hosts.push(t);
    expect(t.host.list().find((r) => r.uri === URI)?.exports).toEqual({
      PauseThreshold: '0.5',
      DeletionThreshold: '2',
      MutationThreshold: '100',
      ScheduleDelay: '1m30s',
    });
    expect((t.host.get(gcToken) as GcScheduler).settings).toMatchObject({ scheduleDelayMs: 90_000, startupDelayMs: 0 });
  });

  it('refuses a malformed duration or an unknown key before starting', async () => {
    for (const section of [{ schedule_delay: '5' }, { startup_delay: '1d' }, { pause_treshold: 0.1 }]) {
      await expect(
        createTestHost({
          plugins: [gcSchedulerPlugin],
          required: [URI],
          overrides: [override(collectableToken, fakeMetadata().store)],
          pluginConfig: { [URI]: section },
        }),
      ).rejects.toThrow(URI);
    }
  });
});
