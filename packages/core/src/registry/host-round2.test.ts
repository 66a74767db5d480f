// The plugin model's second round: named providers, roles, several capabilities per plugin, contribution points,
// validation and isolation, and the container as the registry.
import { describe, expect, expectTypeOf, it } from 'vitest';
import { createLogger, type Logger } from '../log/logger.js';
import { MetricsRegistry } from '../metrics/metrics.js';
import { createTestHost } from '../testing/test-host.js';
import { coreTokens } from './host.js';
import { definePlugin } from './manifest.js';
import { createContributionPoint, createToken, override } from './token.js';

interface Reader { read(): string }
interface Store extends Reader { write(v: string): void }
const readerToken = createToken<Reader>('round2.reader');
const storeToken = createToken<Store>('round2.store', { roles: [readerToken] });
const otherToken = createToken<{ n: number }>('round2.other');
const greeterPoint = createContributionPoint<{ greet(name: string): string }>('round2.greeters');

const base = { version: '1.0.0', pluginApi: '^2.0.0', type: 'io.berth.test.v1' } as const;

function storeProvider(id: string, value: string) {
  return definePlugin({
    ...base,
    id,
    provides: storeToken,
    init: (): Store => ({ read: () => value, write: () => undefined }),
  });
}

describe('named multi-providers', () => {
  it('hands token.all as a map by plugin id in composition order, and the first one to a singular requirement', async () => {
    let seen: { all?: ReadonlyMap<string, Store>; one?: Store; reader?: Reader } = {};
    const consumer = definePlugin({
      ...base,
      id: 'consumer',
      requires: { all: storeToken.all, one: storeToken, reader: readerToken },
      init(deps) {
        expectTypeOf(deps.all).toEqualTypeOf<ReadonlyMap<string, Store>>();
        expectTypeOf(deps.reader).toEqualTypeOf<Reader>();
        seen = deps;
        return {};
      },
    });
    const t = await createTestHost({ plugins: [consumer, storeProvider('native', 'n'), storeProvider('overlayfs', 'o')] });
    try {
      expect([...seen.all!.keys()]).toEqual(['native', 'overlayfs']);
      expect(seen.all!.get('overlayfs')!.read()).toBe('o');
      expect(seen.one!.read()).toBe('n');
      // A provider of the store is a provider of its reader role.
      expect(seen.reader!.read()).toBe('n');
      expect([...t.host.all(readerToken).keys()]).toEqual(['native', 'overlayfs']);
      expect(t.host.list().find((p) => p.id === 'consumer')!.requires).toEqual(['io.berth.test.v1']);
    } finally {
      await t.close();
    }
  });

  it('leaves failed and skipped providers out of the map without failing the consumer', async () => {
    let keys: string[] = [];
    const broken = definePlugin({ ...base, id: 'broken', provides: storeToken, init: (): Store => { throw new Error('no disk'); } });
    const consumer = definePlugin({ ...base, id: 'consumer', requires: { all: storeToken.all }, init: ({ all }) => { keys = [...all.keys()]; return {}; } });
    const t = await createTestHost({ plugins: [broken, storeProvider('native', 'n'), consumer] });
    try {
      expect(keys).toEqual(['native']);
      expect(t.host.list().map((p) => [p.id, p.status])).toEqual([['broken', 'error'], ['native', 'ok'], ['consumer', 'ok']]);
    } finally {
      await t.close();
    }
  });

  it('refuses a second provider of one token under the same id, naming both, and keeps the first', async () => {
    const twin = definePlugin({ ...storeProvider('native', 'x'), type: 'io.example.store.v1' });
    const t = await createTestHost({ plugins: [storeProvider('native', 'n'), twin] });
    try {
      const record = t.host.list()[1]!;
      expect(record).toMatchObject({ uri: 'io.example.store.v1.native', status: 'error' });
      expect(record.error!.message).toBe('plugin io.example.store.v1.native: io.berth.test.v1.native already provides "round2.store" under the id "native"');
      expect(t.host.get(storeToken).read()).toBe('n');
    } finally {
      await t.close();
    }
  });
});

