import { createReadStream } from 'node:fs';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  containersToken,
  contentStoreToken,
  exchangePlugin,
  leasesToken,
  NotFoundError,
  NotImplementedError,
  OCI_SPEC_TYPE_URL,
  type AnyValue,
  type ContainerStore,
  type OpContext,
  type Snapshotter,
  type SnapshotterSet,
} from '@berth/core';
import { createMemorySnapshotter, createTestHost, expectFailure, type TestHost } from '@berth/core/testing';
import { importArchive } from '@berth/images';
import { createMemoryImageStore, HOST_ARCH, ociFixture, workDir } from '@berth/images/testing';
import contentLocalPlugin from '@berth/plugin-content-local';
import metadataLmdbPlugin from '@berth/plugin-metadata-lmdb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  containerJson,
  containerRows,
  createContainer,
  jsonBytes,
  listFilters,
  parseExtensionArgs,
  readJsonArgument,
  removeContainers,
  STOP_SIGNAL_LABEL,
  updateContainer,
  whereFilter,
  withRevisions,
  type ContainerCommandServices,
  type JsonSource,
  type TaskProbe,
} from './containers-ops.js';

const ns: OpContext = { namespace: 'default' };

/** Files by path and a stdin text, for the argument readers. */
function source(files: Record<string, string> = {}, stdin = ''): JsonSource {
  return {
    readFile: async (path) => {
      if (!(path in files)) throw new Error(`ENOENT: no such file or directory, open '${path}'`);
      return files[path] as string;
    },
    readStdin: async () => stdin,
  };
}

const json = (any: AnyValue | undefined) => JSON.parse(Buffer.from(any!.value).toString('utf8')) as unknown;

describe('--where expressions', () => {
  it('puts the store prefix on every condition, whichever spelling is used', () => {
    expect(whereFilter('ext."acme.io/ownership".team=="payments"')).toBe('extensions."acme.io/ownership".team=="payments"');
    expect(whereFilter('"acme.io/ownership".team==payments')).toBe('extensions."acme.io/ownership".team==payments');
    expect(whereFilter('extensions."a".b!=c')).toBe('extensions."a".b!=c');
    expect(whereFilter('ext."a/x".team==p, ext."a/x".tier==gold,"b".n')).toBe('extensions."a/x".team==p, extensions."a/x".tier==gold,extensions."b".n');
  });

  it('does not split inside quoted names or regexp values', () => {
    expect(whereFilter('ext."a,b".x~=/c,d/,ext."e".f=="g,ext.h"')).toBe('extensions."a,b".x~=/c,d/,extensions."e".f=="g,ext.h"');
    expect(whereFilter('ext."a".x~=|p,q|,ext."a".y==1')).toBe('extensions."a".x~=|p,q|,extensions."a".y==1');
  });

  it('refuses bad syntax and a condition without a field, naming the expression', () => {
    expect(() => whereFilter('ext."a".b==')).toThrow(/--where "ext.\\"a\\".b==": filters: parse error/);
    expect(() => whereFilter('ext."acme.io/x"==v')).toThrow(/names no field of an extension/);
    expect(() => whereFilter('  ')).toThrow(/empty expression/);
  });

  it('ANDs every --where to each ORed filter', () => {
    expect(listFilters([], [])).toEqual([]);
    expect(listFilters(['id==a', 'labels.x==y'], [])).toEqual(['id==a', 'labels.x==y']);
    expect(listFilters([], ['ext."t".a==1'])).toEqual(['extensions."t".a==1']);
    expect(listFilters(['id==a', 'image==i'], ['ext."t".a==1', 'ext."t".b!=2'])).toEqual([
      'id==a,extensions."t".a==1,extensions."t".b!=2',
      'image==i,extensions."t".a==1,extensions."t".b!=2',
    ]);
  });
});

