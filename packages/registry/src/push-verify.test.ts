// The Pusher against the fake registry (mount fallback, chunked uploads, manifests by tag), the per-host
// concurrency limit, and verifyingStream.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { failureOf } from '@berth/core/testing';
import { verifyingStream } from './verify.js';
import { digestOf } from './testing/fake-registry.js';
import { registryTestScope } from './testing/scope.js';

const LAYER = 'application/vnd.oci.image.layer.v1.tar';
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const { registry, resolver } = registryTestScope({ credentials: async () => undefined, retryDelayMs: 10 });
const once = (data: Buffer) => () => (async function* () { yield data; })();

describe('push', () => {
  it('tries the mount sources in order, and uploads when none has the blob', async () => {
    const reg = await registry();
    const data = randomBytes(2000);
    const digest = reg.addBlob('test/has', data);
    const pusher = resolver().pusher(`${reg.host}/test/dest:v1`);
    const desc = { mediaType: LAYER, digest, size: data.length };
    expect(await pusher.push(desc, once(data), { mountFrom: ['test/lacks', 'test/has'] })).toBe('mounted');
    expect(reg.requests.filter((r) => r.method === 'POST').map((r) => r.url)).toEqual([
      `/v2/test/dest/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=test%2Flacks`,
      `/v2/test/dest/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=test%2Fhas`,
    ]);
    // the upload the refused mount opened was cancelled
    expect(reg.requests.filter((r) => r.method === 'DELETE')).toHaveLength(1);
    expect(reg.uploads.size).toBe(0);
    // the first mount attempt opened an upload (202) that the client went on to use
    const other = randomBytes(3000);
    const otherDesc = { mediaType: LAYER, digest: digestOf(other), size: other.length };
    expect(await pusher.push(otherDesc, once(other), { mountFrom: ['test/has'] })).toBe('uploaded');
    expect(reg.blobRepos.get(otherDesc.digest)?.has('test/dest')).toBe(true);
    expect(reg.requests.filter((r) => r.method === 'POST')).toHaveLength(3);
  });

  it('starts a blob upload again from its POST when the connection drops during the PUT', async () => {
    let puts = 0;
    const reg = await registry({
      hook: (req, res) => {
        if (req.method === 'PUT' && puts++ === 0) {
          res.socket?.destroy();
          return true;
        }
        return false;
      },
    });
    const data = randomBytes(20_000);
    let reads = 0;
    const content = () => {
      reads++;
      return (async function* () { yield data; })();
    };
    expect(await resolver().pusher(`${reg.host}/test/dest`).push({ mediaType: LAYER, digest: digestOf(data), size: data.length }, content)).toBe('uploaded');
    expect(reg.blobs.get(digestOf(data))?.equals(data)).toBe(true);
    expect(reads).toBe(2);
    expect(reg.requests.filter((r) => r.method === 'POST')).toHaveLength(2);
  });

  it('uploads a large blob in PATCH chunks with Content-Range, then PUT with the digest', async () => {
    const reg = await registry();
    const data = randomBytes(250_000);
    const pusher = resolver({ monolithicLimit: 100_000, chunkSize: 100_000 }).pusher(`${reg.host}/test/dest`);
    const sent: number[] = [];
    expect(await pusher.push({ mediaType: LAYER, digest: digestOf(data), size: data.length }, once(data), { onProgress: (n) => sent.push(n) })).toBe('uploaded');
    expect(reg.blobs.get(digestOf(data))?.equals(data)).toBe(true);
    const patches = reg.requests.filter((r) => r.method === 'PATCH');
    expect(patches.map((r) => r.headers['content-range'])).toEqual(['0-99999', '100000-199999', '200000-249999']);
    expect(sent).toEqual([100_000, 200_000, 250_000]);
    const put = reg.requests.find((r) => r.method === 'PUT');
    expect(put?.url).toContain(`digest=${encodeURIComponent(digestOf(data))}`);
  });

  it('refuses content whose length is not the descriptor size, and the registry refuses a wrong digest', async () => {
    const reg = await registry();
    const data = randomBytes(1000);
    const pusher = resolver().pusher(`${reg.host}/test/dest`);
    const wrong = await failureOf(pusher.push({ mediaType: LAYER, digest: digestOf(Buffer.from('other')), size: data.length }, once(data)));
    expect(wrong.errdef).toBe('unknown'); // 400 DIGEST_INVALID from the registry
    expect(wrong.message).toContain('DIGEST_INVALID');
    const short = await failureOf(pusher.push({ mediaType: MANIFEST, digest: digestOf(data), size: 999 }, once(data)));
    expect(short.errdef).toBe('invalid-argument');
  });

  it('puts a manifest by tag with its Content-Type, and exists() of a tag checks the digest it points at', async () => {
    const reg = await registry();
    const a = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST, n: 1 }));
    const b = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST, n: 2 }));
    const pusher = resolver().pusher(`${reg.host}/test/dest:v1`);
    const da = { mediaType: MANIFEST, digest: digestOf(a), size: a.length };
    const db = { mediaType: MANIFEST, digest: digestOf(b), size: b.length };
    expect(await pusher.push(da, once(a))).toBe('uploaded');
    expect(reg.manifests.get('test/dest:v1')).toEqual({ mediaType: MANIFEST, body: a });
    expect(await pusher.push(da, once(a))).toBe('exists');
    // the tag now names a; pushing b under it is an upload, not "exists"
    expect(await pusher.push(db, once(b))).toBe('uploaded');
    expect(reg.manifests.get('test/dest:v1')?.body.equals(b)).toBe(true);
    expect(await pusher.push(da, once(a), { reference: da.digest })).toBe('exists');
  });
});

