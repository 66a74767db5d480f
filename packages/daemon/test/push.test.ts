// `berth push` from berthd's content store to Debian's docker-registry on loopback, and back with ctr: the same
// digests; a second push finds everything there; a push to another repository of the same registry mounts the
// blobs; a multi-platform index keeps its digest; one --platform pushes that manifest; basic auth's 401 is clear.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, type BuiltImage } from '../../../tools/images/index.mjs';
import { hasCtr, hasRoot, QUIET_GC, startBerthd, type Berthd, type RunResult } from './harness.js';
import { hasHtpasswd, hasRegistry, pushLayout, startRegistry, type Registry } from './registry.js';

const ready = hasRoot() && hasCtr() && hasRegistry();
const skipReason = !hasRoot() ? 'needs root (overlayfs unpack)' : !hasCtr() ? 'needs /usr/bin/ctr' : 'needs /usr/bin/docker-registry';
const TIMEOUT = { timeoutMs: 120_000 };

interface PushSummary {
  image: string;
  digest: string;
  mediaType: string;
  uploaded: number;
  mounted: number;
  exists: number;
}

/** The last stdout line of `berth --format json push`: the summary (the lines before it are progress events). */
function summaryOf(result: RunResult): PushSummary {
  expect(result.code, result.stderr).toBe(0);
  const lines = result.stdout.trim().split('\n');
  return JSON.parse(lines.at(-1)!) as PushSummary;
}

/** The digest `ctr images ls` shows for `ref`. */
async function ctrDigest(berthd: Berthd, namespace: string, ref: string): Promise<string> {
  const ls = await berthd.ctr(['images', 'ls'], { namespace });
  const line = ls.stdout.split('\n').find((l) => l.startsWith(`${ref} `));
  expect(line, ls.stdout).toBeDefined();
  return /sha256:[0-9a-f]{64}/.exec(line!)![0];
}

