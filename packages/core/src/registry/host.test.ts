import { describe, expect, expectTypeOf, it } from 'vitest';
import { createTestHost } from '../testing/test-host.js';
import { definePlugin, SkipPluginError } from './manifest.js';
import { coreTokens, RequiredPluginError } from './host.js';
import { createContributionPoint, createToken, override } from './token.js';

interface Clock { now(): number }
interface Store { get(k: string): string | undefined; closed: boolean }
const clockToken = createToken<Clock>('test.clock');
const storeToken = createToken<Store>('test.store');

const base = { version: '1.0.0', pluginApi: '^2.0.0' } as const;

const clockPlugin = definePlugin({
  ...base,
  type: 'io.berth.test.v1',
  id: 'clock',
  provides: clockToken,
  init: () => ({ now: () => 42 }),
});

function storePlugin(log: string[] = []) {
  return definePlugin({
    ...base,
    type: 'io.berth.test.v1',
    id: 'store',
    provides: storeToken,
    requires: { clock: clockToken },
    config: {
      schema: {
        $id: 'io.berth.test.v1.store',
        type: 'object',
        additionalProperties: false,
        properties: { prefix: { type: 'string' }, size: { type: 'integer', minimum: 1 } },
        required: ['prefix', 'size'],
      },
      defaults: { prefix: 'p', size: 1 },
    },
    init({ clock }, config) {
      log.push(`init store ${config.prefix}`);
      const store: Store = { get: (k) => `${config.prefix}${k}${clock.now()}`, closed: false };
      return store;
    },
    close(instance) {
      log.push('close store');
      instance.closed = true;
    },
  });
}

