import { ServiceNames } from '@berth/api';
import { containersToken, coreTokens, isPluginManifest, PluginKind, pluginUri, rpcServicesPoint, runtimeToken, snapshottersToken, taskMetricsToken } from '@berth/core';
import { createTestHost, override, rpcService } from '@berth/core/testing';
import { describe, expect, it } from 'vitest';
import tasksServiceDefault, { tasksServicePlugin } from './index.js';
import { FakeContainers, FakeRuntime, FakeSnapshotters } from './testing-fixtures/fakes.js';
import { PACKAGE_VERSION } from './version.js';

describe('tasksServicePlugin', () => {
  it('is io.containerd.grpc.v1.tasks, requiring the runtime, the containers store, the snapshotters and optionally a task monitor', () => {
    expect(isPluginManifest(tasksServicePlugin)).toBe(true);
    expect(tasksServiceDefault).toBe(tasksServicePlugin);
    expect(pluginUri(tasksServicePlugin)).toBe('io.containerd.grpc.v1.tasks');
    expect(tasksServicePlugin.type).toBe(PluginKind.GRPC);
    expect(tasksServicePlugin.version).toBe(PACKAGE_VERSION);
    expect(tasksServicePlugin.provides).toBe(rpcServicesPoint);
    expect(tasksServicePlugin.requires).toEqual({
      runtime: runtimeToken,
      containers: containersToken,
      snapshotters: snapshottersToken,
      monitor: taskMetricsToken.optional,
      log: coreTokens.logger,
    });
  });

  it('boots over its three dependencies and serves every Tasks method over gRPC', async () => {
    const host = await createTestHost({
      plugins: [tasksServicePlugin],
      overrides: [override(runtimeToken, new FakeRuntime()), override(containersToken, new FakeContainers()), override(snapshottersToken, new FakeSnapshotters())],
    });
    try {
      const tasks = rpcService(host.host, ServiceNames.Tasks);
      expect(Object.keys(tasks.handlers).sort()).toEqual(
        ['Checkpoint', 'CloseIO', 'Create', 'Delete', 'DeleteProcess', 'Exec', 'Get', 'Kill', 'List', 'ListPids', 'Metrics', 'Pause', 'ResizePty', 'Resume', 'Start', 'Update', 'Wait'].sort(),
      );
    } finally {
      await host.close();
    }
  });

  it('is skipped with its reason when no runtime is composed', async () => {
    const host = await createTestHost({
      plugins: [tasksServicePlugin],
      overrides: [override(containersToken, new FakeContainers()), override(snapshottersToken, new FakeSnapshotters())],
    });
    try {
      const entry = host.host.list().find((p) => p.uri === 'io.containerd.grpc.v1.tasks');
      expect(entry?.status).not.toBe('ok');
    } finally {
      await host.close();
    }
  });
});
