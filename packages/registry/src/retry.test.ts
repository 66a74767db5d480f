// Retries, backoff and stalls against small loopback servers: 429 with Retry-After, 5xx, dropped connections, and
// a registry that stops sending mid-blob (resumed with Range, then DeadlineExceeded naming the blob).
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { failureOf } from '@berth/core/testing';
import { retryAfterMs } from './client.js';
import { collectBytes } from './testing/fake-registry.js';
import { registryTestScope } from './testing/scope.js';

const LAYER = 'application/vnd.oci.image.layer.v1.tar';
const stalled: ServerResponse[] = [];
const { registry, resolver } = registryTestScope({ credentials: async () => undefined, retryDelayMs: 20 }, () => {
  for (const res of stalled.splice(0)) res.destroy();
});
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

describe('retries', () => {
  it('reads Retry-After as seconds or as an HTTP date', () => {
    const now = Date.parse('Tue, 01 Dec 2026 16:00:00 GMT');
    expect(retryAfterMs('7', now)).toBe(7000);
    expect(retryAfterMs('Tue, 01 Dec 2026 16:00:30 GMT', now)).toBe(30_000);
    expect(retryAfterMs('Tue, 01 Dec 2026 15:00:00 GMT', now)).toBe(0);
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(retryAfterMs(undefined, now)).toBeUndefined();
  });

  it('waits as long as Retry-After says on a 429, then succeeds', async () => {
    let refused = 0;
    const reg = await registry({
      hook: (req, res) => {
        if (refused++ > 0) return false;
        res.writeHead(429, { 'retry-after': '1', 'content-type': 'application/json' });
        res.end('{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}');
        return true;
      },
    });
    const digest = reg.addManifest('test/app', 'v1', MANIFEST, { schemaVersion: 2 });
    const started = Date.now();
    expect((await resolver().resolve(`${reg.host}/test/app:v1`)).descriptor.digest).toBe(digest);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(reg.requests).toHaveLength(2);
  });

  it('a 429 that persists is ResourceExhausted after the bounded retries; a Retry-After beyond the cap fails at once', async () => {
    const reg = await registry({
      hook: (req, res) => {
        res.writeHead(429, { 'retry-after': req.url?.includes('far') ? '3600' : '0', 'content-type': 'application/json' });
        res.end('{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}');
        return true;
      },
    });
    const blob = { mediaType: LAYER, digest: `sha256:${'a'.repeat(64)}`, size: 1 };
    const err = await failureOf(resolver({ retries: 2 }).fetcher(`${reg.host}/test/app:v1`).fetch(blob));
    expect(err.errdef).toBe('resource-exhausted');
    expect(err.message).toContain('TOOMANYREQUESTS: slow down');
    expect(reg.requests).toHaveLength(3);
    const far = await failureOf(resolver({ retries: 2 }).fetcher(`${reg.host}/test/far:v1`).fetch(blob));
    expect(far.errdef).toBe('resource-exhausted');
    expect(far.message).toContain('retry after 3600');
    expect(reg.requests).toHaveLength(4);
  });

  it('retries 5xx and dropped connections with backoff', async () => {
    let n = 0;
    const reg = await registry({
      hook: (req, res) => {
        n++;
        if (n === 1) {
          res.socket?.destroy(); // the connection drops before any answer
          return true;
        }
        if (n <= 3) {
          res.writeHead(n === 2 ? 503 : 502);
          res.end();
          return true;
        }
        return false;
      },
    });
    const digest = reg.addManifest('test/app', 'v1', MANIFEST, { schemaVersion: 2 });
    expect((await resolver().resolve(`${reg.host}/test/app:v1`)).descriptor.digest).toBe(digest);
    expect(n).toBe(4);
  });

  it('gives up on a registry that keeps failing with Unavailable naming the request', async () => {
    const reg = await registry({
      hook: (req, res) => {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end('{"errors":[{"code":"UNKNOWN","message":"disk on fire"}]}');
        return true;
      },
    });
    const err = await failureOf(resolver({ retries: 1 }).fetcher(`${reg.host}/test/app:v1`).fetch({ mediaType: LAYER, digest: `sha256:${'b'.repeat(64)}`, size: 1 }));
    expect(err.errdef).toBe('unavailable');
    expect(err.message).toContain('disk on fire');
    expect(reg.requests).toHaveLength(2);
  });
});

