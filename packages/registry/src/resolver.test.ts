import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { failureOf } from '@berth/core/testing';
import { isNotFound } from '@berth/core';
import { MediaType } from './media-types.js';
import { collectBytes, digestOf } from './testing/fake-registry.js';
import { registryTestScope } from './testing/scope.js';

const LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
const { registry, resolver } = registryTestScope({ credentials: async () => undefined, retryDelayMs: 10 });

describe('resolve', () => {
  it('resolves a tag with HEAD (digest and size from the headers), over plain http for a loopback host', async () => {
    const reg = await registry();
    const manifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, layers: [] };
    const digest = reg.addManifest('test/app', 'v1', MediaType.OciManifest, manifest);
    const got = await resolver().resolve(`${reg.host}/test/app:v1`);
    expect(got).toEqual({ name: `${reg.host}/test/app:v1`, descriptor: { mediaType: MediaType.OciManifest, digest, size: JSON.stringify(manifest).length } });
    expect(reg.requests.map((r) => `${r.method} ${r.url}`)).toEqual([`HEAD /v2/test/app/manifests/v1`]);
    const accept = String(reg.requests[0]!.headers.accept);
    for (const type of [MediaType.OciManifest, MediaType.OciIndex, MediaType.DockerManifest, 'application/vnd.docker.distribution.manifest.list.v2+json']) {
      expect(accept).toContain(type);
    }
  });

  it('GETs and digests the manifest when HEAD gives no Docker-Content-Digest; a reference without a tag means latest', async () => {
    const reg = await registry({ noDigestHeader: true });
    const body = Buffer.from('{"schemaVersion":2,"manifests":[]}');
    reg.addManifest('test/app', 'latest', `${MediaType.OciIndex}; charset=utf-8`, body);
    const got = await resolver().resolve(`${reg.host}/test/app`);
    expect(got).toEqual({ name: `${reg.host}/test/app:latest`, descriptor: { mediaType: MediaType.OciIndex, digest: digestOf(body), size: body.length } });
    expect(reg.requests.map((r) => r.method)).toEqual(['HEAD', 'GET']);
  });

  it('resolves a digest reference through manifests, then blobs', async () => {
    const reg = await registry();
    const body = Buffer.from('{"schemaVersion":2}');
    const digest = reg.addBlob('test/app', body); // only as a blob
    const got = await resolver().resolve(`${reg.host}/test/app@${digest}`);
    expect(got.descriptor).toMatchObject({ digest, size: body.length });
    expect(reg.requests.map((r) => `${r.method} ${r.url}`)).toEqual([`HEAD /v2/test/app/manifests/${digest}`, `HEAD /v2/test/app/blobs/${digest}`]);
  });

  it('names the reference in a NotFoundError', async () => {
    const reg = await registry();
    const err = await failureOf(resolver().resolve(`${reg.host}/test/app:nope`));
    expect(isNotFound(err), String(err)).toBe(true);
    expect(err.message).toContain(`${reg.host}/test/app:nope`);
  });
});

describe('fetch', () => {
  it('streams a blob whole, and from an offset with Range (206)', async () => {
    const reg = await registry();
    const data = randomBytes(300_000);
    const digest = reg.addBlob('test/app', data);
    const fetcher = resolver().fetcher(`${reg.host}/test/app:latest`);
    const desc = { mediaType: LAYER, digest, size: data.length };
    const whole = await fetcher.fetch(desc);
    expect(whole.offset).toBe(0);
    expect(whole.size).toBe(data.length);
    expect((await collectBytes(whole.chunks)).equals(data)).toBe(true);
    const tail = await fetcher.fetch(desc, { offset: 123_456 });
    expect(tail).toMatchObject({ offset: 123_456, size: data.length });
    expect((await collectBytes(tail.chunks)).equals(data.subarray(123_456))).toBe(true);
    expect(reg.requests.at(-1)!.headers.range).toBe('bytes=123456-');
  });

  it('drops the bytes before the offset when the registry ignores Range (200)', async () => {
    const reg = await registry({ ignoreRange: true });
    const data = randomBytes(100_000);
    const digest = reg.addBlob('test/app', data);
    const body = await resolver().fetcher(`${reg.host}/test/app`).fetch({ mediaType: LAYER, digest, size: data.length }, { offset: 70_001 });
    expect(body.offset).toBe(70_001);
    expect((await collectBytes(body.chunks)).equals(data.subarray(70_001))).toBe(true);
  });

  it('fetches a manifest by descriptor from /manifests with its media type first in Accept', async () => {
    const reg = await registry();
    const body = Buffer.from('{"schemaVersion":2,"config":{}}');
    const digest = reg.addManifest('test/app', undefined, MediaType.DockerManifest, body);
    const got = await resolver().fetcher(`${reg.host}/test/app`).fetch({ mediaType: MediaType.DockerManifest, digest, size: body.length });
    expect((await collectBytes(got.chunks)).equals(body)).toBe(true);
    expect(reg.requests[0]).toMatchObject({ method: 'GET', url: `/v2/test/app/manifests/${digest}` });
    expect(String(reg.requests[0]!.headers.accept).startsWith(MediaType.DockerManifest)).toBe(true);
  });

  it('a missing blob is a NotFoundError naming the digest and repository', async () => {
    const reg = await registry();
    const digest = digestOf(Buffer.from('nope'));
    const err = await failureOf(resolver().fetcher(`${reg.host}/test/app`).fetch({ mediaType: LAYER, digest, size: 4 }));
    expect(isNotFound(err), String(err)).toBe(true);
    expect(err.message).toContain(digest);
    expect(err.message).toContain('test/app');
  });
});
