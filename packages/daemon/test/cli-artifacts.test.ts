// `berth artifact push|pull|ls|fetch` (the built CLI) against Debian's docker-registry on loopback, which has no
// referrers API (so the sha256-<hex> tag fallback), against the project's referrers-API test server, and into a
// real berthd's content store. Independent readers check what berth wrote: skopeo (containers/image) inspects and
// copies the artifact to an OCI layout; Debian's ctr lists the fetched blobs and the lease that holds them.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Digest } from '@berth/core';
import { CLI_MAIN, hasCtr, QUIET_GC, startBerthd, type Berthd, type RunResult } from './harness.js';
import { startReferrersRegistry, type ReferrersRegistry } from './referrers-registry.js';
import { hasRegistry, MEDIA_TYPE_OCI_MANIFEST, startRegistry, type Registry } from './registry.js';

const execFileAsync = promisify(execFile);
const hasSkopeo = existsSync('/usr/bin/skopeo');
const ready = hasRegistry() && hasCtr() && hasSkopeo && existsSync(CLI_MAIN);
const TYPE = 'application/vnd.example.bundle.v1';
const SIG = 'application/vnd.example.signature.v1';
const SBOM = 'application/vnd.example.sbom.v1';

function ok(r: RunResult): RunResult {
  expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
  return r;
}

async function skopeo(args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('skopeo', args, { timeout: 60_000, maxBuffer: 64 << 20 });
  return stdout;
}

