// Containers acceptance: Debian's real ctr against a berthd process. `ctr containers create|ls|info|label|rm` of
// issue 10's list on an image imported (and unpacked into overlayfs) by ctr itself, containers made through the API
// without an image, a malformed request, garbage collection keeping a container's snapshot, and SIGKILL of berthd
// in the middle of a stream of updates. The image is the project's own (tools/images, from busybox-static).
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, makeGenericClientConstructor, Metadata, type Client, type ServiceError } from '@grpc/grpc-js';
import { serviceDefinition, ServiceNames } from '@berth/api';
import { nullLogger, OCI_SPEC_TYPE_URL } from '@berth/core';
import { createMemoryContentStore } from '@berth/core/testing';
import { LmdbMetadataStore } from '@berth/plugin-metadata-lmdb';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, type BuiltImage } from '../../../tools/images/index.mjs';
import { rawCall } from './grpc-raw.js';
import { ctrTable, expectOk, hasCtr, hasRoot, NO_GC, QUIET_GC, run, startBerthd, type Berthd } from './harness.js';

const CONTAINERS = '/containerd.services.containers.v1.Containers';
const IMAGE = 'test/tiny:latest';
const TYPE = 'acme.io/ownership';

type Callback = (error: ServiceError | null, response: Record<string, unknown>) => void;

/** One gRPC client of the Containers service for many calls (a connection per call would be the bottleneck). */
function containersClient(address: string): { call: (method: string, request: unknown, namespace: string) => Promise<Record<string, unknown>>; close: () => void } {
  const Ctor = makeGenericClientConstructor(serviceDefinition(ServiceNames.Containers) as never, ServiceNames.Containers);
  const client = new Ctor(`unix://${address}`, credentials.createInsecure()) as Client & Record<string, (req: unknown, md: Metadata, cb: Callback) => void>;
  return {
    call: (method, request, namespace) =>
      new Promise((resolve, reject) => {
        const md = new Metadata();
        md.set('containerd-namespace', namespace);
        client[method]!.call(client, request, md, (error: ServiceError | null, response: Record<string, unknown>) => (error ? reject(error) : resolve(response)));
      }),
    close: () => client.close(),
  };
}

const spec = { type_url: OCI_SPEC_TYPE_URL, value: Buffer.from(JSON.stringify({ ociVersion: '1.0.2-dev', process: { args: ['/bin/sh'], cwd: '/' } })) };
const runc = { name: 'io.containerd.runc.v2' };
const ext = (doc: unknown) => ({ type_url: TYPE, value: Buffer.from(JSON.stringify(doc)) });