describe('concurrency', () => {
  async function mostOpen(concurrency: number): Promise<number> {
    let open = 0;
    let most = 0;
    const reg = await registry({
      hook: async () => {
        open++;
        most = Math.max(most, open);
        await new Promise((resolve) => setTimeout(resolve, 150));
        open--;
        return false;
      },
    });
    const blobs = Array.from({ length: 8 }, () => randomBytes(1000));
    const digests = blobs.map((b) => reg.addBlob('test/app', b));
    const fetcher = resolver({ concurrency }).fetcher(`${reg.host}/test/app`);
    await Promise.all(
      digests.map(async (digest, i) => {
        const body = await fetcher.fetch({ mediaType: LAYER, digest, size: blobs[i]!.length });
        for await (const chunk of body.chunks) void chunk;
      }),
    );
    expect(reg.requests).toHaveLength(8);
    return most;
  }

  it('never has more requests open to one host than the limit', async () => {
    expect(await mostOpen(2)).toBeLessThanOrEqual(2);
    // the measure can see more: with room for all eight, more than two overlap
    expect(await mostOpen(8)).toBeGreaterThan(2);
  });
});

describe('verifyingStream', () => {
  const sink = () => new Writable({ write: (_c, _e, cb) => cb() });
  it('passes matching content through and names expected and actual digests on a mismatch', async () => {
    const data = randomBytes(5000);
    await pipeline(Readable.from([data.subarray(0, 100), data.subarray(100)]), verifyingStream({ mediaType: LAYER, digest: digestOf(data), size: data.length }), sink());
    const tampered = Buffer.from(data);
    tampered[10] ^= 1;
    const err = await failureOf(pipeline(Readable.from([tampered]), verifyingStream({ mediaType: LAYER, digest: digestOf(data), size: data.length }), sink()));
    expect(err.errdef).toBe('data-loss');
    expect(err.message).toContain(`expected ${digestOf(data)}, got ${digestOf(tampered)}`);
    const long = await failureOf(pipeline(Readable.from([data]), verifyingStream({ mediaType: LAYER, digest: digestOf(data), size: 10 }), sink()));
    expect(long.errdef).toBe('data-loss');
    // resuming: the bytes before the offset are given as the prefix, the stream carries the rest
    await pipeline(Readable.from([data.subarray(3000)]), verifyingStream({ mediaType: LAYER, digest: digestOf(data), size: data.length }, { prefix: [data.subarray(0, 3000)] }), sink());
    const short = await failureOf(pipeline(Readable.from([data.subarray(1)]), verifyingStream({ mediaType: LAYER, digest: digestOf(data), size: data.length }), sink()));
    expect(short.message).toContain(`got ${data.length - 1} bytes, expected ${data.length}`);
  });
});
