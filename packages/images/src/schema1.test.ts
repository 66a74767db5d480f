import { gzipSync } from 'node:zlib';
import type { OpContext } from '@berth/core';
import type { TestHost } from '@berth/core/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { chainIds } from './identity.js';
import { MemoryRegistry } from './memory-registry.js';
import { MediaType } from './media-types.js';
import { pull } from './pull.js';
import { makeLayer } from './testing-fixtures/images.js';
import type { ImageServices } from './types.js';
import { createPullHost } from './testing-fixtures/pull-host.js';

const ctx: OpContext = { namespace: 'schema1' };

describe.skipIf(process.getuid?.() !== 0)('Docker schema 1 pulls, converted as containerd does', () => {
  let t: TestHost;
  let services: ImageServices;
  beforeEach(async () => {
    ({ t, services } = await createPullHost());
  });
  afterEach(async () => {
    await t.close();
  });

  it('fetches the non-empty layers, writes an OCI manifest and config, labels them and unpacks', async () => {
    const registry = new MemoryRegistry();
    const l1 = makeLayer({ 'etc/one': '1' });
    const l2 = makeLayer({ 'etc/two': '2' });
    const empty = { gz: gzipSync(Buffer.alloc(1024)) };
    const d1 = registry.put(l1.gz, MediaType.DockerLayerGzip);
    const d2 = registry.put(l2.gz, MediaType.DockerLayerGzip);
    const d0 = registry.put(empty.gz, MediaType.DockerLayerGzip);
    const v1 = (o: object) => JSON.stringify(o);
    const doc = {
      schemaVersion: 1,
      name: 'test/old',
      tag: 'v1',
      architecture: 'amd64',
      fsLayers: [{ blobSum: d0.digest }, { blobSum: d2.digest }, { blobSum: d1.digest }],
      history: [
        {
          v1Compatibility: v1({
            id: 'c',
            parent: 'b',
            created: '2024-01-01T00:00:02Z',
            architecture: 'amd64',
            os: 'linux',
            config: { Cmd: ['sh'], Env: ['PATH=/bin'], Labels: null },
            container_config: { Cmd: ['/bin/sh', '-c', '#(nop) CMD ["sh"]'] },
            throwaway: true,
          }),
        },
        { v1Compatibility: v1({ id: 'b', parent: 'a', created: '2024-01-01T00:00:01Z', container_config: { Cmd: ['/bin/sh', '-c', 'add two'] }, Size: 1 }) },
        { v1Compatibility: v1({ id: 'a', created: '2024-01-01T00:00:00Z', author: 'me', container_config: { Cmd: ['/bin/sh', '-c', 'add one'] } }) },
      ],
      signatures: [{ header: {}, signature: 'x', protected: 'y' }],
    };
    const manifest = registry.putJson(doc, MediaType.DockerSchema1Signed);
    const ref = registry.tag('test/old', 'v1', manifest);

    const result = await pull(services, ctx, { ref, resolver: registry, snapshotter: 'native' });
    expect(result.image.target.mediaType).toBe(MediaType.OciManifest);
    const target = result.image.target;
    const read = async (digest: string) => {
      const r = await services.content.reader(ctx, digest);
      try {
        return JSON.parse((await r.read(0, r.size)).toString('utf8')) as Record<string, any>;
      } finally {
        await r.close();
      }
    };
    const m = await read(target.digest);
    expect(m.schemaVersion).toBe(2);
    expect(m.layers.map((l: { digest: string }) => l.digest)).toEqual([d1.digest, d2.digest]);
    expect(m.layers.map((l: { size: number }) => l.size)).toEqual([d1.size, d2.size]);
    const config = await read(m.config.digest);
    expect(config.rootfs).toEqual({ type: 'layers', diff_ids: [l1.diffId, l2.diffId] });
    expect(config.architecture).toBe('amd64');
    expect(config.config).toEqual({ Env: ['PATH=/bin'], Cmd: ['sh'] });
    expect(config.history).toEqual([
      { created: '2024-01-01T00:00:00Z', created_by: '/bin/sh -c add one', author: 'me' },
      { created: '2024-01-01T00:00:01Z', created_by: '/bin/sh -c add two' },
      { created: '2024-01-01T00:00:02Z', created_by: '/bin/sh -c #(nop) CMD ["sh"]', empty_layer: true },
    ]);
    const labels = (await services.content.info(ctx, target.digest)).labels;
    expect(labels).toEqual({
      'containerd.io/gc.ref.content.0': m.config.digest,
      'containerd.io/gc.ref.content.1': d1.digest,
      'containerd.io/gc.ref.content.2': d2.digest,
    });
    expect((await services.content.info(ctx, d2.digest)).labels).toMatchObject({
      'containerd.io/uncompressed': l2.diffId,
      'containerd.io/docker.schema1.empty-layer': 'false',
    });
    // the empty layer is never fetched
    expect(registry.served.get(d0.digest)).toBeUndefined();
    expect(result.unpacked.map((u) => u.chainId)).toEqual([chainIds([l1.diffId, l2.diffId])[1]]);
  });

  it('refuses a schema 1 manifest whose history and layers do not match', async () => {
    const registry = new MemoryRegistry();
    const manifest = registry.putJson({ schemaVersion: 1, fsLayers: [{ blobSum: 'sha256:' + '0'.repeat(64) }], history: [] }, MediaType.DockerSchema1);
    const ref = registry.tag('test/bad', 'v1', manifest);
    await expect(pull(services, ctx, { ref, resolver: registry, snapshotter: 'native' })).rejects.toThrow('history and layer mismatch');
  });
});
