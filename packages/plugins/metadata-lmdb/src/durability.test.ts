import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FailedPreconditionError, isFailedPrecondition, nullLogger } from '@berth/core';
import { Database } from './database.js';
import { LmdbMetadataStore } from './metadata-store.js';
import { open } from 'lmdb';
import { keys, SCHEMA_VERSION, VERSION_KEY, type ContainerRecord } from './schema.js';
import { LocalContentStore } from '@berth/plugin-content-local';
import { createMemoryContentStore } from '@berth/core/testing';

describe('durability', () => {
  let dir: string | undefined;
  let child: ChildProcess | undefined;

  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    child = undefined;
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('keeps committed data when the process is killed with SIGKILL', async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-metadata-kill-'));
    const metaPath = join(dir, 'meta', 'meta.lmdb');
    const contentRoot = join(dir, 'content');
    const script = new URL('./testing-fixtures/kill-child.mjs', import.meta.url).pathname;
    const proc = spawn(process.execPath, [script, metaPath, contentRoot], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const digest = await new Promise<string>((resolve, reject) => {
      let out = '';
      proc.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /committed (sha256:[a-f0-9]{64})/.exec(out);
        if (m) resolve(m[1]!);
      });
      proc.on('exit', (code) => reject(new Error(`child exited early (${code}): ${stderr}`)));
    });
    const exited = new Promise((resolve) => proc.on('exit', (_code, signal) => resolve(signal)));
    proc.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');

    const store = await LmdbMetadataStore.open({ path: metaPath, content: await LocalContentStore.open({ root: contentRoot }), log: nullLogger });
    try {
      const ctx = { namespace: 'killed' };
      expect((await store.namespaces.list()).sort()).toEqual(['killed', 'survivor']);
      expect(await store.namespaces.labels('survivor')).toEqual({ k: 'v' });
      expect((await store.leases.list(ctx)).map((l) => l.id)).toEqual(['lease-1']);
      expect(await store.content.info(ctx, digest)).toMatchObject({ size: 13, labels: { a: 'b' } });
      const r = await store.content.reader(ctx, digest);
      expect((await r.read(0, 13)).toString()).toBe('durable bytes');
      await r.close();
    } finally {
      await store.close();
    }
  }, 60_000);

  it('refuses to open a database with a newer schema version', async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-metadata-schema-'));
    const path = join(dir, 'meta.lmdb');
    const db = await Database.open({ path, log: nullLogger });
    expect(db.records.get(VERSION_KEY)).toBe(SCHEMA_VERSION);
    await db.txn((r) => r.put(VERSION_KEY, SCHEMA_VERSION + 1));
    await db.close();

    const err = await LmdbMetadataStore.open({ path, content: createMemoryContentStore('raw'), log: nullLogger }).catch(
      (e: unknown) => e,
    );
    expect(isFailedPrecondition(err)).toBe(true);
    expect((err as FailedPreconditionError).message).toContain(`schema version ${SCHEMA_VERSION + 1} is newer`);

    // It keeps refusing (nothing was rewritten by the failed open).
    const again = await Database.open({ path, log: nullLogger }).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(Error);
  });

  it('opens a version 1 database (msgpackr records) as it is and marks it version 2', async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-metadata-v1-'));
    const path = join(dir, 'meta.lmdb');
    // What version 1 wrote: lmdb-js's default msgpack encoding, whose objects are msgpackr records.
    const root = open({ path, noSubdir: true, maxDbs: 4 });
    const v1 = root.openDB({ name: 'meta', encoding: 'msgpack' });
    const record: ContainerRecord = {
      labels: { a: 'b', 'ünï': 'cödé' },
      createdAt: 1_764_633_600_123,
      updatedAt: 1_764_633_601_000,
      snapshotter: 'overlayfs',
      snapshotKey: 'c1',
      image: 'docker.io/library/busybox:latest',
      runtime: { name: 'io.containerd.runc.v2', options: { typeUrl: 'containerd.runc.v1.Options', value: Buffer.from([8, 1]) } },
      spec: { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Spec', value: Buffer.from('{"ociVersion":"1.0.2"}') },
      extensions: { 'acme.io/x': { typeUrl: 'acme.io/x', value: Buffer.from('{"team":"payments"}') } },
      revisions: { 'acme.io/x': 4 },
    };
    await v1.put(VERSION_KEY as never, 1);
    await v1.put(keys.namespace('old') as never, { createdAt: 1 });
    await v1.put(keys.container('old', 'c1') as never, record);
    // The fixture is in the record format (msgpackr's record definition extension, 0xd4 0x72).
    expect(v1.getBinary(keys.container('old', 'c1') as never)!.subarray(0, 2)).toEqual(Buffer.from([0xd4, 0x72]));
    await root.close();

    const store = await LmdbMetadataStore.open({ path, content: createMemoryContentStore('raw'), log: nullLogger });
    try {
      const c = await store.containers.get({ namespace: 'old' }, 'c1');
      expect(c).toMatchObject({ id: 'c1', labels: record.labels, image: record.image, snapshotter: 'overlayfs', snapshotKey: 'c1', extensionRevisions: { 'acme.io/x': 4 } });
      expect(c.runtime.options && Buffer.from(c.runtime.options.value)).toEqual(Buffer.from([8, 1]));
      expect(Buffer.from(c.spec!.value).toString()).toBe('{"ociVersion":"1.0.2"}');
      expect(Buffer.from(c.extensions['acme.io/x']!.value).toString()).toBe('{"team":"payments"}');
      expect(c.createdAt.getTime()).toBe(record.createdAt);
      expect((await store.containers.list({ namespace: 'old' }, ['labels.a==b'])).map((x) => x.id)).toEqual(['c1']);
      await store.containers.update({ namespace: 'old' }, { id: 'c1', labels: { k: 'v' } }, ['labels.k']);
    } finally {
      await store.close();
    }
    const db = await Database.open({ path, log: nullLogger });
    try {
      expect(db.records.get(VERSION_KEY)).toBe(SCHEMA_VERSION);
      expect(SCHEMA_VERSION).toBe(2);
      // The record written again is a plain map, and reads back whole beside nothing lost.
      expect(db.records.get<ContainerRecord>(keys.container('old', 'c1'))?.labels).toEqual({ ...record.labels, k: 'v' });
    } finally {
      await db.close();
    }
  });

  it('rejects use after close', async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-metadata-closed-'));
    const store = await LmdbMetadataStore.open({ path: join(dir, 'meta.lmdb'), content: createMemoryContentStore('raw'), log: nullLogger });
    await store.close();
    await store.close();
    await expect(store.namespaces.create('x')).rejects.toThrow('metadata store is closed');
    await expect(store.garbageCollect()).rejects.toThrow('metadata store is closed');
  });
});
