import { afterEach, describe, expect, it } from 'vitest';
import { OCI_SPEC_TYPE_URL, type MetricFamily } from '@berth/core';
import { MemorySnapshotter, sha256 } from '@berth/core/testing';
import { createHarness, ctxOf, putBlob, type Harness } from './testing-fixtures/harness.js';

const a = ctxOf('a');
const b = ctxOf('b');
const spec = { typeUrl: OCI_SPEC_TYPE_URL, value: Buffer.from('{"ociVersion":"1.0.2"}') };
const container = (id: string) => ({ id, spec, snapshotKey: id, snapshotter: 'mem', runtime: { name: 'io.containerd.runc.v2' }, image: 'img' });
const image = (name: string) => ({ name, target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(Buffer.from(name)), size: 1 } });

/** The counts as one flat record: `<family>{label=value,...}` -> value. */
async function counts(h: Harness): Promise<Record<string, number>> {
  const families = (await h.store.metrics.collect()) as MetricFamily[];
  const out: Record<string, number> = {};
  for (const f of families) {
    if (!['berth_containers', 'berth_images', 'berth_leases', 'berth_content_blobs', 'berth_content_blob_bytes', 'berth_snapshots'].includes(f.name)) continue;
    for (const s of f.samples) out[`${f.name}{${Object.entries(s.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(',')}}`] = s.value;
  }
  return out;
}

describe('record counts for /v1/metrics', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.cleanup();
    h = undefined;
  });

  it('follow creates, rewrites and deletes, ignore failed transactions, and agree with a fresh count after reopening', async () => {
    const raw = new MemorySnapshotter();
    h = await createHarness({ backend: 'memory', snapshotters: new Map([['mem', raw]]) });
    const store = h.store;
    const sn = store.snapshotters.get('mem');
    for (const id of ['c1', 'c2', 'c3']) await store.containers.create(a, container(id));
    await store.containers.create(b, container('c1'));
    await store.containers.update(a, { id: 'c1', labels: { x: 'y' } }, ['labels']); // a rewrite: no change
    await expect(store.containers.create(a, container('c1'))).rejects.toThrow(/already exists/); // refused: no change
    await store.containers.delete(a, 'c2');
    await store.images.create(a, image('i1'));
    await store.images.create(a, image('i2'));
    await store.leases.create(a, { id: 'l1' });
    await store.leases.create(b, { id: 'l1' });
    await store.leases.create(b, { id: 'l2' });
    await store.leases.addResource(b, 'l1', { id: sha256(Buffer.from('x')), type: 'content' }); // a key below the lease: not a lease
    await store.leases.delete(b, 'l2');
    await putBlob(store.content, a, 'hello');
    await putBlob(store.content, a, 'world!');
    await putBlob(store.content, b, 'hello');
    await sn.prepare(a, 'k1', '');
    await sn.commit(a, 'base', 'k1');
    await sn.prepare(a, 'k2', 'base'); // 'base' now has a child key below it: still one snapshot
    await sn.view(b, 'v1', '');

    const expected = {
      'berth_containers{namespace=a}': 2,
      'berth_containers{namespace=b}': 1,
      'berth_images{namespace=a}': 2,
      'berth_leases{namespace=a}': 1,
      'berth_leases{namespace=b}': 1,
      'berth_content_blobs{namespace=a}': 2,
      'berth_content_blob_bytes{namespace=a}': 11,
      'berth_content_blobs{namespace=b}': 1,
      'berth_content_blob_bytes{namespace=b}': 5,
      'berth_snapshots{namespace=a,snapshotter=mem}': 2,
      'berth_snapshots{namespace=b,snapshotter=mem}': 1,
    };
    expect(await counts(h)).toEqual(expected);
    await h.reopen();
    expect(await counts(h)).toEqual(expected);

    // Deleting down to nothing takes the series away.
    await h.store.containers.delete(b, 'c1');
    await h.store.content.delete(b, sha256(Buffer.from('hello')));
    const after = await counts(h);
    expect(after['berth_containers{namespace=b}']).toBeUndefined();
    expect(after['berth_content_blobs{namespace=b}']).toBeUndefined();
    expect(after['berth_content_blobs{namespace=a}']).toBe(2);
  });

  it('count what garbage collection removes', async () => {
    h = await createHarness({ backend: 'memory' });
    await putBlob(h.store.content, a, 'unreferenced');
    expect((await counts(h))['berth_content_blobs{namespace=a}']).toBe(1);
    await h.store.garbageCollect();
    expect((await counts(h))['berth_content_blobs{namespace=a}']).toBeUndefined();
  });
});
