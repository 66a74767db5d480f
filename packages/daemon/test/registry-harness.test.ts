// The registry harness's modes, checked with an independent client (skopeo, containers/image) against Debian's
// docker-registry: a pushed signed schema1 manifest is accepted and served; htpasswd basic auth and Bearer tokens
// from the loopback token server let the right credentials in and keep wrong ones out.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, MEDIA_TYPES, schema1Payload, sha256, signSchema1, type BuiltImage } from '../../../tools/images/index.mjs';
import { hasHtpasswd, hasRegistry, pushLayout, pushSchema1, startRegistry, type Registry } from './registry.js';
import { startTokenServer, type TokenServer } from './token-server.js';

const execFileAsync = promisify(execFile);
const hasSkopeo = existsSync('/usr/bin/skopeo');

/** skopeo inspect of a reference; async, because the token server answers from this process. */
async function skopeoInspect(ref: string, creds?: string, tls: string[] = ['--tls-verify=false']): Promise<{ ok: true; json: { Digest: string; Layers: string[] } } | { ok: false; stderr: string }> {
  const args = ['inspect', ...tls, ...(creds ? ['--creds', creds] : ['--no-creds']), `docker://${ref}`];
  try {
    const { stdout } = await execFileAsync('skopeo', args, { timeout: 60_000 });
    return { ok: true, json: JSON.parse(stdout) as { Digest: string; Layers: string[] } };
  } catch (err) {
    return { ok: false, stderr: String((err as { stderr?: string }).stderr ?? err) };
  }
}

