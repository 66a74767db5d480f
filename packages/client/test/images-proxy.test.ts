// ImageStoreProxy against a real berthd process (the built daemon bundle), over the real wire: what a command
// written against imagesToken sees when the CLI composes the proxy. Build first: nx run @berth/daemon:build.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlreadyExists, isInvalidArgument, isNotFound, sha256Digest, type Descriptor, type OpContext } from '@berth/core';
import { BerthClient, ContentStoreProxy, ImageStoreProxy } from '@berth/client';
import { DAEMON_MAIN, QUIET_GC, startBerthd, type Berthd } from '../../daemon/test/harness.js';

const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const target = (text: string): Descriptor => ({ mediaType: MANIFEST, digest: sha256Digest(Buffer.from(text)), size: Buffer.byteLength(text) });

describe.skipIf(!existsSync(DAEMON_MAIN))('ImageStoreProxy over berthd', () => {
  let daemon: Berthd | undefined;
  let client: BerthClient | undefined;
  let images: ImageStoreProxy;
  const fresh = (): OpContext => ({ namespace: `images-${randomBytes(6).toString('hex')}` });

  beforeAll(async () => {
    daemon = await startBerthd({ config: QUIET_GC, logLevel: 'warn' });
    client = new BerthClient({ address: daemon.address });
    images = new ImageStoreProxy(client);
  });

  afterAll(async () => {
    client?.close();
    await daemon?.stop();
  });

  it('creates, gets, lists, updates and deletes, with the store’s values and times', async () => {
    const ctx = fresh();
    const name = 'example.com/app:1';
    const before = Date.now() - 1000;
    const created = await images.create(ctx, { name, target: { ...target('m'), annotations: { a: '1' } }, labels: { team: 'x' } });
    expect(created).toMatchObject({ name, labels: { team: 'x' }, target: { ...target('m'), annotations: { a: '1' } } });
    expect(created.createdAt.getTime()).toBeGreaterThan(before);
    expect(created.updatedAt).toEqual(created.createdAt);
    expect(await images.get(ctx, name)).toEqual(created);
    expect(await images.list(ctx)).toEqual([created]);
    expect(await images.list(ctx, ['labels.team==y'])).toEqual([]);
    expect(await images.list(fresh())).toEqual([]);

    const updated = await images.update(ctx, { name, target: target('ignored'), labels: { tier: 't' } }, ['labels.tier']);
    expect(updated.labels).toEqual({ team: 'x', tier: 't' });
    expect(updated.target).toEqual(created.target);
    expect(updated.createdAt).toEqual(created.createdAt);
    const retargeted = await images.update(ctx, { name, target: target('n') });
    expect(retargeted.target).toEqual(target('n'));
    expect(retargeted.labels).toEqual({});

    await images.delete(ctx, name);
    await expect(images.get(ctx, name)).rejects.toSatisfy(isNotFound);
  });

  it('rebuilds the errdefs of refusals', async () => {
    const ctx = fresh();
    await images.create(ctx, { name: 'x', target: target('m') });
    await expect(images.create(ctx, { name: 'x', target: target('m') })).rejects.toSatisfy(isAlreadyExists);
    await expect(images.create(ctx, { name: 'y', target: { ...target('m'), size: 0 } })).rejects.toSatisfy(isInvalidArgument);
    await expect(images.update(ctx, { name: 'x', target: target('m') }, ['name'])).rejects.toThrow('cannot update "name" field on image "x"');
    await expect(images.delete(ctx, 'missing')).rejects.toSatisfy(isNotFound);
    await expect(images.list(ctx, ['name=='])).rejects.toSatisfy(isInvalidArgument);
  });

  it('delete with sync returns after the content only the image held is collected', async () => {
    const ctx = fresh();
    const content = new ContentStoreProxy(client!);
    const data = Buffer.from('manifest held by an image');
    const digest = sha256Digest(data);
    const writer = await content.writer(ctx, { ref: 'held', total: data.length, expected: digest });
    await writer.write(data);
    await writer.commit(data.length, digest);
    await images.create(ctx, { name: 'held', target: { mediaType: MANIFEST, digest, size: data.length } });
    await images.delete(ctx, 'held', { sync: true });
    await expect(content.info(ctx, digest)).rejects.toSatisfy(isNotFound);
  });
});