describe('PluginHost', () => {
  it('initialises in dependency order and hands typed deps and validated config to init', async () => {
    const log: string[] = [];
    const t = await createTestHost({ plugins: [storePlugin(log), clockPlugin], pluginConfig: { 'io.berth.test.v1.store': { prefix: 'x' } } });
    try {
      expect(t.host.get(storeToken).get('k')).toBe('xk42');
      expect(t.host.list().map((r) => [r.uri, r.status])).toEqual([
        ['io.berth.test.v1.store', 'ok'],
        ['io.berth.test.v1.clock', 'ok'],
      ]);
      expect(t.host.list()[0]!.requires).toEqual(['io.berth.test.v1']);
      expect(t.host.container.resolve(storeToken.key)).toBe(t.host.get(storeToken));
    } finally {
      await t.close();
    }
    expect(log).toEqual(['init store x', 'close store']);
  });

  it('reports every config error at once with the plugin URI and the path', async () => {
    const err = await createTestHost({
      plugins: [storePlugin(), clockPlugin],
      pluginConfig: { 'io.berth.test.v1.store': { prefx: 'typo', size: 0 }, 'io.berth.test.v1.clock': { a: 1 } },
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'BERTH_ERR_CONFIG_INVALID', errdef: 'invalid-argument' });
    const message = (err as Error).message;
    expect(message).toContain('plugins."io.berth.test.v1.store"/prefx: unknown key "prefx"');
    expect(message).toContain('plugins."io.berth.test.v1.store"/size: must be >= 1');
    expect(message).toContain('plugins."io.berth.test.v1.clock": this plugin takes no configuration (a)');
  });

  it('refuses a plugin whose pluginApi range does not match, naming it, and fails its dependents', async () => {
    const old = definePlugin({ ...clockPlugin, pluginApi: '^0.3.0' });
    const t = await createTestHost({ plugins: [old, storePlugin()] });
    try {
      const [clock, store] = t.host.list();
      expect(clock).toMatchObject({ status: 'error', error: { code: 'BERTH_ERR_PLUGIN_API_MISMATCH' } });
      expect(clock!.error!.message).toBe('plugin io.berth.test.v1.clock@1.0.0 requires plugin API ^0.3.0, but this host provides 2.0.0');
      expect(store).toMatchObject({ status: 'error', error: { message: 'dependency io.berth.test.v1.clock failed to load: plugin io.berth.test.v1.clock@1.0.0 requires plugin API ^0.3.0, but this host provides 2.0.0' } });
      expect(store!.requires).toEqual(['io.berth.test.v1']);
    } finally {
      await t.close();
    }
  });

  it('reports a dependency cycle as its path', async () => {
    const aToken = createToken<number>('test.a');
    const bToken = createToken<number>('test.b');
    const a = definePlugin({ ...base, type: 'io.berth.test.v1', id: 'a', provides: aToken, requires: { b: bToken }, init: ({ b }) => b });
    const b = definePlugin({ ...base, type: 'io.berth.test.v1', id: 'b', provides: bToken, requires: { a: aToken }, init: ({ a }) => a });
    const err = await createTestHost({ plugins: [clockPlugin, a, b] }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'BERTH_ERR_PLUGIN_CYCLE' });
    expect((err as Error).message).toBe('plugin dependency cycle: io.berth.test.v1.a → io.berth.test.v1.b → io.berth.test.v1.a');
  });

  it('skips the dependents of a skipped plugin, transitively, and keeps the rest', async () => {
    const skipping = definePlugin({ ...clockPlugin, init: (): Clock => { throw new SkipPluginError('no clock on this host'); } });
    const user = definePlugin({ ...base, type: 'io.berth.test.v1', id: 'user', requires: { store: storeToken }, init: () => ({}) });
    const other = definePlugin({ ...base, type: 'io.berth.test.v1', id: 'other', init: () => ({}) });
    const t = await createTestHost({ plugins: [skipping, storePlugin(), user, other] });
    try {
      const status = Object.fromEntries(t.host.list().map((r) => [r.id, [r.status, r.error?.message]]));
      expect(status).toEqual({
        clock: ['skip', 'no clock on this host: skip plugin'],
        store: ['skip', 'dependency io.berth.test.v1.clock was skipped: skip plugin'],
        user: ['skip', 'dependency io.berth.test.v1.store was skipped: skip plugin'],
        other: ['ok', undefined],
      });
    } finally {
      await t.close();
    }
  });

  it('makes a failing required plugin fatal, and isolates other failures', async () => {
    const broken = definePlugin({ ...base, type: 'io.berth.test.v1', id: 'broken', init: () => { throw new Error('boom'); } });
    const t = await createTestHost({ plugins: [broken, clockPlugin] });
    expect(t.host.list().map((r) => r.status)).toEqual(['error', 'ok']);
    await t.close();
    const err = await createTestHost({ plugins: [broken, clockPlugin], required: ['io.berth.test.v1.broken'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RequiredPluginError);
    expect((err as Error).message).toBe('required plugin io.berth.test.v1.broken did not load: boom');
  });

  it('leaves disabled plugins out and falls back to the next provider of a token', async () => {
    const second = definePlugin({ ...clockPlugin, id: 'clock2', init: () => ({ now: () => 7 }) });
    const t = await createTestHost({ plugins: [clockPlugin, second, storePlugin()], disabled: ['io.berth.test.v1.clock'] });
    try {
      expect(t.host.get(storeToken).get('')).toBe('p7');
      expect(t.host.list().find((r) => r.id === 'clock')!.status).toBe('disabled');
    } finally {
      await t.close();
    }
  });

  it('gives optional deps undefined and host tokens', async () => {
    let seen: unknown;
    const consumer = definePlugin({
      ...base,
      type: 'io.berth.test.v1',
      id: 'consumer',
      requires: { store: storeToken.optional, plugins: coreTokens.plugins },
      init(deps) {
        expectTypeOf(deps.store).toEqualTypeOf<Store | undefined>();
        seen = { store: deps.store, count: deps.plugins.list().length };
        return {};
      },
    });
    const t = await createTestHost({ plugins: [consumer, clockPlugin] });
    try {
      expect(seen).toEqual({ store: undefined, count: 2 });
    } finally {
      await t.close();
    }
  });

  it('initialises lazily only the closure of what is resolved', async () => {
    const log: string[] = [];
    const unrelated = definePlugin({ ...base, type: 'io.berth.test.v1', id: 'unrelated', init: () => { log.push('unrelated'); return {}; } });
    const t = await createTestHost({ plugins: [unrelated, storePlugin(log), clockPlugin], lazy: true });
    try {
      expect((await t.host.resolve(storeToken)).get('a')).toBe('pa42');
      expect(log).toEqual(['init store p']);
      expect(t.host.list().find((r) => r.id === 'unrelated')!.status).toBe('pending');
    } finally {
      await t.close();
    }
  });

  it('creates per-plugin dirs only for plugins that require them', async () => {
    const { existsSync } = await import('node:fs');
    let dirs: unknown;
    const withDirs = definePlugin({ ...base, type: 'io.berth.test.v1', id: 'disk', requires: { dirs: coreTokens.dirs }, init: (d) => { dirs = d.dirs; return {}; } });
    const t = await createTestHost({ plugins: [clockPlugin, withDirs] });
    try {
      expect(existsSync(`${t.server.root}/io.berth.test.v1.clock`)).toBe(false);
      expect(dirs).toEqual({ root: `${t.server.root}/io.berth.test.v1.disk`, state: `${t.server.state}/io.berth.test.v1.disk` });
      expect(existsSync(`${t.server.root}/io.berth.test.v1.disk`)).toBe(true);
      expect(existsSync(`${t.server.state}/io.berth.test.v1.disk`)).toBe(true);
    } finally {
      await t.close();
    }
  });

  it('types init deps from requires', () => {
    definePlugin({
      ...base,
      type: 'io.berth.test.v1',
      id: 'typed',
      requires: { clock: clockToken },
      init(deps) {
        expectTypeOf(deps.clock).toEqualTypeOf<Clock>();
        // @ts-expect-error store was not declared in requires
        void deps.store;
        return {};
      },
    });
  });
});
