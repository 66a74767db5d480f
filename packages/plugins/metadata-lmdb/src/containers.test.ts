import { describe, expect, it } from 'vitest';
import {
  isAlreadyExists,
  isFailedPrecondition,
  isInvalidArgument,
  isNotFound,
  OCI_SPEC_TYPE_URL,
  type AnyValue,
  type ContainerInput,
} from '@berth/core';
import { createHarness, ctxOf, useHarness, type Harness } from './testing-fixtures/harness.js';
import { json, TestJsonPolicy } from './testing-fixtures/json-policy.js';
import { keys, type ContainerRecord } from './schema.js';
import type { LmdbContainerStore } from './containers.js';
import { mark } from './gc.js';

const spec = (annotations: Record<string, string> = {}): AnyValue => ({
  typeUrl: OCI_SPEC_TYPE_URL,
  value: Buffer.from(JSON.stringify({ ociVersion: '1.0.2', annotations })),
});
const ext = (text: string): AnyValue => ({ typeUrl: 'test.update.extensions', value: Buffer.from(text) });
const ctx = ctxOf('testing');

const base = (id: string, extra: Partial<ContainerInput> = {}): ContainerInput => ({
  id,
  spec: spec(),
  snapshotKey: 'test-snapshot-key',
  snapshotter: 'snapshotter',
  runtime: { name: 'testruntime' },
  image: 'test image',
  ...extra,
});

async function failure(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: unknown) => e as Error,
  );
}