describe('several capabilities per plugin', () => {
  it('registers each property of init result under its token, and closes with what init returned', async () => {
    const closed: string[] = [];
    class Both {
      readonly store: Store = { read: () => 'both', write: () => undefined };
      readonly other = { n: 7 };
      close() {
        closed.push('both');
      }
    }
    const both = definePlugin({
      ...base,
      id: 'both',
      provides: { store: storeToken, other: otherToken },
      init: () => new Both(),
      close(instance) {
        expectTypeOf(instance).toEqualTypeOf<Both>();
        instance.close();
      },
    });
    const t = await createTestHost({ plugins: [both] });
    expect(t.host.get(storeToken).read()).toBe('both');
    expect(t.host.get(otherToken).n).toBe(7);
    expect(t.host.get(readerToken).read()).toBe('both');
    expect(t.host.list()[0]!.provides).toEqual(['round2.store', 'round2.other']);
    await t.close();
    expect(closed).toEqual(['both']);
  });

  it('marks a plugin error when init leaves out a value it promised', async () => {
    const liar = definePlugin({
      ...base,
      id: 'liar',
      provides: { store: storeToken, other: otherToken },
      init: () => ({ store: { read: () => '', write: () => undefined }, other: undefined as unknown as { n: number } }),
    });
    const t = await createTestHost({ plugins: [liar] });
    try {
      expect(t.host.list()[0]).toMatchObject({ status: 'error', error: { message: 'plugin io.berth.test.v1.liar: init returned no value for provides.other "round2.other"' } });
    } finally {
      await t.close();
    }
  });
});

