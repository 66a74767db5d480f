import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { messageCodec, ServiceNames, type containerd } from '@berth/api';
import { contentStoreToken, rpcServicesPoint, sha256Digest as sha256 } from '@berth/core';
import { createTestHost, expectFailure, rpcContext, type TestHost } from '@berth/core/testing';
import contentLocalPlugin from '@berth/plugin-content-local';
import differWalkingPlugin from '@berth/plugin-differ-walking';
import metadataLmdbPlugin from '@berth/plugin-metadata-lmdb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { diffServicePlugin } from './plugin.js';

type Handlers = containerd.services.diff.v1.DiffHandlers;
const applyCodec = messageCodec('containerd.services.diff.v1.ApplyRequest');
const diffCodec = messageCodec('containerd.services.diff.v1.DiffRequest');
const NS = 'diffs';

describe('containerd.services.diff.v1.Diff over the walking differ', () => {
  let host: TestHost;
  let work: string;
  let handlers: Handlers;
  beforeEach(async () => {
    work = mkdtempSync(join(tmpdir(), 'berth-diff-service-'));
    host = await createTestHost({ plugins: [contentLocalPlugin, metadataLmdbPlugin, differWalkingPlugin, diffServicePlugin] });
    const impl = [...host.host.all(rpcServicesPoint).values()].flatMap((s) => s.services).find((s) => s.service === ServiceNames.Diff);
    handlers = impl!.handlers as unknown as Handlers;
  });
  afterEach(async () => {
    await host.close();
    rmSync(work, { recursive: true, force: true });
  });

  it.skipIf(process.getuid?.() !== 0)('applies a layer from the namespace onto a bind mount, and diffs two trees into a layer there', async () => {
    const source = join(work, 'source');
    mkdirSync(source);
    writeFileSync(join(source, 'hello.txt'), 'hello');
    const tar = spawnSync('tar', ['-c', '--format=posix', '-C', source, '-f', '-', 'hello.txt']).stdout;
    const layer = spawnSync('gzip', ['-n', '-c'], { input: tar }).stdout;
    const content = host.host.get(contentStoreToken);
    const w = await content.writer({ namespace: NS }, { ref: 'layer' });
    await w.write(layer);
    await w.commit(layer.length, sha256(layer));

    const target = join(work, 'target');
    mkdirSync(target);
    const mounts = [{ type: 'bind', source: target, options: ['rbind'] }];
    const diff = { media_type: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length };
    const { applied } = await handlers.Apply(applyCodec.decode(applyCodec.encode({ diff, mounts })), rpcContext({ namespace: NS }));
    expect(applied).toMatchObject({ media_type: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(tar), size: tar.length });
    expect(readFileSync(join(target, 'hello.txt'), 'utf8')).toBe('hello');
    // Another namespace does not see the blob.
    await expectFailure(handlers.Apply(applyCodec.decode(applyCodec.encode({ diff, mounts })), rpcContext({ namespace: 'other' })), 'not-found');

    const empty = join(work, 'empty');
    mkdirSync(empty);
    const req = diffCodec.decode(diffCodec.encode({ left: [{ type: 'bind', source: empty, options: ['rbind', 'ro'] }], right: [{ type: 'bind', source: target, options: ['rbind', 'ro'] }], labels: { a: 'b' } }));
    const { diff: written } = await handlers.Diff(req, rpcContext({ namespace: NS }));
    expect(written?.media_type).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
    const info = await content.info({ namespace: NS }, String(written?.digest));
    expect(info.labels).toMatchObject({ a: 'b', 'containerd.io/uncompressed': expect.stringMatching(/^sha256:/) });
  });

  it('refuses a request without a namespace first (FailedPrecondition), as containerd does', async () => {
    await expectFailure(handlers.Apply(applyCodec.decode(applyCodec.encode({ mounts: [] })), rpcContext()), 'failed-precondition', 'namespace is required');
    await expectFailure(handlers.Diff(diffCodec.decode(diffCodec.encode({})), rpcContext()), 'failed-precondition', 'namespace is required');
  });

  it('refuses an Apply without a descriptor, and an unknown media type', async () => {
    await expectFailure(handlers.Apply(applyCodec.decode(applyCodec.encode({ mounts: [] })), rpcContext({ namespace: NS })), 'invalid-argument', 'diff descriptor is required');
    const diff = { media_type: 'application/x-nope', digest: sha256('x'), size: 1 };
    await expectFailure(handlers.Apply(applyCodec.decode(applyCodec.encode({ diff, mounts: [{ type: 'bind', source: work, options: [] }] })), rpcContext({ namespace: NS })), 'not-implemented');
  });
});
