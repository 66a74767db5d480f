// The resolver's referrers API client: Link parsing, and what it answers against a registry without the API
// (Debian's docker-registry: undefined, so callers use the tag fallback), with it (berth's test server: the
// listing, `filtered` when the server says it applied artifactType), and for a repository that does not exist.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isNotFound, sha256Digest } from '@berth/core';
import { startReferrersRegistry, type ReferrersRegistry } from '../../daemon/test/referrers-registry.js';
import { hasRegistry, startRegistry, type Registry } from '../../daemon/test/registry.js';
import { createResolver, nextLink, type HttpResolver } from '../src/resolver.js';

const ZERO = `sha256:${'0'.repeat(64)}`;

describe('nextLink', () => {
  const base = new URL('http://127.0.0.1:5000/v2/a/referrers/x');
  it('finds rel="next" among several links, relative or absolute', () => {
    expect(nextLink('</v2/a/referrers/x?last=1>; rel="next"', base)).toBe('http://127.0.0.1:5000/v2/a/referrers/x?last=1');
    expect(nextLink('<http://h/p?n=1>; rel="prev", <http://h/p?n=3>; rel="next"', base)).toBe('http://h/p?n=3');
    expect(nextLink('<http://h/p>; rel=next; title="x"', base)).toBe('http://h/p');
  });
  it('has none without a next link', () => {
    expect(nextLink(undefined, base)).toBeUndefined();
    expect(nextLink('<http://h/p>; rel="prev"', base)).toBeUndefined();
    expect(nextLink('garbage', base)).toBeUndefined();
  });
});

describe('referrers()', () => {
  let resolver: HttpResolver;
  let server: ReferrersRegistry;
  let registry: Registry | undefined;

  beforeAll(async () => {
    resolver = createResolver({ credentials: async () => undefined });
    server = await startReferrersRegistry();
    if (hasRegistry()) registry = await startRegistry();
  });
  afterAll(async () => {
    resolver?.close();
    await server?.stop();
    await registry?.stop();
  });

  it.skipIf(!hasRegistry())('is undefined on a registry without the API (docker-registry)', async () => {
    await registry!.pushBlob('test/r', Buffer.from('x'));
    expect(await resolver.referrers(`${registry!.host}/test/r`, ZERO)).toBeUndefined();
  });

  it('lists what the API answers, and says whether the server filtered', async () => {
    const blob = Buffer.from('{}');
    const pusher = resolver.pusher(`${server.host}/test/r`);
    await pusher.push({ mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256Digest(blob), size: 2 }, async function* () {
      yield blob;
    });
    const config = { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256Digest(blob), size: 2 };
    const subjectBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'a/b', config, layers: [config] }));
    const subject = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256Digest(subjectBytes), size: subjectBytes.length };
    await pusher.push(subject, async function* () {
      yield subjectBytes;
    }, { reference: 'v1' });
    const referrerBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: subject.mediaType, artifactType: 'x/sig', config, layers: [config], subject }));
    const referrer = { mediaType: subject.mediaType, digest: sha256Digest(referrerBytes), size: referrerBytes.length };
    await pusher.push(referrer, async function* () {
      yield referrerBytes;
    }, { reference: referrer.digest });

    const all = await resolver.referrers(`${server.host}/test/r`, subject.digest);
    expect(all).toEqual({ manifests: [{ ...referrer, artifactType: 'x/sig' }], filtered: false });
    const filtered = await resolver.referrers(`${server.host}/test/r`, subject.digest, { artifactType: 'x/other' });
    expect(filtered).toEqual({ manifests: [], filtered: true });
  });

  it('is NotFound for a repository the registry does not know', async () => {
    await expect(resolver.referrers(`${server.host}/test/nothing-here`, ZERO)).rejects.toSatisfy(isNotFound);
  });
});