describe.skipIf(!ready)(`berth push from berthd${ready ? '' : ` (skipped: ${skipReason})`}`, () => {
  let scratch: string;
  let registry: Registry;
  let berthd: Berthd;
  let tiny: BuiltImage;
  let multi: BuiltImage;
  let tinyRef: string;
  let multiRef: string;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'berth-push-'));
    registry = await startRegistry();
    tiny = await buildImage('tiny', join(scratch, 'tiny'));
    multi = await buildImage('multi', join(scratch, 'multi'));
    tinyRef = (await pushLayout(registry, tiny.dir, 'test/busybox:latest')).reference;
    multiRef = (await pushLayout(registry, multi.dir, 'test/multi:latest')).reference;
    berthd = await startBerthd({ config: QUIET_GC });
  }, 180_000);

  afterAll(async () => {
    await berthd?.stop();
    await registry?.stop();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('pushes a pulled image to a second repository (mounting its blobs), pulls it back with ctr to the same digest, and a second push sends nothing', async () => {
    const ns = 'push-tiny';
    expect((await berthd.berth(['-n', ns, 'pull', '--plain-http', tinyRef], TIMEOUT)).code).toBe(0);
    const copy = `${registry.host}/copy/busybox:v1`;
    const first = summaryOf(await berthd.berth(['-n', ns, '--format', 'json', 'push', '--plain-http', copy, tinyRef], TIMEOUT));
    expect(first.digest).toBe(tiny.target.digest);
    // the pull labelled every blob with test/busybox on this registry: config and layers are mounted, the manifest PUT
    const blobs = 1 + tiny.manifests[0]!.layers.length;
    expect(first).toMatchObject({ mounted: blobs, uploaded: 1, exists: 0 });

    const back = 'push-tiny-back';
    const pulled = await berthd.ctr(['images', 'pull', '--plain-http', copy], { namespace: back, ...TIMEOUT });
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(await ctrDigest(berthd, back, copy)).toBe(tiny.target.digest);

    const again = await berthd.berth(['-n', ns, '--format', 'json', 'push', '--plain-http', copy, tinyRef], TIMEOUT);
    const second = summaryOf(again);
    expect(second).toMatchObject({ digest: tiny.target.digest, uploaded: 0, mounted: 0, exists: blobs + 1 });
    const events = again.stdout.trim().split('\n').slice(0, -1).map((l) => JSON.parse(l) as { state?: string });
    expect(events.filter((e) => e.state && e.state !== 'waiting').every((e) => e.state === 'exists')).toBe(true);

    // the content now names both repositories, as containerd labels what it pushed
    const info = await berthd.ctr(['content', 'ls'], { namespace: ns });
    expect(info.stdout).toMatch(/containerd\.io\/distribution\.source\.127\.0\.0\.1=copy\/busybox,test\/busybox/);
  }, 240_000);

  it('uploads to another registry (the mount attempt falls back to an upload) and ctr pulls the same digest back', async () => {
    const ns = 'push-tiny';
    const other = await startRegistry();
    try {
      const ref = `${other.host}/fresh/busybox:v2`;
      const out = await berthd.berth(['-n', ns, 'pull', '--plain-http', tinyRef], TIMEOUT);
      expect(out.code, out.stderr).toBe(0);
      const pushed = summaryOf(await berthd.berth(['-n', ns, '--format', 'json', 'push', '--plain-http', ref, tinyRef], TIMEOUT));
      expect(pushed).toMatchObject({ digest: tiny.target.digest, uploaded: 2 + tiny.manifests[0]!.layers.length, mounted: 0, exists: 0 });
      const back = 'push-other-back';
      const pulled = await berthd.ctr(['images', 'pull', '--plain-http', ref], { namespace: back, ...TIMEOUT });
      expect(pulled.code, pulled.stderr).toBe(0);
      expect(await ctrDigest(berthd, back, ref)).toBe(tiny.target.digest);
    } finally {
      await other.stop();
    }
  }, 240_000);

  it('keeps a multi-platform index digest with --all-platforms, pushes one platform as its manifest, and names what a partial pull lacks', async () => {
    const ns = 'push-multi';
    expect((await berthd.berth(['-n', ns, 'pull', '--plain-http', '--all-platforms', multiRef], TIMEOUT)).code).toBe(0);
    const copy = `${registry.host}/copy/multi:all`;
    const all = summaryOf(await berthd.berth(['-n', ns, '--format', 'json', 'push', '--plain-http', '--all-platforms', copy, multiRef], TIMEOUT));
    expect(all.digest).toBe(multi.target.digest);
    const back = 'push-multi-back';
    const pulled = await berthd.ctr(['images', 'pull', '--plain-http', '--all-platforms', copy], { namespace: back, ...TIMEOUT });
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(await ctrDigest(berthd, back, copy)).toBe(multi.target.digest);

    const other = multi.manifests[1]!;
    const platform = [other.platform.os, other.platform.architecture, other.platform.variant].filter(Boolean).join('/');
    const one = `${registry.host}/copy/multi:one`;
    const single = summaryOf(await berthd.berth(['-n', ns, '--format', 'json', 'push', '--plain-http', '--platform', platform, one, multiRef], TIMEOUT));
    expect(single.digest).toBe(other.descriptor.digest);
    const pulledOne = await berthd.ctr(['images', 'pull', '--plain-http', '--platform', platform, one], { namespace: 'push-one-back', ...TIMEOUT });
    expect(pulledOne.code, pulledOne.stderr).toBe(0);
    expect(await ctrDigest(berthd, 'push-one-back', one)).toBe(other.descriptor.digest);

    // only the host platform pulled: pushing the whole index names the other manifest, and nothing is tagged
    const partial = 'push-partial';
    expect((await berthd.berth(['-n', partial, 'pull', '--plain-http', multiRef], TIMEOUT)).code).toBe(0);
    const missing = await berthd.berth(['-n', partial, 'push', '--plain-http', `${registry.host}/copy/partial:v1`, multiRef], TIMEOUT);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain(other.descriptor.digest);
    expect(missing.stderr).toMatch(/not found|not in the content store/i);
    const head = await registry.fetch(`${registry.url}/v2/copy/partial/manifests/v1`, { method: 'HEAD' });
    expect(head.status).toBe(404);
  }, 300_000);

  it.skipIf(!hasHtpasswd())('fails with a clear 401 on wrong credentials against an htpasswd registry, and pushes with the right ones', async () => {
    const ns = 'push-tiny';
    const secured = await startRegistry({ htpasswd: { alice: 'wonderland' } });
    try {
      const ref = `${secured.host}/auth/busybox:v1`;
      const out = await berthd.berth(['-n', ns, 'pull', '--plain-http', tinyRef], TIMEOUT);
      expect(out.code, out.stderr).toBe(0);
      const wrong = await berthd.berth(['-n', ns, 'push', '--plain-http', '--user', 'alice:rabbit', ref, tinyRef], TIMEOUT);
      expect(wrong.code).not.toBe(0);
      expect(wrong.stderr).toMatch(/401/);
      const right = summaryOf(await berthd.berth(['-n', ns, '--format', 'json', 'push', '--plain-http', '--user', 'alice:wonderland', ref, tinyRef], TIMEOUT));
      expect(right.digest).toBe(tiny.target.digest);
    } finally {
      await secured.stop();
    }
  }, 240_000);

  it('serves ctr images push --plain-http (ctr reads the content from berthd)', async () => {
    const ns = 'push-tiny';
    const out = await berthd.berth(['-n', ns, 'pull', '--plain-http', tinyRef], TIMEOUT);
    expect(out.code, out.stderr).toBe(0);
    const ref = `${registry.host}/ctr/busybox:v1`;
    const pushed = await berthd.ctr(['images', 'push', '--plain-http', ref, tinyRef], { namespace: ns, ...TIMEOUT });
    expect(pushed.code, pushed.stderr).toBe(0);
    const back = 'push-ctr-back';
    const pulled = await berthd.ctr(['images', 'pull', '--plain-http', ref], { namespace: back, ...TIMEOUT });
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(await ctrDigest(berthd, back, ref)).toBe(tiny.target.digest);
  }, 240_000);
});
