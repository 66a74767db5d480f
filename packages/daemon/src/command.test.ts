import { coreTokens, createToken, definePlugin, validateServerConfig } from '@berth/core';
import { describe, expect, it } from 'vitest';
import { createDaemon, type PluginSource } from './command.js';

const storeToken = createToken<{ ok: true }>('compose-test.store');
const base = { type: 'io.berth.compose-test.v1', version: '3.1.4', pluginApi: '^2.0.0' } as const;
const store = definePlugin({ ...base, id: 'store', provides: storeToken, requires: { log: coreTokens.logger }, init: () => ({ ok: true as const }) });
const user = definePlugin({ ...base, id: 'user', requires: { store: storeToken }, init: () => ({}) });

describe('createDaemon', () => {
  it('refuses a selection with a missing provider or an API mismatch before anything runs', () => {
    expect(() => createDaemon({ name: 'demo', version: 'v1.0.0', plugins: [user] })).toThrow(/demo v1\.0\.0 cannot run:\n.*io\.berth\.compose-test\.v1\.user requires "compose-test\.store"/);
    const old = definePlugin({ ...base, id: 'old', pluginApi: '^1.0.0', init: () => ({}) });
    expect(() => createDaemon({ name: 'demo', version: 'v1.0.0', plugins: [store, old] })).toThrow(/requires plugin API \^1\.0\.0/);
  });

  it('--version text names the program and each built-in plugin with its version', () => {
    const program = createDaemon({ name: 'demo', version: 'v1.0.0', plugins: [store, user] });
    expect(program.revision).toBe('demo-1.0.0');
    expect(program.versionText()).toBe('demo v1.0.0 demo-1.0.0\n  io.berth.compose-test.v1.store 3.1.4\n  io.berth.compose-test.v1.user 3.1.4\n');
  });

  it('composes the built-in plugins with what each plugin source finds for the config', async () => {
    const extra = definePlugin({ ...base, id: 'extra', init: () => ({}) });
    const seen: string[] = [];
    const source: PluginSource = {
      name: 'test',
      load: (config, baseDir) => {
        seen.push(`${config.root} ${baseDir}`);
        return Promise.resolve({ manifests: [extra], sources: { 'io.berth.compose-test.v1.extra': 'test:extra' } });
      },
    };
    const program = createDaemon({ name: 'demo', version: 'v1.0.0', plugins: [store, user], pluginSources: [source] });
    const composed = await program.compose(validateServerConfig({ root: '/r' }), '/base');
    expect(composed.plugins).toEqual([store, user, extra]);
    expect(composed.sources).toEqual({ 'io.berth.compose-test.v1.extra': 'test:extra' });
    expect(seen).toEqual(['/r /base']);
  });
});