describe('containers', () => {
  let h: Harness;
  useHarness((created) => (h = created));

  it('creates, gets, lists and deletes per namespace, writing the record GC reads', async () => {
    const before = Date.now();
    const created = await h.store.containers.create(ctx, base('c1', { labels: { a: 'b', empty: '' }, runtime: { name: 'io.containerd.runc.v2', options: { typeUrl: 'containerd.runc.v1.Options', value: new Uint8Array() } } }));
    expect(created).toMatchObject({
      id: 'c1',
      labels: { a: 'b' },
      image: 'test image',
      runtime: { name: 'io.containerd.runc.v2', options: { typeUrl: 'containerd.runc.v1.Options' } },
      snapshotter: 'snapshotter',
      snapshotKey: 'test-snapshot-key',
      extensions: {},
      extensionRevisions: {},
    });
    expect(Buffer.from(created.spec!.value).toString()).toContain('ociVersion');
    expect(created.createdAt.getTime()).toBeGreaterThanOrEqual(before);
    expect(created.updatedAt).toEqual(created.createdAt);
    expect(await h.store.containers.get(ctx, 'c1')).toEqual(created);
    const record = h.store.database.records.get<ContainerRecord>(keys.container('testing', 'c1'));
    expect(record).toMatchObject({ snapshotter: 'snapshotter', snapshotKey: 'test-snapshot-key', labels: { a: 'b' } });

    await expect(h.store.containers.create(ctx, base('c1'))).rejects.toThrow('container "c1": already exists');
    await expect(h.store.containers.create(ctx, base('c1'))).rejects.toSatisfy(isAlreadyExists);
    await h.store.containers.create(ctxOf('other'), base('c1', { image: 'other image' }));
    expect((await h.store.containers.get(ctxOf('other'), 'c1')).image).toBe('other image');
    // A container keeps its namespace alive.
    await expect(h.store.namespaces.delete('other')).rejects.toThrow(/still has containers/);

    await h.store.containers.delete(ctx, 'c1');
    await expect(h.store.containers.get(ctx, 'c1')).rejects.toThrow('container "c1" in namespace "testing": not found');
    await expect(h.store.containers.delete(ctx, 'c1')).rejects.toSatisfy(isNotFound);
    expect(await h.store.containers.list(ctx)).toEqual([]);
    expect(await h.store.containers.list(ctxOf('other'))).toHaveLength(1);
  });

  it('makes a container a GC root for its snapshot and its gc.ref labels, until it is deleted or re-pointed', async () => {
    await h.store.containers.create(ctx, base('c1', { snapshotter: 'overlayfs', snapshotKey: 'c1', labels: { 'containerd.io/gc.ref.snapshot.native': 'extra' } }));
    let marked = mark(h.store.database.records, Date.now());
    expect(marked.has('snapshot', 'testing', 'overlayfs/c1')).toBe(true);
    expect(marked.has('snapshot', 'testing', 'native/extra')).toBe(true);
    await h.store.containers.update(ctx, { id: 'c1', snapshotKey: 'c1-next' }, ['snapshotkey']);
    marked = mark(h.store.database.records, Date.now());
    expect(marked.has('snapshot', 'testing', 'overlayfs/c1')).toBe(false);
    expect(marked.has('snapshot', 'testing', 'overlayfs/c1-next')).toBe(true);
    const dirty = h.store.dirty;
    await h.store.containers.delete(ctx, 'c1');
    expect(h.store.dirty).toBe(dirty + 1);
    expect(mark(h.store.database.records, Date.now()).has('snapshot', 'testing', 'overlayfs/c1-next')).toBe(false);
  });

  it('refuses what containerd 1.6 refuses on create, naming the cause, and stores nothing', async () => {
    const bad: Array<[ContainerInput, string]> = [
      [base(''), 'create container failed validation: container.ID: identifier must not be empty'],
      [base('bad id'), 'container.ID: identifier "bad id" must match'],
      [base('x'.repeat(77)), 'greater than maximum length'],
      [base('c', { runtime: { name: '' } }), 'container.Runtime.Name must be set'],
      [base('c', { runtime: undefined }), 'container.Runtime.Name must be set'],
      [base('c', { spec: undefined }), 'container.Spec must be set'],
      [base('c', { snapshotter: '', snapshotKey: '/nosnapshot' }), 'container.Snapshotter must be set if container.SnapshotKey is set'],
      [base('c', { extensions: { '': ext('x') } }), 'container.Extension keys must not be zero-length'],
      [base('c', { labels: { 'big-label-key': 'v'.repeat(4090) } }), 'containers.Labels: label key and value greater than maximum size (4096 bytes), key: big-label-'],
      [base('c', { labels: { '': 'v' } }), 'label key required'],
    ];
    for (const [input, message] of bad) {
      const err = await failure(h.store.containers.create(ctx, input));
      expect(isInvalidArgument(err), `${message}: ${String(err)}`).toBe(true);
      expect(err.message).toContain(message);
    }
    // 4096 bytes of key and value together is still fine.
    await h.store.containers.create(ctx, base('edge', { labels: { k: 'v'.repeat(4095) } }));
    await expect(h.store.containers.create(ctxOf(''), base('c'))).rejects.toSatisfy(isInvalidArgument);
    expect((await h.store.containers.list(ctx)).map((c) => c.id)).toEqual(['edge']);
  });

  it('lists with containerd filters: OR of filters, AND within one (containerd TestContainersList)', async () => {
    for (let i = 0; i < 4; i++) {
      const id = `container-${i}`;
      await h.store.containers.create(ctx, base(id, { labels: { idlabel: id, even: String(i % 2 === 0), odd: String(i % 2 !== 0) } }));
    }
    await h.store.containers.create(ctx, base('other', { runtime: { name: 'io.containerd.runc.v2' }, image: '', snapshotter: 'native', snapshotKey: 'k2' }));
    const ids = async (...filters: string[]) => (await h.store.containers.list(ctx, filters)).map((c) => c.id);
    const four = ['container-0', 'container-1', 'container-2', 'container-3'];
    expect(await ids()).toEqual([...four, 'other']);
    expect(await ids('labels.even==true', 'labels.odd==true')).toEqual(four);
    expect(await ids('labels.even==true')).toEqual(['container-0', 'container-2']);
    expect(await ids('labels.odd==true')).toEqual(['container-1', 'container-3']);
    expect(await ids('id==container-0')).toEqual(['container-0']);
    expect(await ids('id==nope')).toEqual([]);
    expect(await ids('labels.idlabel==container-0,labels.even==true')).toEqual(['container-0']);
    expect(await ids('labels.idlabel==container-0,labels.even==false')).toEqual([]);
    expect(await ids('runtime.name==testruntime')).toEqual(four);
    expect(await ids('image=="test image"')).toEqual(four);
    expect(await ids('image=="test"')).toEqual([]);
    expect(await ids('image~=^test')).toEqual(four);
    expect(await ids('image')).toEqual(four);
    expect(await ids('snapshotter==native')).toEqual(['other']);
    expect(await ids('snapshotkey==k2')).toEqual(['other']);
    expect(await ids('labels."idlabel"==container-3')).toEqual(['container-3']);
    await expect(h.store.containers.list(ctx, ['id=='])).rejects.toSatisfy(isInvalidArgument);
  });

  describe('update (containerd TestContainersCreateUpdateDelete)', () => {
    const original = (id: string, extra: Partial<ContainerInput> = {}) => base(id, extra);

    it('refuses id, runtime and snapshotter paths, and immutable fields without paths', async () => {
      await h.store.containers.create(ctx, original('c'));
      // "UpdateIDFail": the id names another container.
      await expect(h.store.containers.update(ctx, { id: 'newid', spec: spec(), runtime: { name: 'testruntime' } }, ['id'])).rejects.toSatisfy(isNotFound);
      for (const [input, paths, message] of [
        [{ id: 'c', spec: spec(), runtime: { name: 'testruntimedifferent' } }, ['runtime'], 'cannot update "runtime" field on "c"'],
        [{ id: 'c', spec: spec() }, ['runtime'], 'cannot update "runtime" field on "c"'],
        [{ id: 'c', snapshotKey: 'something', snapshotter: 'something' }, ['snapshotkey', 'snapshotter'], 'cannot update "snapshotter" field on "c"'],
        [{ id: 'c', spec: spec(), runtime: { name: 'other' }, snapshotter: 'snapshotter' }, [], 'container.Runtime.Name field is immutable'],
        [{ id: 'c', spec: spec(), runtime: { name: 'testruntime' }, snapshotter: 'other' }, [], 'container.Snapshotter field is immutable'],
        [{ id: 'c' }, ['spec'], 'update failed validation: container.Spec must be set'],
        [{ id: 'c', labels: { k: 'v'.repeat(5000) } }, ['labels.k'], 'containers.Labels: label key and value greater than maximum size'],
        [{ id: 'c' }, ['labels.a', 'created_at'], 'cannot update "created_at" field on "c"'],
      ] as Array<[ContainerInput, string[], string]>) {
        const err = await failure(h.store.containers.update(ctx, input, paths));
        expect(isInvalidArgument(err), `${message}: ${String(err)}`).toBe(true);
        expect(err.message).toContain(message);
      }
      await expect(h.store.containers.update(ctx, { id: '' })).rejects.toThrow('must specify a container id');
      await expect(h.store.containers.update(ctx, { id: 'missing', spec: spec() }, ['spec'])).rejects.toThrow('container "missing": not found');
      const kept = await h.store.containers.get(ctx, 'c');
      expect(kept).toMatchObject({ runtime: { name: 'testruntime' }, snapshotter: 'snapshotter', snapshotKey: 'test-snapshot-key', labels: {} });
      expect(kept.updatedAt).toEqual(kept.createdAt);
    });

    it('updates spec, snapshot key, image and labels by field path, keeping createdAt', async () => {
      const created = await h.store.containers.create(ctx, original('c', { labels: { foo: 'one', bar: 'two' } }));
      await new Promise((r) => setTimeout(r, 2));
      const s = await h.store.containers.update(ctx, { id: 'c', spec: spec({ updated: 'true' }) }, ['spec']);
      expect(JSON.parse(Buffer.from(s.spec!.value).toString()).annotations).toEqual({ updated: 'true' });
      expect(s).toMatchObject({ image: 'test image', snapshotKey: 'test-snapshot-key', labels: { foo: 'one', bar: 'two' } });
      expect(s.createdAt).toEqual(created.createdAt);
      expect(s.updatedAt.getTime()).toBeGreaterThan(created.createdAt.getTime());
      expect((await h.store.containers.update(ctx, { id: 'c', snapshotKey: 'test2-snapshot-key' }, ['snapshotkey'])).snapshotKey).toBe('test2-snapshot-key');
      expect((await h.store.containers.update(ctx, { id: 'c', image: 'test2 image' }, ['image'])).image).toBe('test2 image');
      expect((await h.store.containers.update(ctx, { id: 'c', labels: { bar: 'baz' } }, ['labels.bar'])).labels).toEqual({ foo: 'one', bar: 'baz' });
      expect((await h.store.containers.update(ctx, { id: 'c', labels: { bar: '' } }, ['labels.bar'])).labels).toEqual({ foo: 'one' });
      expect((await h.store.containers.update(ctx, { id: 'c', labels: { x: 'y' } }, ['labels.absent'])).labels).toEqual({ foo: 'one' });
      expect((await h.store.containers.update(ctx, { id: 'c' }, ['labels'])).labels).toEqual({});
      const got = await h.store.containers.get(ctx, 'c');
      expect(got).toMatchObject({ image: 'test2 image', snapshotKey: 'test2-snapshot-key', runtime: { name: 'testruntime' }, snapshotter: 'snapshotter' });
    });

    it('updates extensions whole, by name, and not when the paths leave them out; revisions count changes', async () => {
      const noSnap = { snapshotter: '', snapshotKey: '', image: '' };
      await h.store.containers.create(ctx, original('c', { ...noSnap, extensions: { hello: ext('hello') } }));
      expect((await h.store.containers.get(ctx, 'c')).extensionRevisions).toEqual({ hello: 1 });
      // "UpdateExtensionsNotInFieldpath"
      let c = await h.store.containers.update(ctx, { id: 'c', spec: spec(), runtime: { name: 'testruntime' }, extensions: { hello: ext('world') } }, ['labels']);
      expect(Buffer.from(c.extensions.hello!.value).toString()).toBe('hello');
      expect(c.extensionRevisions).toEqual({ hello: 1 });
      // "UpdateExtensionsFull": no paths, same snapshotter and runtime.
      c = await h.store.containers.update(ctx, { id: 'c', spec: spec(), runtime: { name: 'testruntime' }, extensions: { hello: ext('world') } });
      expect(Buffer.from(c.extensions.hello!.value).toString()).toBe('world');
      expect(c.extensionRevisions).toEqual({ hello: 2 });
      // The same value again is no change.
      c = await h.store.containers.update(ctx, { id: 'c', spec: spec(), runtime: { name: 'testruntime' }, extensions: { hello: ext('world') } });
      expect(c.extensionRevisions).toEqual({ hello: 2 });
      // "UpdateExtensionsFieldPathIsolated"
      c = await h.store.containers.update(ctx, { id: 'c', extensions: { hello: ext('universe'), bar: ext('foo') } }, ['extensions.bar']);
      expect(Object.fromEntries(Object.entries(c.extensions).map(([k, v]) => [k, Buffer.from(v.value).toString()]))).toEqual({ hello: 'world', bar: 'foo' });
      expect(c.extensionRevisions).toEqual({ hello: 2, bar: 1 });
      // "UpdateExtensionsFieldPath": replaced whole (berth: an extension left out goes).
      c = await h.store.containers.update(ctx, { id: 'c', labels: { foo: 'one' }, extensions: { hello: ext('again') } }, ['extensions']);
      expect(Object.keys(c.extensions)).toEqual(['hello']);
      expect(c.labels).toEqual({});
      expect(c.extensionRevisions).toEqual({ hello: 3 });
      // extensions.<name> absent from the input removes it; setting it again continues its count.
      c = await h.store.containers.update(ctx, { id: 'c' }, ['extensions.hello']);
      expect(c.extensions).toEqual({});
      expect(c.extensionRevisions).toEqual({});
      c = await h.store.containers.update(ctx, { id: 'c', extensions: { hello: ext('back') } }, ['extensions.hello']);
      expect(c.extensionRevisions).toEqual({ hello: 4 });
      await expect(h.store.containers.update(ctx, { id: 'c', extensions: { '': ext('x') } }, ['extensions'])).rejects.toThrow('container.Extension keys must not be zero-length');
    });
  });

  describe('extensions', () => {
    it('gets, puts, modifies and deletes one extension with compare-and-set revisions', async () => {
      const x = h.store.containers;
      await x.create(ctx, base('c'));
      await expect(x.getExtension(ctx, 'c', 'acme.io/a')).rejects.toThrow('extension "acme.io/a" of container "c": not found');
      await expect(x.getExtension(ctx, 'nope', 'acme.io/a')).rejects.toSatisfy(isNotFound);
      await expect(x.putExtension(ctx, 'nope', 'acme.io/a', ext('1'))).rejects.toSatisfy(isNotFound);

      expect(await x.putExtension(ctx, 'c', 'acme.io/a', ext('1'), { expectedRevision: 0 })).toMatchObject({ revision: 1 });
      const stale = await failure(x.putExtension(ctx, 'c', 'acme.io/a', ext('2'), { expectedRevision: 0 }));
      expect(isFailedPrecondition(stale)).toBe(true);
      expect(stale.message).toBe('extension "acme.io/a" of container "c" is at revision 1, not 0');
      expect(await x.putExtension(ctx, 'c', 'acme.io/a', ext('2'), { expectedRevision: 1 })).toMatchObject({ revision: 2 });
      expect(await x.putExtension(ctx, 'c', 'acme.io/a', ext('3'))).toMatchObject({ revision: 3 });
      // Writing the value it holds changes nothing.
      expect(await x.putExtension(ctx, 'c', 'acme.io/a', ext('3'))).toMatchObject({ revision: 3 });
      const got = await x.getExtension(ctx, 'c', 'acme.io/a');
      expect(got.revision).toBe(3);
      expect(Buffer.from(got.value.value).toString()).toBe('3');

      const modified = await x.modifyExtension(ctx, 'c', 'acme.io/a', (current) => ext(`${Buffer.from(current!.value.value).toString()}+1`), { expectedRevision: 3 });
      expect(modified?.revision).toBe(4);
      expect(Buffer.from(modified!.value.value).toString()).toBe('3+1');
      await expect(x.modifyExtension(ctx, 'c', 'acme.io/a', () => ext('z'), { expectedRevision: 3 })).rejects.toThrow('is at revision 4, not 3');
      // A change function that throws writes nothing.
      await expect(x.modifyExtension(ctx, 'c', 'acme.io/a', () => { throw new Error('boom'); })).rejects.toThrow('boom');
      expect((await x.getExtension(ctx, 'c', 'acme.io/a')).revision).toBe(4);
      // Returning undefined deletes.
      expect(await x.modifyExtension(ctx, 'c', 'acme.io/a', () => undefined)).toBeUndefined();
      await expect(x.getExtension(ctx, 'c', 'acme.io/a')).rejects.toSatisfy(isNotFound);
      expect(await x.putExtension(ctx, 'c', 'acme.io/a', ext('again'), { expectedRevision: 0 })).toMatchObject({ revision: 5 });

      await expect(x.deleteExtension(ctx, 'c', 'acme.io/a', { expectedRevision: 4 })).rejects.toSatisfy(isFailedPrecondition);
      await x.deleteExtension(ctx, 'c', 'acme.io/a', { expectedRevision: 5 });
      await expect(x.deleteExtension(ctx, 'c', 'acme.io/a')).rejects.toSatisfy(isNotFound);
      await expect(x.putExtension(ctx, 'c', '', ext('x'))).rejects.toSatisfy(isInvalidArgument);
      expect((await x.get(ctx, 'c')).extensions).toEqual({});
    });

    it('lets exactly one of many concurrent writes with the same expected revision win', async () => {
      const x = h.store.containers;
      await x.create(ctx, base('c', { extensions: { n: ext('0') } }));
      const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => x.putExtension(ctx, 'c', 'n', ext(`w${i}`), { expectedRevision: 1 })));
      const won = results.filter((r) => r.status === 'fulfilled');
      expect(won).toHaveLength(1);
      expect(results.filter((r) => r.status === 'rejected').every((r) => isFailedPrecondition((r as PromiseRejectedResult).reason))).toBe(true);
      const now = await x.getExtension(ctx, 'c', 'n');
      expect(now.revision).toBe(2);
      expect(Buffer.from(now.value.value)).toEqual(Buffer.from((won[0] as PromiseFulfilledResult<{ value: AnyValue }>).value.value.value));
    });

    it('scans one extension name across namespaces', async () => {
      await h.store.containers.create(ctxOf('a'), base('c1', { extensions: { e: ext('a1'), f: ext('no') } }));
      await h.store.containers.create(ctxOf('b'), base('c2', { extensions: { e: ext('b2') } }));
      await h.store.containers.create(ctxOf('b'), base('c3'));
      const seen: string[] = [];
      for await (const { namespace, id, value } of h.store.containers.scanExtension('e')) seen.push(`${namespace}/${id}=${Buffer.from(value.value).toString()}`);
      expect(seen).toEqual(['a/c1=a1', 'b/c2=b2']);
    });
  });
});