describe('JSON arguments', () => {
  it('reads @file, - (stdin) and inline JSON; errors name the argument', async () => {
    expect((await readJsonArgument('@/x.json', source({ '/x.json': '{"a":1}' }), 'v')).value).toEqual({ a: 1 });
    expect((await readJsonArgument('-', source({}, '[1,2]'), 'v')).value).toEqual([1, 2]);
    expect((await readJsonArgument('@-', source({}, '"s"'), 'v')).value).toBe('s');
    expect((await readJsonArgument('{"b":true}', source(), 'v')).value).toEqual({ b: true });
    await expectFailure(readJsonArgument('{nope', source(), 'the value'), 'invalid-argument', /^the value: not JSON: /);
    await expectFailure(readJsonArgument('@/missing.json', source(), 'the value'), 'invalid-argument', /^the value: cannot read \/missing.json: ENOENT/);
  });

  it('--extension NAME=@file and NAME=JSON become JSON Any values keyed by type URL', async () => {
    const ext = await parseExtensionArgs(['acme.io/ownership=@/o.json', 'acme.io/tier={"level": 3}'], source({ '/o.json': '{ "team": "payments" }' }));
    expect(Object.keys(ext)).toEqual(['acme.io/ownership', 'acme.io/tier']);
    expect(ext['acme.io/ownership']!.typeUrl).toBe('acme.io/ownership');
    // Stored compact, as typeurl marshals a JSON value.
    expect(Buffer.from(ext['acme.io/ownership']!.value).toString()).toBe('{"team":"payments"}');
    expect(json(ext['acme.io/tier'])).toEqual({ level: 3 });
    await expectFailure(parseExtensionArgs(['noequals'], source()), 'invalid-argument', /expected NAME=@FILE or NAME=JSON/);
    await expectFailure(parseExtensionArgs(['=@x'], source()), 'invalid-argument', /expected NAME=@FILE/);
    await expectFailure(parseExtensionArgs(['a=1', 'a=2'], source()), 'invalid-argument', /--extension a: given more than once/);
    await expectFailure(parseExtensionArgs(['acme.io/x={bad'], source()), 'invalid-argument', /^--extension acme.io\/x: not JSON/);
  });
});