describe('contribution points', () => {
  const owner = (seen: string[][]) =>
    definePlugin({
      ...base,
      id: 'owner',
      provides: otherToken,
      requires: { greeters: greeterPoint },
      init({ greeters }) {
        expectTypeOf(greeters).toEqualTypeOf<ReadonlyMap<string, { greet(name: string): string }>>();
        seen.push([...greeters.entries()].map(([id, g]) => `${id}:${g.greet('x')}`));
        return { n: greeters.size };
      },
    });
  const contributor = (id: string, fail = false) =>
    definePlugin({
      ...base,
      id,
      provides: greeterPoint,
      init: () => {
        if (fail) throw new Error('cannot greet');
        return { greet: (name: string) => `${id} greets ${name}` };
      },
    });

  it('initialises contributors before the owner, which sees each by plugin id; introspection shows them', async () => {
    const seen: string[][] = [];
    const t = await createTestHost({ plugins: [owner(seen), contributor('hello'), contributor('hi')] });
    try {
      expect(seen).toEqual([['hello:hello greets x', 'hi:hi greets x']]);
      expect(t.host.list().find((p) => p.id === 'hello')!.contributes).toEqual(['round2.greeters']);
      expect(t.host.list().find((p) => p.id === 'owner')!.requires).toEqual(['io.berth.test.v1']);
      expect([...t.host.all(greeterPoint).keys()]).toEqual(['hello', 'hi']);
    } finally {
      await t.close();
    }
  });

  it('keeps the owner when a contributor fails', async () => {
    const seen: string[][] = [];
    const t = await createTestHost({ plugins: [owner(seen), contributor('broken', true), contributor('hi')] });
    try {
      expect(seen).toEqual([['hi:hi greets x']]);
      expect(t.host.list().map((p) => [p.id, p.status])).toEqual([['owner', 'ok'], ['broken', 'error'], ['hi', 'ok']]);
    } finally {
      await t.close();
    }
  });

  it('reports a contributor that needs its owner as a cycle', async () => {
    const needy = definePlugin({ ...base, id: 'needy', provides: greeterPoint, requires: { other: otherToken }, init: () => ({ greet: () => '' }) });
    const err = await createTestHost({ plugins: [owner([]), needy] }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('plugin dependency cycle: io.berth.test.v1.owner → io.berth.test.v1.needy → io.berth.test.v1.owner');
  });
});

describe('validation and isolation', () => {
  it('runs validators on provided values and marks the plugin error (closing it) when one throws', async () => {
    const closed: string[] = [];
    const good = contributorWith('good', closed);
    const bad = contributorWith('bad', closed);
    const t = await createTestHost({
      plugins: [good, bad],
      validators: [{ target: greeterPoint, validate: (_value, plugin) => { if (plugin.id === 'bad') throw new Error('service io.example.Nope does not exist'); } }],
    });
    try {
      expect(t.host.list().map((p) => [p.id, p.status, p.error?.message])).toEqual([
        ['good', 'ok', undefined],
        ['bad', 'error', 'service io.example.Nope does not exist'],
      ]);
      expect([...t.host.all(greeterPoint).keys()]).toEqual(['good']);
      expect(closed).toEqual(['bad']);
    } finally {
      await t.close();
    }
    expect(closed).toEqual(['bad', 'good']);
  });

  it('marks a plugin whose init never finishes as error and serves the rest', async () => {
    const hung = definePlugin({ ...base, id: 'hung', init: () => new Promise<object>(() => undefined) });
    const fine = storeProvider('fine', 'f');
    const t = await createTestHost({ plugins: [hung, fine], initTimeoutMs: 50 });
    try {
      expect(t.host.list().map((p) => [p.id, p.status, p.error?.message])).toEqual([
        ['hung', 'error', 'init did not finish within 0.05 s'],
        ['fine', 'ok', undefined],
      ]);
    } finally {
      await t.close();
    }
  });

  it('checks kind and id names, and keeps io.containerd / io.berth kinds to the ones berth defines for third parties', async () => {
    const badType = definePlugin({ ...base, type: 'example.hello', id: 'x', init: () => ({}) });
    const badId = definePlugin({ ...base, id: 'Hello World', init: () => ({}) });
    const squatter = definePlugin({ ...base, type: 'io.berth.hello.v1', id: 'squat', init: () => ({}) });
    const snapshotter = definePlugin({ ...base, type: 'io.containerd.snapshotter.v1', id: 'zfs', init: () => ({}) });
    const vendor = definePlugin({ ...base, type: 'io.example.hello.v1', id: 'hello', init: () => ({}) });
    const t = await createTestHost({
      plugins: [badType, badId, squatter, snapshotter, vendor],
      sources: { 'io.berth.hello.v1.squat': './squat', 'io.containerd.snapshotter.v1.zfs': './zfs', 'io.example.hello.v1.hello': './hello' },
    });
    try {
      expect(t.host.list().map((p) => [p.uri, p.status, p.error?.message])).toEqual([
        ['example.hello.x', 'error', 'plugin example.hello.x: type "example.hello" is not a kind name (io.<vendor>.<kind>.v<N>, e.g. io.example.greeter.v1)'],
        ['io.berth.test.v1.Hello World', 'error', 'plugin io.berth.test.v1.Hello World: id "Hello World" must be lower-case words joined by - or _'],
        ['io.berth.hello.v1.squat', 'error', 'plugin io.berth.hello.v1.squat: io.berth.* kinds are reserved to the ones berth defines; a third-party kind is io.<vendor>.<kind>.v<N>'],
        ['io.containerd.snapshotter.v1.zfs', 'ok', undefined],
        ['io.example.hello.v1.hello', 'ok', undefined],
      ]);
    } finally {
      await t.close();
    }
  });
});

describe('the container as the registry', () => {
  it('resolves each plugin dependency from a child container holding its scoped logger and metrics', async () => {
    const lines: string[] = [];
    const log = createLogger({ write: (l) => lines.push(l) });
    const registries: MetricsRegistry[] = [];
    const scoped = (id: string) =>
      definePlugin({
        ...base,
        id,
        requires: { log: coreTokens.logger, metrics: coreTokens.metrics, root: coreTokens.rootLogger },
        init({ log, metrics, root }) {
          expectTypeOf(log).toEqualTypeOf<Logger>();
          log.info('hello');
          root.info('from root');
          registries.push(metrics);
          metrics.counter(`${id}_things_total`, 'Things.').inc();
          return {};
        },
      });
    const t = await createTestHost({ plugins: [scoped('a'), scoped('b')], log });
    try {
      expect(lines.filter((l) => l.includes('msg=hello')).map((l) => /plugin=(\S+)/.exec(l)?.[1])).toEqual(['io.berth.test.v1.a', 'io.berth.test.v1.b']);
      expect(lines.some((l) => l.includes('msg="from root"') && !l.includes('plugin='))).toBe(true);
      expect(registries[0]).not.toBe(registries[1]);
      expect([...t.host.metricsRegistries().keys()]).toEqual(['io.berth.test.v1.a', 'io.berth.test.v1.b']);
      expect(t.host.metricsRegistries().get('io.berth.test.v1.a')!.collect()[0]).toMatchObject({ name: 'a_things_total', samples: [{ value: 1 }] });
    } finally {
      await t.close();
    }
  });

  it('lets typed overrides stand in for a token, before any plugin providing it', async () => {
    const fake: Store = { read: () => 'fake', write: () => undefined };
    let got: Store | undefined;
    const consumer = definePlugin({ ...base, id: 'consumer', requires: { store: storeToken }, init: ({ store }) => { got = store; return {}; } });
    const t = await createTestHost({ plugins: [storeProvider('native', 'n'), consumer], overrides: [override(storeToken, fake)] });
    try {
      expect(got).toBe(fake);
      expect(t.host.get(storeToken)).toBe(fake);
      expect(t.host.container.resolve(storeToken.key)).toBe(fake);
    } finally {
      await t.close();
    }
    // @ts-expect-error the instance must have the token's type
    override(storeToken, { read: () => '' });
  });

  it('registers every provided value in the composition container, the token key answering the first provider', async () => {
    const t = await createTestHost({ plugins: [storeProvider('native', 'n'), storeProvider('overlayfs', 'o')] });
    try {
      expect(t.host.container.resolve<Store>(storeToken.key).read()).toBe('n');
      expect(t.host.container.resolve<Store>(readerToken.key).read()).toBe('n');
    } finally {
      await t.close();
    }
  });
});

function contributorWith(id: string, closed: string[]) {
  return definePlugin({
    ...base,
    id,
    provides: greeterPoint,
    init: () => ({ greet: () => id, close: () => closed.push(id) }),
  });
}