describe('containers with extension policies', () => {
  const TYPE = 'acme.io/ownership';
  let h: Harness | undefined;
  let policy: TestJsonPolicy;
  const store = () => h!.store.containers;
  const internals = (): LmdbContainerStore => h!.store.containerInternals;
  const ids = async (...filters: string[]) => (await store().list(ctx, filters)).map((c) => c.id);

  async function open(indexed: Record<string, string[]> = { [TYPE]: ['team', 'tier', 'owner.name'] }): Promise<void> {
    policy = new TestJsonPolicy(indexed);
    h = await createHarness({ extensionPolicies: [policy] });
  }

  const cleanup = async () => {
    await h?.cleanup();
    h = undefined;
  };

  it('validates every extension written, inside the write, and stores nothing refused', async () => {
    await open();
    try {
      const err = await failure(store().create(ctx, base('c', { extensions: { [TYPE]: json(TYPE, { invalid: true }) } })));
      expect(isInvalidArgument(err)).toBe(true);
      expect(err.message).toContain('/invalid');
      await expect(store().get(ctx, 'c')).rejects.toSatisfy(isNotFound);
      await store().create(ctx, base('c', { extensions: { [TYPE]: json(TYPE, { team: 'a' }) } }));
      expect(policy.validated).toEqual([
        { namespace: 'testing', id: 'c', name: TYPE },
        { namespace: 'testing', id: 'c', name: TYPE },
      ]);
      await expect(store().putExtension(ctx, 'c', TYPE, json(TYPE, { invalid: true }))).rejects.toSatisfy(isInvalidArgument);
      await expect(store().update(ctx, { id: 'c', extensions: { [TYPE]: json(TYPE, { invalid: true }) } }, ['extensions'])).rejects.toSatisfy(isInvalidArgument);
      const kept = await store().getExtension(ctx, 'c', TYPE);
      expect(kept.revision).toBe(1);
      expect(await ids(`extensions."${TYPE}".team==a`)).toEqual(['c']);
      // Unchanged extensions are not validated again (labels-only writes of old values keep working).
      policy.validated.length = 0;
      await store().update(ctx, { id: 'c', labels: { k: 'v' } }, ['labels.k']);
      expect(policy.validated).toEqual([]);
    } finally {
      await cleanup();
    }
  });

  it('answers extensions conditions from the index: ==, !=, ~=, presence, AND and OR', async () => {
    await open();
    try {
      const teams = ['payments', 'search', 'payments', 'infra', 'search'];
      for (const [i, team] of teams.entries()) {
        await store().create(ctx, base(`c${i}`, { labels: { n: String(i) }, extensions: { [TYPE]: json(TYPE, { team, tier: i % 2 === 0 ? 'gold' : 'silver', owner: { name: `o${i}` } }) } }));
      }
      await store().create(ctx, base('plain'));
      await store().create(ctx, base('other-ext', { extensions: { 'acme.io/else': json('acme.io/else', { team: 'payments' }) } }));
      const q = `extensions."${TYPE}"`;
      expect(await ids(`${q}.team==payments`)).toEqual(['c0', 'c2']);
      expect(await ids(`ext."${TYPE}".team==payments`)).toEqual(['c0', 'c2']);
      expect(await ids(`${q}.team=="payments"`)).toEqual(['c0', 'c2']);
      expect(await ids(`${q}.team==payments,${q}.tier==gold`)).toEqual(['c0', 'c2']);
      expect(await ids(`${q}.team==search,${q}.tier==gold`)).toEqual(['c4']);
      expect(await ids(`${q}.team==payments,labels.n==2`)).toEqual(['c2']);
      expect(await ids(`${q}.team==infra`, `${q}.team==search`)).toEqual(['c1', 'c3', 'c4']);
      expect(await ids(`${q}.team~=^pay`)).toEqual(['c0', 'c2']);
      expect(await ids(`${q}.team!=payments`)).toEqual(['c1', 'c3', 'c4', 'other-ext', 'plain']);
      expect(await ids(`${q}.team!=payments,${q}`)).toEqual(['c1', 'c3', 'c4']);
      expect(await ids(`${q}.owner.name==o3`)).toEqual(['c3']);
      expect(await ids(`${q}.team`)).toEqual(['c0', 'c1', 'c2', 'c3', 'c4']);
      expect(await ids(q)).toEqual(['c0', 'c1', 'c2', 'c3', 'c4']);
      expect(await ids(`${q}.team==nobody`)).toEqual([]);
      expect(await ids(`${q}.team==payments`, 'id==plain')).toEqual(['c0', 'c2', 'plain']);

      const notIndexed = await failure(store().list(ctx, [`${q}.region==eu`]));
      expect(isInvalidArgument(notIndexed)).toBe(true);
      expect(notIndexed.message).toBe(`filters: path "region" of extension "${TYPE}" is not indexed (indexed: owner.name, team, tier)`);
      await expect(store().list(ctx, ['extensions."acme.io/else".team==payments'])).rejects.toThrow('path "team" of extension "acme.io/else" is not indexed');
      await expect(store().list(ctx, [`${q}==x`])).rejects.toSatisfy(isInvalidArgument);
      await expect(store().list(ctx, ['extensions'])).rejects.toSatisfy(isInvalidArgument);

      // Writes move the terms: a changed team, a deleted extension, a deleted container.
      await store().putExtension(ctx, 'c0', TYPE, json(TYPE, { team: 'infra' }));
      await store().deleteExtension(ctx, 'c2', TYPE);
      await store().delete(ctx, 'c3');
      expect(await ids(`${q}.team==payments`)).toEqual([]);
      expect(await ids(`${q}.team==infra`)).toEqual(['c0']);
      expect(await ids(`${q}.tier==gold`)).toEqual(['c4']);
      await store().update(ctx, { id: 'c1', extensions: {} }, ['extensions']);
      expect(await ids(q)).toEqual(['c0', 'c4']);
      // Nothing of a deleted container stays in the index.
      const left = [...h!.store.database.records.scanKeys(['v1', 'testing', 'ext-terms'])].filter((k) => k.includes('c3') || k.includes('c2'));
      expect(left).toEqual([]);
    } finally {
      await cleanup();
    }
  });

  it('reads only the matching containers for an indexed == query, however many others there are', async () => {
    await open();
    try {
      const counts: Array<{ total: number; records: number; keys: number }> = [];
      let created = 0;
      for (const total of [50, 500]) {
        for (; created < total; created++) {
          // Ten containers of team "payments" in all; every other one is some other team.
          const team = created < 10 ? 'payments' : `team-${created}`;
          await store().create(ctx, base(`c${String(created).padStart(4, '0')}`, { extensions: { [TYPE]: json(TYPE, { team }) } }));
        }
        internals().stats.recordsRead = 0;
        internals().stats.indexKeysRead = 0;
        const found = await ids(`extensions."${TYPE}".team==payments`);
        expect(found).toHaveLength(10);
        counts.push({ total, records: internals().stats.recordsRead, keys: internals().stats.indexKeysRead });
      }
      expect(counts[0]).toEqual({ total: 50, records: 10, keys: 10 });
      expect(counts[1]).toEqual({ total: 500, records: 10, keys: 10 });
      // A query the index cannot answer does read them all (the counter can tell the difference).
      internals().stats.recordsRead = 0;
      expect(await ids('labels.none==x')).toEqual([]);
      expect(internals().stats.recordsRead).toBe(500);
    } finally {
      await cleanup();
    }
  }, 60_000);

  it('lists in slices that let the event loop run, by full walk and by index range alike', async () => {
    await open();
    try {
      // More containers than one LMDB batch, and filters whose every match is costly, so each list spans many turns.
      const ids300 = Array.from({ length: 300 }, (_, i) => `c${String(i).padStart(4, '0')}`);
      await Promise.all(ids300.map((id) => store().create(ctx, base(id, { labels: { a: 'a'.repeat(200) + '!' }, extensions: { [TYPE]: json(TYPE, { team: 'a'.repeat(200) + '!' }) } }))));
      for (const costly of ['labels.a~="(?:a?){150}a{150}$"', `extensions."${TYPE}".team~="(?:a?){150}a{150}$"`]) {
        let worst = 0;
        let last = performance.now();
        const ticker = setInterval(() => {
          const now = performance.now();
          worst = Math.max(worst, now - last);
          last = now;
        }, 1);
        try {
          const listing = store().list(ctx, [costly]);
          let lateCommitted = false;
          const late = store().create(ctx, base(`late-${costly.length}`)).then(() => (lateCommitted = true));
          expect(await listing).toEqual([]);
          // The walk of every record took turns: a write committed while it ran (the index range is too quick to tell).
          if (costly.startsWith('labels')) expect(lateCommitted, costly).toBe(true);
          await late;
        } finally {
          clearInterval(ticker);
        }
        // Stall detection only (the machine may be busy): never blocked for a whole second.
        expect(worst, costly).toBeLessThan(1000);
      }
      expect(await ids(`extensions."${TYPE}".team~="!$"`)).toEqual(ids300);
    } finally {
      await cleanup();
    }
  }, 120_000);

  it('indexes long and NUL-holding values by hash and still answers them exactly', async () => {
    await open();
    try {
      const long = 'x'.repeat(3000);
      await store().create(ctx, base('long', { extensions: { [TYPE]: json(TYPE, { team: long }) } }));
      await store().create(ctx, base('long2', { extensions: { [TYPE]: json(TYPE, { team: `${long}y` }) } }));
      await store().create(ctx, base('nul', { extensions: { [TYPE]: json(TYPE, { team: 'a\0b' }) } }));
      expect(await ids(`extensions."${TYPE}".team==${long}`)).toEqual(['long']);
      expect(await ids(`extensions."${TYPE}".team~=y$`)).toEqual(['long2']);
      expect(await ids(`extensions."${TYPE}".team~=^a`)).toEqual(['nul']);
    } finally {
      await cleanup();
    }
  });

  it('re-indexes the stored values of a name when its indexed paths change', async () => {
    await open({ [TYPE]: ['team'] });
    try {
      for (let i = 0; i < 150; i++) await store().create(ctx, base(`c${i}`, { extensions: { [TYPE]: json(TYPE, { team: 't', region: i % 3 === 0 ? 'eu' : 'us' }) } }));
      await expect(store().list(ctx, [`extensions."${TYPE}".region==eu`])).rejects.toSatisfy(isInvalidArgument);
      policy.setIndexed(TYPE, ['region']);
      await internals().whenIndexed();
      expect(await ids(`extensions."${TYPE}".region==eu`)).toHaveLength(50);
      // The terms of the path no longer indexed are gone.
      expect([...h!.store.database.records.scanKeys(keys.extensionTerms('testing', TYPE, 'team'))]).toEqual([]);
    } finally {
      await cleanup();
    }
  });

  it('keeps revisions and the index across a reopen', async () => {
    await open();
    try {
      await store().create(ctx, base('c', { extensions: { [TYPE]: json(TYPE, { team: 'a' }) } }));
      await store().putExtension(ctx, 'c', TYPE, json(TYPE, { team: 'b' }));
      await h!.reopen({ extensionPolicies: [policy] });
      expect((await store().getExtension(ctx, 'c', TYPE)).revision).toBe(2);
      expect(await ids(`extensions."${TYPE}".team==b`)).toEqual(['c']);
    } finally {
      await cleanup();
    }
  });
});