describe.skipIf(!ready)('berth artifact', () => {
  let registry: Registry;
  let referrers: ReferrersRegistry;
  let berthd: Berthd;
  let scratch: string;
  const text = Buffer.from('readme of the artifact\n');
  const data = randomBytes(1536 * 1024 + 3);
  const berth = (args: string[]) => berthd.berth(args, { timeoutMs: 60_000 });

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'berth-cli-artifacts-'));
    await writeFile(join(scratch, 'README.txt'), text);
    await writeFile(join(scratch, 'data.bin'), data);
    await writeFile(join(scratch, 'sig.txt'), 'signature');
    registry = await startRegistry();
    referrers = await startReferrersRegistry();
    berthd = await startBerthd({ config: QUIET_GC, logLevel: 'warn' });
  }, 60_000);
  afterAll(async () => {
    await berthd?.stop();
    await referrers?.stop();
    await registry?.stop();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('push: skopeo reads the manifest and copies it to an OCI layout; pull gives the files back byte-identical', async () => {
    const ref = `${registry.host}/test/bundle:v1`;
    const pushed = JSON.parse(ok(await berth(['--format', 'json', 'artifact', 'push', ref, `${join(scratch, 'README.txt')}:text/plain`, join(scratch, 'data.bin'), '--artifact-type', TYPE, '--annotation', 'com.example.owner=team'])).stdout) as { digest: string; artifactType: string };
    expect(pushed.artifactType).toBe(TYPE);

    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]);
    expect(sha256Digest(raw)).toBe(pushed.digest);
    const manifest = JSON.parse(raw) as { mediaType: string; artifactType: string; config: { mediaType: string; size: number }; layers: { mediaType: string; digest: string; annotations: Record<string, string> }[]; annotations: Record<string, string> };
    expect(manifest.mediaType).toBe(MEDIA_TYPE_OCI_MANIFEST);
    expect(manifest.artifactType).toBe(TYPE);
    expect(manifest.config).toMatchObject({ mediaType: 'application/vnd.oci.empty.v1+json', size: 2 });
    expect(manifest.layers.map((l) => [l.mediaType, l.annotations['org.opencontainers.image.title']])).toEqual([
      ['text/plain', 'README.txt'],
      ['application/vnd.oci.image.layer.v1.tar', 'data.bin'],
    ]);
    expect(manifest.annotations['com.example.owner']).toBe('team');

    const layout = join(scratch, 'layout');
    await skopeo(['copy', '--src-tls-verify=false', `docker://${ref}`, `oci:${layout}:v1`]);
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expect(index.manifests.map((m) => m.digest)).toEqual([pushed.digest]);
    const blob = (d: string) => readFile(join(layout, 'blobs', 'sha256', d.slice('sha256:'.length)));
    expect((await blob(manifest.layers[1]!.digest)).equals(data)).toBe(true);
    expect((await blob(pushed.digest)).toString()).toBe(raw);

    const out = join(scratch, 'pulled');
    const pulled = ok(await berth(['artifact', 'pull', ref, '-o', out]));
    expect(pulled.stdout.trim().split('\n')).toEqual([join(out, 'README.txt'), join(out, 'data.bin')]);
    expect((await readFile(join(out, 'README.txt'))).equals(text)).toBe(true);
    expect((await readFile(join(out, 'data.bin'))).equals(data)).toBe(true);
  });

  it('ls lists an attachment pushed with --subject through the tag fallback, which skopeo reads too', async () => {
    const subjectRef = `${registry.host}/test/signed:v1`;
    const subject = JSON.parse(ok(await berth(['--format', 'json', 'artifact', 'push', subjectRef, join(scratch, 'README.txt'), '--artifact-type', TYPE])).stdout) as { digest: string };
    const sig = JSON.parse(ok(await berth(['--format', 'json', 'artifact', 'push', `${registry.host}/test/signed`, join(scratch, 'sig.txt'), '--artifact-type', SIG, '--subject', subjectRef])).stdout) as { digest: string; subject: string };
    expect(sig.subject).toBe(subject.digest);

    const listed = JSON.parse(ok(await berth(['--format', 'json', 'artifact', 'ls', subjectRef])).stdout) as { via: string; referrers: { digest: string; artifactType: string }[] };
    expect(listed.via).toBe('tag');
    expect(listed.referrers.map((r) => [r.digest, r.artifactType])).toEqual([[sig.digest, SIG]]);
    const table = ok(await berth(['artifact', 'ls', subjectRef])).stdout;
    expect(table).toContain(sig.digest);
    expect(table).toContain(SIG);
    expect(JSON.parse(ok(await berth(['--format', 'json', 'artifact', 'ls', subjectRef, '--artifact-type', SBOM])).stdout).referrers).toEqual([]);

    const fallback = JSON.parse(await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/test/signed:${subject.digest.replace(':', '-')}`])) as { mediaType: string; manifests: { digest: string; artifactType: string }[] };
    expect(fallback.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(fallback.manifests.map((m) => [m.digest, m.artifactType])).toEqual([[sig.digest, SIG]]);
  });

  it('ls uses the referrers API and its artifactType filter where the registry has one', async () => {
    const subjectRef = `${referrers.host}/test/app:v1`;
    ok(await berth(['artifact', 'push', subjectRef, join(scratch, 'README.txt'), '--artifact-type', TYPE]));
    const sig = JSON.parse(ok(await berth(['--format', 'json', 'artifact', 'push', `${referrers.host}/test/app`, join(scratch, 'sig.txt'), '--artifact-type', SIG, '--subject', subjectRef])).stdout) as { digest: string };
    const sbom = JSON.parse(ok(await berth(['--format', 'json', 'artifact', 'push', `${referrers.host}/test/app`, join(scratch, 'data.bin'), '--artifact-type', SBOM, '--subject', subjectRef])).stdout) as { digest: string };
    referrers.requests.length = 0;
    const listed = JSON.parse(ok(await berth(['--format', 'json', 'artifact', 'ls', subjectRef, '--artifact-type', SBOM])).stdout) as { via: string; referrers: { digest: string }[] };
    expect(listed.via).toBe('api');
    expect(listed.referrers.map((r) => r.digest)).toEqual([sbom.digest]);
    expect(referrers.requests.some((r) => r.path.includes('/referrers/') && r.path.includes('artifactType='))).toBe(true);
    const all = JSON.parse(ok(await berth(['--format', 'json', 'artifact', 'ls', subjectRef])).stdout) as { referrers: { digest: string }[] };
    expect(all.referrers.map((r) => r.digest).sort()).toEqual([sig.digest, sbom.digest].sort());
  });

  it("fetch puts the blobs in berthd's content store, held by the lease until it is deleted", async () => {
    const ref = `${registry.host}/test/bundle:v1`;
    const ns = `art-${randomBytes(3).toString('hex')}`;
    const fetched = JSON.parse(ok(await berth(['-n', ns, '--format', 'json', 'artifact', 'fetch', ref])).stdout) as { digest: string; lease: string; blobs: { digest: string }[] };
    expect(fetched.blobs).toHaveLength(4);
    const contentLs = ok(await berthd.ctr(['content', 'ls', '-q'], { namespace: ns })).stdout;
    for (const b of fetched.blobs) expect(contentLs).toContain(b.digest);
    expect(ok(await berthd.ctr(['leases', 'ls', '-q'], { namespace: ns })).stdout.trim()).toBe(fetched.lease);
    // nothing unpacked, no image record made
    expect(ok(await berthd.ctr(['images', 'ls', '-q'], { namespace: ns })).stdout.trim()).toBe('');
    expect(ok(await berthd.ctr(['snapshots', 'ls'], { namespace: ns })).stdout.trim().split('\n').length).toBe(1);
    ok(await berthd.ctr(['leases', 'rm', '--sync', fetched.lease], { namespace: ns }));
    const after = ok(await berthd.ctr(['content', 'ls', '-q'], { namespace: ns })).stdout;
    for (const b of fetched.blobs) expect(after).not.toContain(b.digest);
  });

  it('without --artifact-type or --config, the type is oras\' application/vnd.unknown.artifact.v1', async () => {
    const pushed = JSON.parse(ok(await berth(['--format', 'json', 'artifact', 'push', `${registry.host}/test/untyped:v1`, join(scratch, 'sig.txt')])).stdout) as { artifactType: string };
    expect(pushed.artifactType).toBe('application/vnd.unknown.artifact.v1');
    await writeFile(join(scratch, 'config.json'), '{"k":1}');
    ok(await berth(['artifact', 'push', `${registry.host}/test/configured:v1`, join(scratch, 'sig.txt'), '--config', `${join(scratch, 'config.json')}:application/vnd.example.config.v1+json`]));
    const manifest = JSON.parse(await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/test/configured:v1`])) as { artifactType?: string; config: { mediaType: string; size: number } };
    expect(manifest.artifactType).toBeUndefined();
    expect(manifest.config).toMatchObject({ mediaType: 'application/vnd.example.config.v1+json', size: 7 });
  });

  it('bad input fails with a clear message and writes nothing', async () => {
    const ref = `${registry.host}/test/bad:v1`;
    const missing = await berth(['artifact', 'push', ref, join(scratch, 'nope.bin'), '--artifact-type', TYPE]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/nope\.bin/);
    const badType = await berth(['artifact', 'push', ref, join(scratch, 'sig.txt'), '--artifact-type', 'no-slash']);
    expect(badType.code).toBe(1);
    expect(badType.stderr).toMatch(/artifact type: "no-slash" is not a media type/);
    const badTitle = await berth(['artifact', 'push', ref, '../x.txt', '--artifact-type', SIG]);
    expect(badTitle.code).toBe(1);
    expect(badTitle.stderr).toMatch(/path traversal/);
    const elsewhere = await berth(['artifact', 'push', ref, join(scratch, 'sig.txt'), '--artifact-type', SIG, '--subject', `${registry.host}/test/bundle:v1`]);
    expect(elsewhere.code).toBe(1);
    expect(elsewhere.stderr).toMatch(/repository/);
    // a fetch that fails drops the lease it made, and leaves no blob behind
    const ns = `bad-${randomBytes(3).toString('hex')}`;
    const fetch = await berth(['-n', ns, 'artifact', 'fetch', `${registry.host}/test/bad:nothing`]);
    expect(fetch.code).toBe(1);
    expect(fetch.stderr).toMatch(/not found/);
    expect(ok(await berthd.ctr(['leases', 'ls', '-q'], { namespace: ns })).stdout.trim()).toBe('');
    expect(ok(await berthd.ctr(['content', 'ls', '-q'], { namespace: ns })).stdout.trim()).toBe('');
    const res = await registry.fetch(`${registry.url}/v2/test/bad/tags/list`);
    expect(res.status).toBe(404);
  });
});
