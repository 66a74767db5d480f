// fetchArtifact into a real berthd's content store over the wire (ContentStoreProxy), from Debian's docker-registry
// on loopback: manifest, config and layers are committed, unpacked nothing, held by the lease while it exists and
// collected once it is deleted, unless the manifest is rooted (its gc.ref labels then keep the rest).
// Build first: nx run @berth/daemon:build
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isNotFound, type OpContext } from '@berth/core';
import { createResolver, type HttpResolver } from '@berth/registry';
import { BerthClient, ContentStoreProxy, LeaseManagerProxy } from '../src/index.js';
import { EMPTY_DESCRIPTOR, fetchArtifactDetailed, pushArtifact } from '../src/artifacts/index.js';
import { DAEMON_MAIN, QUIET_GC, startBerthd, type Berthd } from '../../daemon/test/harness.js';
import { hasRegistry, startRegistry, type Registry } from '../../daemon/test/registry.js';

describe.skipIf(!existsSync(DAEMON_MAIN) || !hasRegistry())('fetchArtifact into berthd', () => {
  let registry: Registry;
  let resolver: HttpResolver;
  let daemon: Berthd;
  let client: BerthClient;
  let content: ContentStoreProxy;
  let leases: LeaseManagerProxy;

  beforeAll(async () => {
    registry = await startRegistry();
    resolver = createResolver({ credentials: async () => undefined });
    daemon = await startBerthd({ config: QUIET_GC, logLevel: 'warn' });
    client = new BerthClient({ address: daemon.address });
    content = new ContentStoreProxy(client);
    leases = new LeaseManagerProxy(client);
  }, 60_000);
  afterAll(async () => {
    client?.close();
    resolver?.close();
    await daemon?.stop();
    await registry?.stop();
  });

  async function present(ctx: OpContext, digest: string): Promise<boolean> {
    try {
      await content.info(ctx, digest);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  it('writes every blob under the lease, and the lease alone keeps them', async () => {
    const layer = randomBytes(3 * 1024 * 1024 + 1);
    const desc = await pushArtifact(`${registry.host}/test/fetched:v1`, { artifactType: 'application/vnd.example.v1', files: [{ title: 'blob.bin', data: layer }, { title: 'note', mediaType: 'text/plain', data: 'n' }] }, { resolver });
    const ns: OpContext = { namespace: `fetch-${randomBytes(4).toString('hex')}` };
    const lease = `artifact-${randomBytes(4).toString('hex')}`;
    await leases.create(ns, { id: lease });
    const result = await fetchArtifactDetailed(`${registry.host}/test/fetched:v1`, content, { ...ns, lease }, { resolver });
    expect(result.descriptor.digest).toBe(desc.digest);
    expect(result.blobs.map((b) => b.existed)).toEqual([false, false, false, false]);
    const digests = result.blobs.map((b) => b.digest);
    expect(digests[0]).toBe(EMPTY_DESCRIPTOR.digest);
    expect(digests.at(-1)).toBe(desc.digest);
    for (const d of digests) expect(await present(ns, d), d).toBe(true);
    const manifestInfo = await content.info(ns, desc.digest);
    expect(manifestInfo.labels['containerd.io/gc.ref.content.config']).toBe(EMPTY_DESCRIPTOR.digest);
    expect(manifestInfo.labels['containerd.io/gc.ref.content.l.0']).toBe(digests[1]);
    expect(manifestInfo.labels['containerd.io/distribution.source.127.0.0.1']).toBe('test/fetched');
    const held = (await leases.listResources(ns, lease)).filter((r) => r.type === 'content').map((r) => r.id).sort();
    expect(held).toEqual([...digests].sort());

    // a second fetch under another lease finds everything there
    const lease2 = `${lease}-2`;
    await leases.create(ns, { id: lease2 });
    const again = await fetchArtifactDetailed(`${registry.host}/test/fetched@${desc.digest}`, content, { ...ns, lease: lease2 }, { resolver });
    expect(again.blobs.every((b) => b.existed)).toBe(true);
    await leases.delete(ns, lease2, { sync: true });

    await leases.delete(ns, lease, { sync: true });
    for (const d of digests) expect(await present(ns, d), d).toBe(false);
  });

  it('a rooted manifest keeps its config and layers after the lease is gone', async () => {
    const desc = await pushArtifact(`${registry.host}/test/rooted:v1`, { artifactType: 'application/vnd.example.v1', files: [{ title: 'x', data: randomBytes(1000) }] }, { resolver });
    const ns: OpContext = { namespace: `root-${randomBytes(4).toString('hex')}` };
    const lease = `artifact-${randomBytes(4).toString('hex')}`;
    await leases.create(ns, { id: lease });
    const result = await fetchArtifactDetailed(`${registry.host}/test/rooted:v1`, content, { ...ns, lease }, { resolver });
    await content.update(ns, { digest: desc.digest, labels: { 'containerd.io/gc.root': 'true' } }, ['labels.containerd.io/gc.root']);
    await leases.delete(ns, lease, { sync: true });
    for (const b of result.blobs) expect(await present(ns, b.digest), b.digest).toBe(true);
  });
});
