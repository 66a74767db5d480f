import { describe, expect, it } from 'vitest';
import { isAlreadyExists, isInvalidArgument, isNotFound, type Descriptor } from '@berth/core';
import { useHarness, ctxOf, putBlob, sha256, type Harness } from './testing-fixtures/harness.js';
import { keys, type ImageRecord } from './schema.js';

const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const INDEX = 'application/vnd.oci.image.index.v1+json';
const target = (text: string, mediaType = MANIFEST): Descriptor => ({ mediaType, digest: sha256(Buffer.from(text)), size: Buffer.byteLength(text) });

describe('images', () => {
  let h: Harness;
  const ctx = ctxOf('default');

  useHarness((created) => (h = created));

  it('creates, gets, lists and deletes images per namespace, writing the record GC reads', async () => {
    const before = Date.now();
    const created = await h.store.images.create(ctx, {
      name: '127.0.0.1:5000/test/busybox:latest',
      target: { ...target('m1'), annotations: { 'org.opencontainers.image.ref.name': '', keep: 'yes' } },
      labels: { team: 'a', empty: '' },
    });
    expect(created.name).toBe('127.0.0.1:5000/test/busybox:latest');
    expect(created.labels).toEqual({ team: 'a' });
    expect(created.target).toEqual({ ...target('m1'), annotations: { keep: 'yes' } });
    expect(created.createdAt.getTime()).toBeGreaterThanOrEqual(before);
    expect(created.updatedAt).toEqual(created.createdAt);
    expect(await h.store.images.get(ctx, created.name)).toEqual(created);

    const record = h.store.database.records.get<ImageRecord>(keys.image('default', created.name));
    expect(record).toEqual({
      target: { digest: target('m1').digest, mediaType: MANIFEST, size: 2, annotations: { keep: 'yes' } },
      labels: { team: 'a' },
      createdAt: created.createdAt.getTime(),
      updatedAt: created.createdAt.getTime(),
    });

    await expect(h.store.images.create(ctx, { name: created.name, target: target('m2') })).rejects.toThrow(
      'image "127.0.0.1:5000/test/busybox:latest": already exists',
    );
    await expect(h.store.images.create(ctx, { name: created.name, target: target('m2') })).rejects.toSatisfy(isAlreadyExists);
    // Names are per namespace.
    await h.store.images.create(ctxOf('other'), { name: created.name, target: target('m2') });
    expect((await h.store.images.get(ctxOf('other'), created.name)).target.digest).toBe(target('m2').digest);
    expect((await h.store.namespaces.list()).sort()).toEqual(['default', 'other']);

    await h.store.images.delete(ctx, created.name);
    await expect(h.store.images.get(ctx, created.name)).rejects.toThrow('image "127.0.0.1:5000/test/busybox:latest": not found');
    await expect(h.store.images.delete(ctx, created.name)).rejects.toSatisfy(isNotFound);
    await expect(h.store.images.get(ctx, '')).rejects.toSatisfy(isNotFound);
    expect(await h.store.images.list(ctx)).toEqual([]);
    expect(await h.store.images.list(ctxOf('other'))).toHaveLength(1);
  });

  it('refuses bad names, targets, labels and namespaces with InvalidArgument, storing nothing', async () => {
    const bad: Array<[Parameters<typeof h.store.images.create>[1], string]> = [
      [{ name: '', target: target('x') }, 'image name must not be empty'],
      [{ name: 'a\0b', target: target('x') }, 'image name must not contain NUL characters'],
      [{ name: 'x'.repeat(2000), target: target('x') }, 'image name longer than 1024 bytes'],
      [{ name: 'x', target: { ...target('x'), digest: '' } }, 'Target.Digest "" invalid: invalid checksum digest format'],
      [{ name: 'x', target: { ...target('x'), digest: 'sha256:abc' } }, 'Target.Digest "sha256:abc" invalid: invalid checksum digest length'],
      [{ name: 'x', target: { ...target('x'), size: 0 } }, 'Target.Size must be greater than zero'],
      [{ name: 'x', target: { ...target('x'), size: -1 } }, 'Target.Size must be greater than zero'],
      [{ name: 'x', target: { ...target('x'), mediaType: '' } }, 'Target.MediaType must be set'],
      [{ name: 'x', target: target('x'), labels: { k: 'v'.repeat(5000) } }, 'image.Labels:'],
      [{ name: 'x', target: undefined as unknown as Descriptor }, 'Target.Digest "" invalid'],
    ];
    for (const [input, message] of bad) {
      const err = await h.store.images.create(ctx, input).then(() => undefined, (e: unknown) => e);
      expect(isInvalidArgument(err), `${message}: ${String(err)}`).toBe(true);
      expect((err as Error).message).toContain(message);
    }
    await expect(h.store.images.create(ctxOf(''), { name: 'x', target: target('x') })).rejects.toSatisfy(isInvalidArgument);
    await expect(h.store.images.create(ctxOf('bad ns'), { name: 'x', target: target('x') })).rejects.toSatisfy(isInvalidArgument);
    expect(await h.store.images.list(ctx)).toEqual([]);
    expect(await h.store.namespaces.list()).toEqual([]);
  });

  it('filters by name, target digest and media type, labels and annotations', async () => {
    await h.store.images.create(ctx, { name: 'docker.io/library/a:1', target: target('a', INDEX), labels: { team: 'x' } });
    await h.store.images.create(ctx, { name: 'docker.io/library/b:1', target: { ...target('b'), annotations: { k: 'v' } }, labels: { team: 'y' } });
    await h.store.images.create(ctx, { name: 'example.com/c:2', target: target('c') });
    const names = async (filters: string[]) => (await h.store.images.list(ctx, filters)).map((i) => i.name).sort();
    expect(await names([])).toEqual(['docker.io/library/a:1', 'docker.io/library/b:1', 'example.com/c:2']);
    expect(await names(['name==example.com/c:2'])).toEqual(['example.com/c:2']);
    expect(await names(['name~=docker.io'])).toEqual(['docker.io/library/a:1', 'docker.io/library/b:1']);
    expect(await names([`target.digest==${target('b').digest}`])).toEqual(['docker.io/library/b:1']);
    expect(await names([`target.mediatype==${INDEX}`])).toEqual(['docker.io/library/a:1']);
    expect(await names(['labels.team'])).toEqual(['docker.io/library/a:1', 'docker.io/library/b:1']);
    expect(await names(['labels.team==y', 'name==example.com/c:2'])).toEqual(['docker.io/library/b:1', 'example.com/c:2']);
    expect(await names(['annotations.k==v'])).toEqual(['docker.io/library/b:1']);
    expect(await names(['target.size==1'])).toEqual([]);
    await expect(h.store.images.list(ctx, ['name=='])).rejects.toSatisfy(isInvalidArgument);
  });

  it('updates by containerd field paths, keeping createdAt and refreshing updatedAt', async () => {
    const name = 'example.com/app:1';
    const created = await h.store.images.create(ctx, {
      name,
      target: { ...target('t1'), annotations: { a: '1', b: '2' } },
      labels: { keep: 'k', drop: 'd' },
    });
    await new Promise((r) => setTimeout(r, 5));

    // labels.<k>: set one, remove one (absent from the incoming labels), leave the rest and the target alone.
    let updated = await h.store.images.update(ctx, { name, target: target('ignored'), labels: { added: 'n' } }, ['labels.added', 'labels.drop']);
    expect(updated.labels).toEqual({ keep: 'k', added: 'n' });
    expect(updated.target).toEqual(created.target);
    expect(updated.createdAt).toEqual(created.createdAt);
    expect(updated.updatedAt.getTime()).toBeGreaterThan(created.updatedAt.getTime());
    expect(await h.store.images.get(ctx, name)).toEqual(updated);

    // annotations.<k> and annotations act on the target's annotations only.
    updated = await h.store.images.update(ctx, { name, target: { ...target('ignored'), annotations: { a: '', c: '3' } } }, ['annotations.a', 'annotations.c']);
    expect(updated.target).toEqual({ ...target('t1'), annotations: { b: '2', c: '3' } });
    updated = await h.store.images.update(ctx, { name, target: { ...target('ignored'), annotations: { z: '9' } } }, ['annotations']);
    expect(updated.target).toEqual({ ...target('t1'), annotations: { z: '9' } });

    // target replaces the descriptor whole; labels replaces all labels.
    updated = await h.store.images.update(ctx, { name, target: target('t2', INDEX), labels: { only: 'o' } }, ['target', 'labels']);
    expect(updated.target).toEqual(target('t2', INDEX));
    expect(updated.labels).toEqual({ only: 'o' });

    // No paths: labels and target replaced.
    updated = await h.store.images.update(ctx, { name, target: target('t3') });
    expect(updated.labels).toEqual({});
    expect(updated.target).toEqual(target('t3'));
    expect(updated.createdAt).toEqual(created.createdAt);
  });

  it('refuses bad updates with clear errors and changes nothing', async () => {
    const name = 'example.com/app:1';
    const created = await h.store.images.create(ctx, { name, target: target('t1'), labels: { a: '1' } });
    const refused = async (...args: Parameters<typeof h.store.images.update>): Promise<Error> => {
      const err = await h.store.images.update(...args).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      return err as Error;
    };
    let err = await refused(ctx, { name, target: target('t1') }, ['name']);
    expect(isInvalidArgument(err)).toBe(true);
    expect(err.message).toBe('cannot update "name" field on image "example.com/app:1"');
    err = await refused(ctx, { name, target: target('t1') }, ['labels.a', 'createdat']);
    expect(isInvalidArgument(err)).toBe(true);
    err = await refused(ctx, { name: '', target: target('t1') });
    expect(err.message).toBe('image name is required for update');
    err = await refused(ctx, { name: 'missing', target: target('t1') });
    expect(isNotFound(err)).toBe(true);
    // No paths and no usable target: the whole image would be replaced by an invalid one.
    err = await refused(ctx, { name, target: undefined as unknown as Descriptor });
    expect(isInvalidArgument(err)).toBe(true);
    err = await refused(ctx, { name, target: { ...target('t2'), size: 0 } }, ['target']);
    expect(err.message).toBe('Target.Size must be greater than zero');
    err = await refused(ctx, { name, target: target('t1'), labels: { big: 'v'.repeat(5000) } }, ['labels.big']);
    expect(isInvalidArgument(err)).toBe(true);
    expect(await h.store.images.get(ctx, name)).toEqual(created);
  });

  it('keeps the target as a GC root, and a delete with sync returns after the blob is collected', async () => {
    const digest = await putBlob(h.store.content, ctx, 'manifest bytes');
    const desc: Descriptor = { mediaType: MANIFEST, digest, size: Buffer.byteLength('manifest bytes') };
    await h.store.images.create(ctx, { name: 'held', target: desc });
    await h.store.garbageCollect();
    expect((await h.store.content.info(ctx, digest)).digest).toBe(digest);

    await h.store.images.delete(ctx, 'held', { sync: true });
    await expect(h.store.content.info(ctx, digest)).rejects.toSatisfy(isNotFound);
  });

  it('keeps its namespace from being deleted until the last image is gone', async () => {
    await h.store.images.create(ctxOf('team'), { name: 'x', target: target('t1') });
    await expect(h.store.namespaces.delete('team')).rejects.toThrow('namespace "team" must be empty, but it still has images');
    await h.store.images.delete(ctxOf('team'), 'x');
    await h.store.namespaces.delete('team');
    expect(await h.store.namespaces.list()).toEqual([]);
  });

  it('counts a delete and a retarget as deleting mutations for the collector', async () => {
    await h.store.images.create(ctx, { name: 'x', target: target('t1'), labels: { 'containerd.io/gc.ref.content.l.0': target('l').digest } });
    await h.store.garbageCollect();
    const start = h.store.dirty;
    await h.store.images.update(ctx, { name: 'x', target: target('t1'), labels: { other: 'o' } }, ['labels.other']);
    expect(h.store.dirty).toBe(start);
    await h.store.images.update(ctx, { name: 'x', target: target('t1') }, ['labels']);
    expect(h.store.dirty).toBe(start + 1);
    await h.store.images.update(ctx, { name: 'x', target: target('t2') }, ['target']);
    expect(h.store.dirty).toBe(start + 2);
    await h.store.images.delete(ctx, 'x');
    expect(h.store.dirty).toBe(start + 3);
  });

  it('lists from one snapshot, in slices that let the event loop run', async () => {
    // More images than one LMDB batch, and a filter whose every match is costly, so the list spans many turns.
    const names = Array.from({ length: 300 }, (_, i) => `example.com/img:${String(i).padStart(4, '0')}`);
    await Promise.all(names.map((name) => h.store.images.create(ctx, { name, target: target(name), labels: { a: 'a'.repeat(200) + '!' } })));
    const costly = 'labels.a~="(?:a?){150}a{150}$"';
    let worst = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      worst = Math.max(worst, now - last);
      last = now;
    }, 1);
    try {
      const listing = h.store.images.list(ctx, [costly]);
      let lateCommitted = false;
      const late = h.store.images.create(ctx, { name: 'example.com/late:1', target: target('late'), labels: { a: 'a'.repeat(200) } }).then(() => {
        lateCommitted = true;
      });
      const listed = await listing;
      expect(lateCommitted).toBe(true); // it committed while the list was running...
      expect(listed).toEqual([]); // ...and the list did not see it
      await late;
    } finally {
      clearInterval(ticker);
    }
    expect((await h.store.images.list(ctx, [costly])).map((i) => i.name)).toEqual(['example.com/late:1']);
    expect((await h.store.images.list(ctx, ['labels.a~="!$"'])).map((i) => i.name)).toEqual(names);
    // Stall detection only (the machine may be busy): never blocked for a whole second.
    expect(worst).toBeLessThan(1000);
  });
});