describe.skipIf(!hasRoot() || !hasCtr() || !existsSync('/bin/busybox'))('containers against ctr', () => {
  let daemon: Berthd | undefined;
  let work: string;
  let tiny: BuiltImage;
  let layoutTar: string;
  const clients: Array<{ close: () => void }> = [];
  const fresh = () => `containers-${randomBytes(4).toString('hex')}`;
  const ctr = (args: string[], namespace: string) => daemon!.ctr(args, { namespace, timeoutMs: 120_000 });

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-containers-it-'));
    tiny = await buildImage('tiny', join(work, 'tiny'));
    layoutTar = join(work, 'tiny.tar');
    expectOk(await run('tar', ['-cf', layoutTar, '-C', tiny.dir, 'oci-layout', 'index.json', 'blobs']), 'tar');
    // Collections only when asked for (Images.Delete / Leases.Delete with sync) or after a deletion.
    daemon = await startBerthd({ config: QUIET_GC, logLevel: 'info' });
  }, 120_000);

  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });

  afterAll(async () => {
    await daemon?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const client = () => {
    const c = containersClient(daemon!.address);
    clients.push(c);
    return c;
  };

  const importImage = async (ns: string) => expectOk(await ctr(['images', 'import', '--base-name', 'test/tiny', layoutTar], ns), 'ctr images import');

  it('ctr containers create, ls (with a label filter), info, label and rm', async () => {
    const ns = fresh();
    await importImage(ns);
    expectOk(await ctr(['containers', 'create', '--label', 'a=b', IMAGE, 'c1'], ns), 'ctr containers create');
    expectOk(await ctr(['containers', 'create', IMAGE, 'c2', '/bin/true'], ns), 'ctr containers create c2');

    const rows = ctrTable(expectOk(await ctr(['containers', 'ls'], ns)).stdout);
    expect(rows).toEqual([
      { CONTAINER: 'c1', IMAGE, RUNTIME: 'io.containerd.runc.v2' },
      { CONTAINER: 'c2', IMAGE, RUNTIME: 'io.containerd.runc.v2' },
    ]);
    expect(expectOk(await ctr(['containers', 'ls', '-q', 'labels."a"==b'], ns)).stdout).toBe('c1\n');
    expect(expectOk(await ctr(['containers', 'ls', '-q', 'labels.a==c'], ns)).stdout).toBe('');
    expect(expectOk(await ctr(['containers', 'ls', '-q', 'id==c2', 'labels.a==b'], ns)).stdout).toBe('c1\nc2\n');
    expect(expectOk(await ctr(['containers', 'ls', '-q', 'image==test/tiny:latest,runtime.name==io.containerd.runc.v2'], ns)).stdout).toBe('c1\nc2\n');
    const badFilter = await ctr(['containers', 'ls', 'id=='], ns);
    expect(badFilter.code).not.toBe(0);
    expect(badFilter.stderr).toContain('invalid argument');

    const info = JSON.parse(expectOk(await ctr(['containers', 'info', 'c1'], ns)).stdout) as Record<string, unknown>;
    expect(info).toMatchObject({
      ID: 'c1',
      Image: IMAGE,
      Labels: { a: 'b', 'io.containerd.image.config.stop-signal': 'SIGTERM' },
      Runtime: { Name: 'io.containerd.runc.v2' },
      Snapshotter: 'overlayfs',
      SnapshotKey: 'c1',
      Extensions: null,
    });
    // The spec ctr generated from the image config, decoded by ctr from what berth stored.
    expect((info.Spec as { process: { args: string[] } }).process.args).toEqual(['/bin/sh']);
    // The container's snapshot is a child of the image's chain.
    const snapshots = ctrTable(expectOk(await ctr(['snapshots', 'ls'], ns)).stdout);
    const chainTop = tiny.manifests[0]!.layers.at(-1)!.diffId;
    expect(snapshots.find((s) => s.KEY === 'c1')).toMatchObject({ PARENT: chainTop, KIND: 'Active' });

    // ctr prints the labels the update returned.
    const labels = expectOk(await ctr(['containers', 'label', 'c1', 'k=v', 'a='], ns), 'ctr containers label').stdout;
    expect(labels.trim().split(',').sort()).toEqual(['io.containerd.image.config.stop-signal=SIGTERM', 'k=v']);
    // With no labels ctr sends an update without a mask and an empty container: containerd refuses it, so does berth.
    const bare = await ctr(['containers', 'label', 'c1'], ns);
    expect(bare.code).not.toBe(0);
    expect(bare.stderr).toContain('container.Snapshotter field is immutable: invalid argument');
    expect(JSON.parse(expectOk(await ctr(['containers', 'info', 'c1'], ns)).stdout).Labels).toEqual({ k: 'v', 'io.containerd.image.config.stop-signal': 'SIGTERM' });

    expectOk(await ctr(['containers', 'rm', 'c1'], ns), 'ctr containers rm');
    expect(expectOk(await ctr(['containers', 'ls', '-q'], ns)).stdout).toBe('c2\n');
    expect(ctrTable(expectOk(await ctr(['snapshots', 'ls'], ns)).stdout).map((s) => s.KEY)).not.toContain('c1');
    const again = await ctr(['containers', 'rm', 'c1'], ns);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('not found');
    expectOk(await ctr(['containers', 'rm', 'c2'], ns));
  }, 180_000);

  it('containers made through the API without an image, with extensions ctr info shows', async () => {
    const ns = fresh();
    const c = client();
    await c.call('Create', { container: { id: 'api1', runtime: runc, spec, labels: { made: 'api' }, extensions: { [TYPE]: ext({ team: 'payments' }) } } }, ns);
    const rows = ctrTable(expectOk(await ctr(['containers', 'ls'], ns)).stdout);
    expect(rows).toEqual([{ CONTAINER: 'api1', IMAGE: '-', RUNTIME: 'io.containerd.runc.v2' }]);
    const info = JSON.parse(expectOk(await ctr(['containers', 'info', 'api1'], ns)).stdout) as Record<string, unknown>;
    expect(info).toMatchObject({ ID: 'api1', Image: '', Labels: { made: 'api' }, Snapshotter: '', SnapshotKey: '' });
    const shown = (info.Extensions as Record<string, { type_url: string; value: string }>)[TYPE]!;
    expect(shown.type_url).toBe(TYPE);
    expect(JSON.parse(Buffer.from(shown.value, 'base64').toString())).toEqual({ team: 'payments' });
    expect(JSON.parse(expectOk(await ctr(['containers', 'info', '--spec', 'api1'], ns)).stdout)).toMatchObject({ process: { args: ['/bin/sh'] } });
    // An update by field mask, then ctr label on top of it.
    await c.call('Update', { container: { id: 'api1', extensions: { [TYPE]: ext({ team: 'search' }) } }, update_mask: { paths: [`extensions.${TYPE}`] } }, ns);
    expectOk(await ctr(['containers', 'label', 'api1', 'x=y'], ns));
    const after = JSON.parse(expectOk(await ctr(['containers', 'info', 'api1'], ns)).stdout) as { Labels: unknown; Extensions: Record<string, { value: string }> };
    expect(after.Labels).toEqual({ made: 'api', x: 'y' });
    expect(JSON.parse(Buffer.from(after.Extensions[TYPE]!.value, 'base64').toString())).toEqual({ team: 'search' });
    expectOk(await ctr(['containers', 'rm', 'api1'], ns));
    expect(expectOk(await ctr(['containers', 'ls', '-q'], ns)).stdout).toBe('');
  }, 60_000);

  it('refuses malformed and invalid requests with clear errors, storing nothing, and keeps serving', async () => {
    const ns = fresh();
    const c = client();
    // Bytes that are no CreateContainerRequest: container (field 1) claims 50 bytes, 3 follow.
    const bad = await rawCall(daemon!.address, `${CONTAINERS}/Create`, Buffer.from([0x0a, 0x32, 0x0a, 0x01, 0x78]), undefined, { 'containerd-namespace': ns });
    expect(bad.error?.code).toBe(13);
    const refusals: Array<[string, unknown, number, string]> = [
      ['Create', { container: { id: 'bad id', runtime: runc, spec } }, 3, 'container.ID: identifier "bad id" must match'],
      ['Create', { container: { id: 'c', spec } }, 3, 'container.Runtime.Name must be set'],
      ['Create', { container: { id: 'c', runtime: runc, spec, labels: { huge: 'x'.repeat(5000) } } }, 3, 'key: huge'],
      ['Update', { container: { id: '' } }, 3, 'Container.ID required'],
      ['Update', { container: { id: 'nope' }, update_mask: { paths: ['labels.a'] } }, 5, 'container "nope": not found'],
      ['List', { filters: ['extensions."acme.io/ownership".team==x'] }, 3, 'is not indexed'],
    ];
    for (const [method, request, code, message] of refusals) {
      const err = (await c.call(method, request, ns).then(() => undefined, (e: unknown) => e)) as ServiceError | undefined;
      expect(err?.code, `${method} ${JSON.stringify(request).slice(0, 80)}`).toBe(code);
      expect(err?.details).toContain(message);
    }
    await c.call('Create', { container: { id: 'c', runtime: runc, spec } }, ns);
    const immutable = (await c.call('Update', { container: { id: 'c', runtime: { name: 'other' }, spec } }, ns).then(() => undefined, (e: unknown) => e)) as ServiceError;
    expect(immutable.code).toBe(3);
    expect(immutable.details).toContain('container.Runtime.Name field is immutable');
    expect(expectOk(await ctr(['containers', 'ls', '-q'], ns)).stdout).toBe('c\n');
    expect(daemon!.alive).toBe(true);
    expectOk(await ctr(['containers', 'rm', 'c'], ns));
  }, 60_000);

  it('a container keeps its snapshot (and the image chain under it) through garbage collection', async () => {
    const ns = fresh();
    await importImage(ns);
    expectOk(await ctr(['containers', 'create', IMAGE, 'held'], ns));
    const chainTop = tiny.manifests[0]!.layers.at(-1)!.diffId;
    // Removing the image and collecting leaves the container's snapshot and its parent chain.
    expectOk(await ctr(['images', 'rm', '--sync', IMAGE], ns), 'ctr images rm --sync');
    let keys = ctrTable(expectOk(await ctr(['snapshots', 'ls'], ns)).stdout).map((s) => s.KEY);
    expect(keys).toEqual(expect.arrayContaining(['held', chainTop]));
    // The container goes (through the API: ctr rm would remove the snapshot itself); the next collection frees it.
    const c = client();
    await c.call('Delete', { id: 'held' }, ns);
    expectOk(await ctr(['leases', 'create', '--id', 'gc-trigger'], ns));
    expectOk(await ctr(['leases', 'rm', '--sync', 'gc-trigger'], ns), 'ctr leases rm --sync');
    keys = ctrTable(expectOk(await ctr(['snapshots', 'ls'], ns)).stdout).map((s) => s.KEY);
    expect(keys).not.toContain('held');
    expect(keys).not.toContain(chainTop);
  }, 180_000);

  it('SIGKILL during a stream of updates loses no committed write, never leaves a half-written container, and revisions never go back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'berth-containers-kill-'));
    let killed: Berthd | undefined;
    try {
      killed = await startBerthd({ dir, config: NO_GC, logLevel: 'warn' });
      const ns = 'killtest';
      const c = containersClient(killed.address);
      clients.push(c);
      const ids = ['k0', 'k1', 'k2', 'k3'];
      for (const id of ids) await c.call('Create', { container: { id, runtime: runc, spec, labels: { n: '0' }, extensions: { [TYPE]: ext({ n: 0 }) } } }, ns);
      // Each update writes the counter into a label and into the extension at once: a half-written container would
      // show two different counters.
      const acked = new Map(ids.map((id) => [id, 0]));
      let total = 0;
      let stop = false;
      const writers = ids.map(async (id) => {
        for (let n = 1; !stop; n++) {
          try {
            await c.call('Update', { container: { id, labels: { n: String(n) }, extensions: { [TYPE]: ext({ n }) } }, update_mask: { paths: ['labels.n', `extensions.${TYPE}`] } }, ns);
          } catch {
            return;
          }
          acked.set(id, n);
          total++;
        }
      });
      const deadline = Date.now() + 30_000;
      while (total < 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(total).toBeGreaterThanOrEqual(200);
      expect((await killed.kill('SIGKILL')).signal).toBe('SIGKILL');
      stop = true;
      await Promise.all(writers);
      c.close();

      // What a restarted daemon serves.
      killed = await startBerthd({ dir, config: NO_GC, logLevel: 'warn' });
      const again = containersClient(killed.address);
      clients.push(again);
      const seen = new Map<string, number>();
      for (const id of ids) {
        const { container } = (await again.call('Get', { id }, ns)) as { container: { labels: Record<string, string>; extensions: Record<string, { value: Buffer }> } };
        const label = Number(container.labels.n);
        const inExt = (JSON.parse(Buffer.from(container.extensions[TYPE]!.value).toString()) as { n: number }).n;
        expect(inExt, `${id}: label and extension from one write`).toBe(label);
        // Every acknowledged write is there; at most the one in flight at the kill came on top.
        expect(label).toBeGreaterThanOrEqual(acked.get(id)!);
        expect(label).toBeLessThanOrEqual(acked.get(id)! + 1);
        seen.set(id, label);
      }
      again.close();
      await killed.stop({ keepDir: true });

      // The revisions on disk: one per change since create (revision 1 held n=0), so never behind the value.
      const store = await LmdbMetadataStore.open({ path: join(dir, 'root', 'io.containerd.metadata.v1.lmdb', 'meta.lmdb'), content: createMemoryContentStore('raw'), log: nullLogger });
      try {
        for (const id of ids) expect((await store.containers.getExtension({ namespace: ns }, id, TYPE)).revision, id).toBe(seen.get(id)! + 1);
      } finally {
        await store.close();
      }
    } finally {
      await killed?.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