describe('stalls', () => {
  /**
   * A blob server that sends the next `cut` bytes (only `later` bytes after the first time) on each of the first
   * `stalls` GETs, then goes silent.
   */
  async function stalling(data: Buffer, stalls: number, cut: number, later = cut) {
    let gets = 0;
    const reg = await registry({
      hook: (req, res) => {
        if (!req.url?.includes('/blobs/') || gets++ >= stalls) return false;
        const from = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
        res.writeHead(from > 0 ? 206 : 200, {
          'content-length': data.length - from,
          ...(from > 0 ? { 'content-range': `bytes ${from}-${data.length - 1}/${data.length}` } : {}),
        });
        res.write(data.subarray(from, from + (gets === 1 ? cut : later)));
        stalled.push(res); // never ended: the client's inactivity timeout must notice
        return true;
      },
    });
    return { reg, digest: reg.addBlob('test/app', data) };
  }

  it('resumes a blob that stalls mid-way with a Range request from the byte it got to', async () => {
    const data = randomBytes(200_000);
    const { reg, digest } = await stalling(data, 2, 50_000);
    const body = await resolver({ idleTimeoutMs: 300 }).fetcher(`${reg.host}/test/app`).fetch({ mediaType: LAYER, digest, size: data.length });
    expect((await collectBytes(body.chunks)).equals(data)).toBe(true);
    expect(reg.requests.map((r) => r.headers.range ?? '')).toEqual(['', 'bytes=50000-', 'bytes=100000-']);
  });

  it('fails with DeadlineExceeded naming the blob when it keeps stalling; the event loop stays free meanwhile', async () => {
    const data = randomBytes(100_000);
    const { reg, digest } = await stalling(data, 100, 10_000, 0);
    let worst = 0;
    let last = Date.now();
    const ticker = setInterval(() => {
      worst = Math.max(worst, Date.now() - last);
      last = Date.now();
    }, 10);
    try {
      const body = await resolver({ idleTimeoutMs: 200, retries: 2 }).fetcher(`${reg.host}/test/app`).fetch({ mediaType: LAYER, digest, size: data.length });
      const err = await failureOf(collectBytes(body.chunks));
      expect(err.errdef).toBe('deadline-exceeded');
      expect(err.message).toContain(digest);
      expect(err.message).toContain('3 attempts');
      expect(reg.requests).toHaveLength(3);
    } finally {
      clearInterval(ticker);
    }
    // generous: the machine is shared; a client that waited synchronously would block for the whole 600 ms
    expect(worst).toBeLessThan(250);
  });

  it('a stall before the headers is retried too, and then DeadlineExceeded', async () => {
    const reg = await registry({
      hook: (req, res) => {
        stalled.push(res);
        return true;
      },
    });
    const err = await failureOf(resolver({ idleTimeoutMs: 200, retries: 1 }).resolve(`${reg.host}/test/app:v1`));
    expect(err.errdef).toBe('deadline-exceeded');
    expect(err.message).toContain('/v2/test/app/manifests/v1');
    expect(reg.requests).toHaveLength(2);
  });

  it('a reader slower than the idle timeout is not a stall: nothing is re-requested', async () => {
    const data = randomBytes(8 << 20);
    const reg = await registry();
    const digest = reg.addBlob('test/app', data);
    const body = await resolver({ idleTimeoutMs: 200 }).fetcher(`${reg.host}/test/app`).fetch({ mediaType: LAYER, digest, size: data.length });
    const parts: Buffer[] = [];
    let first = true;
    for await (const chunk of body.chunks) {
      parts.push(Buffer.from(chunk));
      if (first) {
        first = false;
        await new Promise((resolve) => setTimeout(resolve, 700)); // the socket's buffers fill up meanwhile
      }
    }
    expect(Buffer.concat(parts).equals(data)).toBe(true);
    expect(reg.requests).toHaveLength(1);
  });

  it('an abort ends a stalled body with Cancelled at once and frees its connection slot', async () => {
    const data = randomBytes(100_000);
    const { reg, digest } = await stalling(data, 1, 10_000);
    const r = resolver({ idleTimeoutMs: 30_000, concurrency: 1 });
    const controller = new AbortController();
    const body = await r.fetcher(`${reg.host}/test/app`).fetch({ mediaType: LAYER, digest, size: data.length }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    const started = Date.now();
    const err = await failureOf(collectBytes(body.chunks));
    expect(err.errdef).toBe('cancelled');
    expect(Date.now() - started).toBeLessThan(5_000);
    // the only slot is free again: the next fetch (served whole) goes through
    const again = await r.fetcher(`${reg.host}/test/app`).fetch({ mediaType: LAYER, digest, size: data.length });
    expect((await collectBytes(again.chunks)).equals(data)).toBe(true);
  });
});