let scratch: string;
let tiny: BuiltImage;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'berth-registry-harness-'));
  tiny = await buildImage('tiny', join(scratch, 'tiny'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe.skipIf(!hasRegistry() || !hasSkopeo)('schema1 manifests', () => {
  let registry: Registry;
  let plain: Registry;
  let image: BuiltImage;
  beforeAll(async () => {
    image = await buildImage('schema1', join(scratch, 'schema1'));
    registry = await startRegistry({ schema1: true });
    plain = await startRegistry();
  });
  afterAll(async () => {
    await registry?.stop();
    await plain?.stop();
  });

  it('a signed schema1 manifest is accepted, served as prettyjws under the digest of its payload, and read by skopeo', async () => {
    const { manifest, digest, payload } = signSchema1(image.schema1!, 'test/schema1', 'latest');
    expect(digest).toBe(sha256(schema1Payload(image.schema1!, 'test/schema1', 'latest')));
    expect(await pushSchema1(registry, image.dir, 'test/schema1:latest', manifest)).toBe(digest);
    const res = await fetch(`${registry.url}/v2/test/schema1/manifests/latest`, { headers: { accept: MEDIA_TYPES.dockerSchema1Signed } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(MEDIA_TYPES.dockerSchema1Signed);
    expect(res.headers.get('docker-content-digest')).toBe(digest);
    const served = JSON.parse(await res.text()) as { schemaVersion: number; fsLayers: { blobSum: string }[]; signatures: unknown[] };
    expect(served.schemaVersion).toBe(1);
    expect(served.signatures.length).toBeGreaterThan(0);
    expect(served.fsLayers.map((l) => l.blobSum)).toEqual(image.schema1!.blobs.map((b) => b.digest));
    expect(JSON.parse(payload.toString('utf8'))).not.toHaveProperty('signatures');
    const inspected = await skopeoInspect(`${registry.host}/test/schema1:latest`);
    expect(inspected.ok, inspected.ok ? '' : inspected.stderr).toBe(true);
    if (inspected.ok) {
      expect(inspected.json.Digest).toBe(digest);
      // schema1 lists layers newest first; skopeo reports them base first
      expect(inspected.json.Layers).toEqual([...image.schema1!.blobs].reverse().map((b) => b.digest));
    }
  });

  it('a manifest signed for another tag, a broken signature, and a registry without schema1 are refused', async () => {
    const other = signSchema1(image.schema1!, 'test/schema1', 'other');
    await expect(pushSchema1(registry, image.dir, 'test/schema1:latest', other.manifest)).rejects.toThrow(/for test\/schema1:other/);
    const good = signSchema1(image.schema1!, 'test/schema1', 'broken').manifest.toString('utf8');
    const tampered = Buffer.from(good.replace('"architecture": "', '"architecture": "x'));
    await expect(pushSchema1(registry, image.dir, 'test/schema1:broken', tampered)).rejects.toThrow(/HTTP 400/);
    const { manifest } = signSchema1(image.schema1!, 'test/schema1', 'latest');
    await expect(pushSchema1(plain, image.dir, 'test/schema1:latest', manifest)).rejects.toThrow(/push schema1 manifest/);
  });
});

describe.skipIf(!hasRegistry() || !hasHtpasswd() || !hasSkopeo)('htpasswd basic auth', () => {
  let registry: Registry;
  beforeAll(async () => {
    registry = await startRegistry({ htpasswd: { alice: 'wonderland', bob: 'builder' } });
    await pushLayout(registry, tiny.dir, 'test/busybox:latest');
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('challenges with Basic, lets each user in with the right password and refuses a wrong one', async () => {
    expect(registry.auth).toBe('basic');
    const res = await fetch(`${registry.url}/v2/test/busybox/manifests/latest`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Basic realm="berth-test-registry"');
    for (const creds of ['alice:wonderland', 'bob:builder']) {
      const ok = await skopeoInspect(`${registry.host}/test/busybox:latest`, creds);
      expect(ok.ok, ok.ok ? '' : ok.stderr).toBe(true);
      if (ok.ok) expect(ok.json.Digest).toBe(tiny.target.digest);
    }
    for (const creds of ['alice:builder', 'mallory:wonderland', undefined]) {
      const refused = await skopeoInspect(`${registry.host}/test/busybox:latest`, creds);
      expect(refused.ok).toBe(false);
      if (!refused.ok) expect(refused.stderr).toMatch(/unauthorized|authentication required/i);
    }
  });
});

describe.skipIf(!hasRegistry() || !hasSkopeo)('Bearer token auth with the loopback token server', () => {
  let tokens: TokenServer;
  let registry: Registry;
  beforeAll(async () => {
    tokens = await startTokenServer({ users: { alice: 'wonderland' } });
    registry = await startRegistry({ tokenServer: tokens });
    await pushLayout(registry, tiny.dir, 'test/busybox:latest');
  });
  afterAll(async () => {
    await registry?.stop();
    await tokens?.stop();
  });

  it('challenges with Bearer naming the realm, service and scope', async () => {
    expect(registry.auth).toBe('token');
    const res = await fetch(`${registry.url}/v2/test/busybox/manifests/latest`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(`Bearer realm="${tokens.realm}",service="${tokens.service}",scope="repository:test/busybox:pull"`);
  });

  it('a client with the right credentials gets a token scoped to the repository and reads the image', async () => {
    const before = tokens.requests.length;
    const ok = await skopeoInspect(`${registry.host}/test/busybox:latest`, 'alice:wonderland');
    expect(ok.ok, ok.ok ? '' : ok.stderr).toBe(true);
    if (ok.ok) expect(ok.json.Digest).toBe(tiny.target.digest);
    const asked = tokens.requests.slice(before);
    expect(asked.length).toBeGreaterThan(0);
    expect(asked[0]).toMatchObject({ method: 'GET', service: tokens.service, scopes: ['repository:test/busybox:pull'], user: 'alice', status: 200 });
  });

  it('wrong credentials get 401 from the token server, and the client fails', async () => {
    const before = tokens.requests.length;
    const refused = await skopeoInspect(`${registry.host}/test/busybox:latest`, 'alice:nope');
    expect(refused.ok).toBe(false);
    expect(tokens.requests.slice(before).map((r) => r.status)).toContain(401);
  });

  it('containerd-style OAuth POST grants work, and the registry refuses a token for another repository', async () => {
    const form = new URLSearchParams({ grant_type: 'password', username: 'alice', password: 'wonderland', service: tokens.service, scope: 'repository:test/busybox:pull', client_id: 'berth-test' });
    const granted = await fetch(tokens.realm, { method: 'POST', body: form });
    expect(granted.status).toBe(200);
    const body = (await granted.json()) as { access_token: string; refresh_token?: string };
    expect(body.refresh_token).toBeTruthy();
    const accept = MEDIA_TYPES.ociManifest;
    const withToken = await fetch(`${registry.url}/v2/test/busybox/manifests/latest`, { headers: { authorization: `Bearer ${body.access_token}`, accept } });
    expect(withToken.status).toBe(200);
    expect(withToken.headers.get('docker-content-digest')).toBe(tiny.target.digest);
    const refreshed = await fetch(tokens.realm, { method: 'POST', body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: body.refresh_token!, service: tokens.service, scope: 'repository:test/busybox:pull' }) });
    expect(refreshed.status).toBe(200);
    const wrong = await fetch(tokens.realm, { method: 'POST', body: new URLSearchParams({ grant_type: 'password', username: 'alice', password: 'x', service: tokens.service }) });
    expect(wrong.status).toBe(401);
    const otherRepo = tokens.issue([{ type: 'repository', name: 'test/other', actions: ['pull'] }], 'alice');
    const refused = await fetch(`${registry.url}/v2/test/busybox/manifests/latest`, { headers: { authorization: `Bearer ${otherRepo}`, accept } });
    expect(refused.status).toBe(401);
    await refused.arrayBuffer();
  });
});

describe.skipIf(!hasRegistry() || !hasSkopeo)('TLS with a test CA, and client certificates', () => {
  let registry: Registry;
  let mutual: Registry;
  beforeAll(async () => {
    registry = await startRegistry({ tls: true });
    mutual = await startRegistry({ tls: { clientCertificates: true } });
    await pushLayout(registry, tiny.dir, 'test/busybox:latest');
    await pushLayout(mutual, tiny.dir, 'test/busybox:latest');
  });
  afterAll(async () => {
    await registry?.stop();
    await mutual?.stop();
  });

  it('serves HTTPS under a certificate for 127.0.0.1 that only the test CA vouches for', async () => {
    expect(registry.url).toBe(`https://${registry.host}`);
    expect(registry.tls?.clientCertPath).toBeUndefined();
    const trusted = await skopeoInspect(`${registry.host}/test/busybox:latest`, undefined, ['--cert-dir', registry.tls!.certsDir]);
    expect(trusted.ok, trusted.ok ? '' : trusted.stderr).toBe(true);
    if (trusted.ok) expect(trusted.json.Digest).toBe(tiny.target.digest);
    const untrusted = await skopeoInspect(`${registry.host}/test/busybox:latest`, undefined, ['--tls-verify=true']);
    expect(untrusted.ok).toBe(false);
    if (!untrusted.ok) expect(untrusted.stderr).toMatch(/certificate/i);
    await expect(fetch(`${registry.url}/v2/`)).rejects.toThrow();
  });

  it('with client certificates, lets in only a client that presents one from the CA', async () => {
    const tls = mutual.tls!;
    expect(tls.clientCertPath).toBeTruthy();
    const withCert = await skopeoInspect(`${mutual.host}/test/busybox:latest`, undefined, ['--cert-dir', tls.certsDir]);
    expect(withCert.ok, withCert.ok ? '' : withCert.stderr).toBe(true);
    const caOnly = join(scratch, 'ca-only');
    await mkdir(caOnly, { recursive: true });
    await copyFile(tls.caPath, join(caOnly, 'ca.crt'));
    const withoutCert = await skopeoInspect(`${mutual.host}/test/busybox:latest`, undefined, ['--cert-dir', caOnly]);
    expect(withoutCert.ok).toBe(false);
    if (!withoutCert.ok) expect(withoutCert.stderr).toMatch(/certificate|tls/i);
  });
});
