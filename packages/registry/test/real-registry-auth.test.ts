// The client's auth against the real thing: docker-registry with htpasswd basic auth, and with Bearer token auth
// against the harness's token server (JWTs the registry verifies). Resolve, fetch and push through the challenge;
// wrong credentials are a clear 401.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Digest } from '@berth/core';
import { HTPASSWD_BIN, hasRegistry, MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_OCI_LAYER, MEDIA_TYPE_OCI_MANIFEST, startRegistry, type Registry } from '../../daemon/test/registry.js';
import { startTokenServer, type TokenServer } from '../../daemon/test/token-server.js';
import { staticCredentials } from '../src/auth.js';
import { createResolver, type HttpResolver } from '../src/resolver.js';
import { collectBytes } from '../src/testing/fake-registry.js';

const failure = (p: Promise<unknown>) => p.then(() => ({ errdef: 'none', message: 'resolved' }), (e: unknown) => e as { errdef?: string; message: string });

/** Pushes a one-layer image with the harness's own credentials; returns what the client should find. */
async function seed(registry: Registry, repo: string) {
  const layer = randomBytes(200_000);
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
  const l = await registry.pushBlob(repo, layer);
  const c = await registry.pushBlob(repo, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPE_OCI_MANIFEST,
      config: { mediaType: MEDIA_TYPE_OCI_CONFIG, digest: c.digest, size: c.size },
      layers: [{ mediaType: MEDIA_TYPE_OCI_LAYER, digest: l.digest, size: l.size }],
    }),
  );
  const digest = await registry.pushManifest(repo, 'v1', manifest, MEDIA_TYPE_OCI_MANIFEST);
  return { layer, manifest, digest, layerDesc: { mediaType: MEDIA_TYPE_OCI_LAYER, digest: l.digest, size: l.size }, configDesc: { mediaType: MEDIA_TYPE_OCI_CONFIG, digest: c.digest, size: c.size }, config };
}

/** Resolve, fetch a layer, then push the image to another repository of the same registry (mounting the layer). */
async function roundTrip(resolver: HttpResolver, registry: Registry, image: Awaited<ReturnType<typeof seed>>) {
  const resolved = await resolver.resolve(`${registry.host}/auth/src:v1`);
  expect(resolved.descriptor.digest).toBe(image.digest);
  const fetcher = resolver.fetcher(resolved.name);
  expect((await collectBytes((await fetcher.fetch(image.layerDesc)).chunks)).equals(image.layer)).toBe(true);
  const pusher = resolver.pusher(`${registry.host}/auth/copy:v1`);
  const once = (b: Buffer) => () => (async function* () { yield b; })();
  expect(await pusher.push(image.layerDesc, once(image.layer), { mountFrom: ['auth/src'] })).toBe('mounted');
  expect(await pusher.push(image.configDesc, once(image.config))).toBe('uploaded');
  expect(await pusher.push(resolved.descriptor, once(image.manifest))).toBe('uploaded');
  const back = await resolver.resolve(`${registry.host}/auth/copy:v1`);
  expect(back.descriptor.digest).toBe(image.digest);
  expect(sha256Digest(await collectBytes((await resolver.fetcher(back.name).fetch(image.layerDesc)).chunks))).toBe(image.layerDesc.digest);
}

describe.skipIf(!hasRegistry() || !existsSync(HTPASSWD_BIN))('docker-registry with htpasswd basic auth', () => {
  let registry: Registry | undefined;
  let image: Awaited<ReturnType<typeof seed>>;
  beforeAll(async () => {
    registry = await startRegistry({ htpasswd: { alice: 'wonderland' } });
    image = await seed(registry, 'auth/src');
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('resolves, fetches and pushes with the right credentials', async () => {
    const resolver = createResolver({ credentials: staticCredentials('alice:wonderland') });
    try {
      await roundTrip(resolver, registry!, image);
    } finally {
      resolver.close();
    }
  });

  it('wrong or no credentials are an UnauthenticatedError naming the registry', async () => {
    for (const [credentials, how] of [[staticCredentials('alice:nope'), 'credentials were sent and refused'], [async () => undefined, 'no credentials were sent']] as const) {
      const resolver = createResolver({ credentials, retries: 0 });
      try {
        const err = await failure(resolver.resolve(`${registry!.host}/auth/src:v1`));
        expect(err.errdef).toBe('unauthenticated');
        expect(err.message).toContain(`registry ${registry!.host}`);
        expect(err.message).toContain(how);
      } finally {
        resolver.close();
      }
    }
  });
});

describe.skipIf(!hasRegistry())('docker-registry with Bearer token auth', () => {
  let tokens: TokenServer | undefined;
  let registry: Registry | undefined;
  let image: Awaited<ReturnType<typeof seed>>;
  beforeAll(async () => {
    tokens = await startTokenServer({ users: { alice: 'wonderland' } });
    registry = await startRegistry({ tokenServer: tokens });
    image = await seed(registry, 'auth/src');
  });
  afterAll(async () => {
    await registry?.stop();
    await tokens?.stop();
  });

  it('gets tokens for the scopes each request needs, and resolves, fetches and pushes with them', async () => {
    const before = tokens!.requests.length;
    const resolver = createResolver({ credentials: staticCredentials('alice:wonderland') });
    try {
      await roundTrip(resolver, registry!, image);
    } finally {
      resolver.close();
    }
    const asked = tokens!.requests.slice(before);
    expect(asked.every((r) => r.user === 'alice' && r.status === 200 && r.service === tokens!.service)).toBe(true);
    const scopes = asked.map((r) => [...r.scopes].sort().join(' '));
    expect(scopes).toContain('repository:auth/src:pull');
    // the mount asks for push on the target and pull on the source in one token
    expect(scopes).toContain('repository:auth/copy:pull,push repository:auth/src:pull');
    // tokens are reused: far fewer token requests than registry requests
    expect(asked.length).toBeLessThanOrEqual(4);
  });

  it('credentials the token server refuses are an UnauthenticatedError naming the user', async () => {
    const resolver = createResolver({ credentials: staticCredentials('alice:nope'), retries: 0 });
    try {
      const err = await failure(resolver.resolve(`${registry!.host}/auth/src:v1`));
      expect(err.errdef).toBe('unauthenticated');
      expect(err.message).toContain('refused the credentials of "alice"');
    } finally {
      resolver.close();
    }
  });
});