describe('containers operations', () => {
  let t: TestHost;
  let work: string;
  let fixture: Awaited<ReturnType<typeof ociFixture>>;
  let snapshotter: ReturnType<typeof createMemorySnapshotter>;
  let containers: ContainerStore;
  let svc: ContainerCommandServices;
  let mounted: string[];
  let unmounted: string[];

  beforeEach(async () => {
    t = await createTestHost({ plugins: [contentLocalPlugin, metadataLmdbPlugin, exchangePlugin] });
    snapshotter = createMemorySnapshotter();
    containers = t.host.get(containersToken);
    mounted = [];
    unmounted = [];
    const snapshotters: SnapshotterSet = {
      get: (name) => {
        if (name !== 'overlayfs') throw new NotFoundError(`snapshotter ${name} was not found`);
        return snapshotter as unknown as Snapshotter;
      },
      names: () => ['overlayfs'],
    };
    svc = {
      containers,
      images: createMemoryImageStore(),
      content: t.host.get(contentStoreToken),
      leases: t.host.get(leasesToken),
      snapshotters,
      applier: { apply: () => Promise.reject(new Error('no layer is applied in these tests')) },
      // "Mounts" a root filesystem holding only the account files the spec's user resolution reads.
      mounter: {
        mountAll: async (_mounts, target) => {
          mounted.push(target);
          await mkdir(join(target, 'etc'));
          await writeFile(join(target, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
          await writeFile(join(target, 'etc', 'group'), 'root:x:0:\nwheel:x:10:root\n');
        },
        unmountAll: async (target) => {
          unmounted.push(target);
          await rm(join(target, 'etc'), { recursive: true });
        },
      },
    };
    work = await workDir();
    fixture = await ociFixture(work);
    await importArchive(svc, ns, createReadStream(fixture.tar), { baseName: 'example.test/base' });
    // The host platform's image unpacked: its one layer committed as its chain.
    const host = HOST_ARCH === 'amd64' ? fixture.amd64 : fixture.arm64;
    await snapshotter.prepare(ns, 'extract', '');
    await snapshotter.commit(ns, host.diffId, 'extract');
  });

  afterEach(async () => {
    await t.close();
    await rm(work, { recursive: true, force: true });
  });

  it('create from an image: a snapshot keyed by the id on the chain, the config in the spec, the lease gone', async () => {
    const host = HOST_ARCH === 'amd64' ? fixture.amd64 : fixture.arm64;
    const ext = await parseExtensionArgs(['acme.io/ownership={"team":"payments"}'], source());
    const c = await createContainer(svc, ns, {
      id: 'c1',
      image: 'example.test/img:1',
      snapshotter: 'overlayfs',
      labels: { app: 'web' },
      extensions: ext,
      env: ['A=1'],
    });
    expect(c).toMatchObject({ id: 'c1', image: 'example.test/img:1', snapshotter: 'overlayfs', snapshotKey: 'c1', runtime: { name: 'io.containerd.runc.v2' } });
    expect(c.labels).toEqual({ app: 'web', [STOP_SIGNAL_LABEL]: 'SIGTERM' });
    expect(c.spec!.typeUrl).toBe(OCI_SPEC_TYPE_URL);
    const spec = json(c.spec) as { process: { args: string[]; env: string[]; cwd: string }; linux: { cgroupsPath: string }; root: { path: string } };
    expect(spec.process.args).toEqual(['/hello']);
    expect(spec.process.env).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'A=1']);
    expect(spec.linux.cgroupsPath).toBe('/default/c1');
    // The user's groups came from the snapshot's /etc/group, mounted for the spec and unmounted (its dir gone) after.
    expect((spec.process as unknown as { user: unknown }).user).toEqual({ uid: 0, gid: 0, additionalGids: [0, 10] });
    expect(mounted).toHaveLength(1);
    expect(unmounted).toEqual(mounted);
    expect(existsSync(mounted[0]!)).toBe(false);
    expect(json(c.extensions['acme.io/ownership'])).toEqual({ team: 'payments' });
    const info = await snapshotter.stat(ns, 'c1');
    expect(info).toMatchObject({ kind: 'active', parent: host.diffId });
    // The lease that covered the prepare ended once the container held the snapshot.
    expect(await svc.leases.list(ns)).toEqual([]);
  });

  it('create with a command replaces the image command; a failed create removes its snapshot and lease', async () => {
    const c = await createContainer(svc, ns, { id: 'c2', image: 'example.test/img:1', snapshotter: 'overlayfs', args: ['/bin/sh', '-c', 'true'] });
    expect((json(c.spec) as { process: { args: string[] } }).process.args).toEqual(['/bin/sh', '-c', 'true']);

    // A record of that id exists already (with no snapshot): the create fails after its prepare, which it undoes.
    await containers.create(ns, { id: 'c3', runtime: { name: 'io.containerd.runc.v2' }, spec: { typeUrl: OCI_SPEC_TYPE_URL, value: jsonBytes({}) } });
    await expectFailure(createContainer(svc, ns, { id: 'c3', image: 'example.test/img:1', snapshotter: 'overlayfs' }), 'already-exists');
    await expectFailure(snapshotter.stat(ns, 'c3'), 'not-found');
    expect(await svc.leases.list(ns)).toEqual([]);
  });

  it('create refuses a bad id, an unknown image and a missing image or spec, leaving nothing behind', async () => {
    await expectFailure(createContainer(svc, ns, { id: 'bad id!', image: 'example.test/img:1', snapshotter: 'overlayfs' }), 'invalid-argument', /identifier/);
    await expectFailure(createContainer(svc, ns, { id: 'c4', image: 'example.test/none:1', snapshotter: 'overlayfs' }), 'not-found');
    await expectFailure(createContainer(svc, ns, { id: 'c4', snapshotter: 'overlayfs' }), 'invalid-argument', /image ref must be provided/);
    expect(await containers.list(ns)).toEqual([]);
    expect(await svc.leases.list(ns)).toEqual([]);
  });

  it('create from a spec (--config) stores it as given, with no image or snapshot', async () => {
    const c = await createContainer(svc, ns, { id: 'c5', spec: { ociVersion: '1.0.2', process: { args: ['x'] } }, snapshotter: 'overlayfs', runtime: 'io.containerd.runc.v1' });
    expect(c).toMatchObject({ image: '', snapshotKey: '', runtime: { name: 'io.containerd.runc.v1' } });
    expect(json(c.spec)).toEqual({ ociVersion: '1.0.2', process: { args: ['x'] } });
  });

  it('rm refuses a running task, deletes a stopped one first, removes the snapshot unless kept', async () => {
    for (const id of ['run', 'stop', 'keep', 'none']) await createContainer(svc, ns, { id, image: 'example.test/img:1', snapshotter: 'overlayfs' });
    const deletedTasks: string[] = [];
    const tasks: TaskProbe = {
      status: async (_ctx, id) =>
        id === 'run' ? { status: 'running', delete: async () => void deletedTasks.push(id) } : id === 'stop' ? { status: 'stopped', delete: async () => void deletedTasks.push(id) } : undefined,
    };
    const r1 = await removeContainers(svc, tasks, ns, ['run', 'stop', 'missing', 'none'], { keepSnapshot: false });
    expect(r1.removed).toEqual(['stop', 'none']);
    expect(r1.failed.map((f) => [f.id, (f.error as Error).message])).toEqual([
      ['run', 'cannot delete a non stopped container: running'],
      ['missing', 'container "missing" in namespace "default": not found'],
    ]);
    expect(deletedTasks).toEqual(['stop']);
    await expectFailure(snapshotter.stat(ns, 'stop'), 'not-found');
    await expectFailure(snapshotter.stat(ns, 'none'), 'not-found');
    expect((await snapshotter.stat(ns, 'run')).name).toBe('run');

    const r2 = await removeContainers(svc, tasks, ns, ['keep'], { keepSnapshot: true });
    expect(r2.removed).toEqual(['keep']);
    expect((await snapshotter.stat(ns, 'keep')).name).toBe('keep');
  });

  it('update changes only the given fields, each by its field path', async () => {
    await createContainer(svc, ns, {
      id: 'u1',
      image: 'example.test/img:1',
      snapshotter: 'overlayfs',
      labels: { keep: '1', gone: 'x' },
      extensions: await parseExtensionArgs(['acme.io/b={"y":2}', 'acme.io/c={"z":3}'], source()),
    });
    const before = await containers.get(ns, 'u1');
    const ext = await parseExtensionArgs(['acme.io/a={"x":1}'], source());
    const after = await updateContainer(svc, ns, 'u1', { labels: { k: 'v', gone: '' }, extensions: ext, removeExtensions: ['acme.io/b'], image: 'other:1' });
    expect(after.labels).toEqual({ keep: '1', k: 'v', [STOP_SIGNAL_LABEL]: 'SIGTERM' });
    expect(Object.keys(after.extensions).sort()).toEqual(['acme.io/a', 'acme.io/c']);
    expect(json(after.extensions['acme.io/c'])).toEqual({ z: 3 });
    expect(after.image).toBe('other:1');
    expect(after.spec).toEqual(before.spec);
    expect(after.snapshotKey).toBe('u1');
    await expectFailure(updateContainer(svc, ns, 'u1', {}), 'invalid-argument', /nothing to update/);
    await expectFailure(updateContainer(svc, ns, 'u1', { extensions: ext, removeExtensions: ['acme.io/a'] }), 'invalid-argument', /both set and removed/);
    await expectFailure(updateContainer(svc, ns, 'nope', { image: 'x' }), 'not-found');
  });

  it('JSON output decodes the spec and JSON extensions with their revisions; other bytes as base64', async () => {
    const c = await createContainer(svc, ns, {
      id: 'j1',
      spec: { ociVersion: '1' },
      snapshotter: 'overlayfs',
      labels: { a: 'b' },
      extensions: { 'acme.io/o': { typeUrl: 'acme.io/o', value: jsonBytes({ team: 'p' }) }, 'x.io/bin': { typeUrl: 'x.io/bin', value: new Uint8Array([0xff, 0x00]) } },
    });
    const out = containerJson(c);
    expect(out).toMatchObject({ id: 'j1', labels: { a: 'b' }, image: '', spec: { typeUrl: OCI_SPEC_TYPE_URL, json: { ociVersion: '1' } } });
    expect(out['extensions']).toEqual({ 'acme.io/o': { typeUrl: 'acme.io/o', json: { team: 'p' }, revision: 1 }, 'x.io/bin': { typeUrl: 'x.io/bin', base64: '/wA=', revision: 1 } });
    // Revisions the record does not carry (containerd's wire has none) are asked for, or left out.
    const bare = { ...c, extensionRevisions: {} };
    expect(containerJson(bare)['extensions']).toEqual({ 'acme.io/o': { typeUrl: 'acme.io/o', json: { team: 'p' } }, 'x.io/bin': { typeUrl: 'x.io/bin', base64: '/wA=' } });
    const asked = await withRevisions(bare, async (name) => (name === 'acme.io/o' ? 7 : Promise.reject(new NotFoundError('gone'))));
    expect(asked.extensionRevisions).toEqual({ 'acme.io/o': 7 });
    expect(await withRevisions(bare, () => Promise.reject(new NotImplementedError('no service')))).toBe(bare);
    await expectFailure(withRevisions(bare, () => Promise.reject(new Error('boom'))), 'unknown', /boom/);
    expect(JSON.parse(JSON.stringify(out))).toEqual(out);
    expect('spec' in containerJson(c, { spec: false })).toBe(false);
    expect(containerRows([c])).toEqual([['CONTAINER', 'IMAGE', 'RUNTIME'], ['j1', '-', 'io.containerd.runc.v2']]);
  });
});
