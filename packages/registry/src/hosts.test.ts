// hosts.toml and certs.d: the rules of containerd 1.6's remotes/docker/config, mirrors tried before the upstream,
// and TLS with a CA and a client certificate the test makes with openssl.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, afterAll, describe, expect, it } from 'vitest';
import { failureOf } from '@berth/core/testing';
import { configureHosts, hostDirCandidates, isLocalhost } from './hosts.js';
import { collectBytes } from './testing/fake-registry.js';
import { registryTestScope } from './testing/scope.js';

const LAYER = 'application/vnd.oci.image.layer.v1.tar';
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const { defer, registry, resolver } = registryTestScope({ credentials: async () => undefined, retryDelayMs: 10, retries: 1 });
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-hosts-'));
  defer(() => rm(dir, { recursive: true, force: true }));
  return dir;
}
async function hostsToml(root: string, host: string, text: string): Promise<string> {
  const dir = join(root, host.replace(/:(\d+)$/, '_$1_'));
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'hosts.toml'), text);
  return dir;
}

describe('default hosts (no hosts dir)', () => {
  it('loopback and localhost are plain http with verification off; others https unless plainHttp; docker.io is registry-1', () => {
    for (const host of ['127.0.0.1:5000', '127.1.2.3', 'localhost:5000', 'localhost', '[::1]:5000', '::1']) {
      expect(isLocalhost(host), host).toBe(true);
      expect(configureHosts(host)[0]).toMatchObject({ scheme: 'http', host, path: '/v2', tls: { skipVerify: true } });
    }
    for (const host of ['registry.example', '10.0.0.1:5000', '[fe80::1]:5000', 'localhost.example']) expect(isLocalhost(host), host).toBe(false);
    expect(configureHosts('registry.example:5000')[0]).toMatchObject({ scheme: 'https', host: 'registry.example:5000' });
    expect(configureHosts('registry.example', { plainHttp: true })[0]).toMatchObject({ scheme: 'http' });
    expect(configureHosts('docker.io')[0]).toMatchObject({ scheme: 'https', host: 'registry-1.docker.io' });
    expect([...configureHosts('registry.example')[0]!.capabilities].sort()).toEqual(['pull', 'push', 'resolve']);
  });

  it('looks for host_port_, then host, then _default', () => {
    expect(hostDirCandidates('/etc/berth/certs.d', 'reg.example:5000')).toEqual([
      '/etc/berth/certs.d/reg.example_5000_',
      '/etc/berth/certs.d/reg.example:5000',
      '/etc/berth/certs.d/_default',
    ]);
  });
});

describe('hosts.toml', () => {
  it('parses mirrors in file order, then the server; capabilities, override_path, relative ca and client pairs, headers', async () => {
    const root = await tempDir();
    const dir = await hostsToml(
      root,
      'reg.example:5000',
      `server = "https://reg.example:5000"
ca = "upstream-ca.pem"

[host."http://mirror-b.local:8080"]
  capabilities = ["pull", "resolve"]
  header = { "X-Mirror" = "b" }

[host."https://mirror-a.local/custom/api"]
  capabilities = ["pull"]
  override_path = true
  skip_verify = true
  client = [["/abs/client.crt", "client.key"], "both.pem"]
`,
    );
    const hosts = configureHosts('reg.example:5000', { hostsDir: root });
    expect(hosts.map((h) => `${h.scheme}://${h.host}${h.path} ${[...h.capabilities].join(',')}`)).toEqual([
      'http://mirror-b.local:8080/v2 pull,resolve',
      'https://mirror-a.local/custom/api pull',
      'https://reg.example:5000/v2 pull,resolve,push',
    ]);
    expect(hosts[0]!.headers).toEqual({ 'X-Mirror': ['b'] });
    expect(hosts[1]!.tls).toEqual({ ca: [], client: [['/abs/client.crt', join(dir, 'client.key')], [join(dir, 'both.pem'), '']], skipVerify: true });
    expect(hosts[2]!.tls.ca).toEqual([join(dir, 'upstream-ca.pem')]);
  });

  it('without hosts.toml, reads the directory as Docker certs.d: *.crt CAs, *.cert with their *.key', async () => {
    const root = await tempDir();
    const dir = join(root, 'reg.example_5000_');
    await mkdir(dir);
    for (const f of ['ca.crt', 'other.crt', 'client.cert', 'client.key', 'lonely.cert', 'README']) await writeFile(join(dir, f), '');
    const [host] = configureHosts('reg.example:5000', { hostsDir: root });
    expect(host).toMatchObject({ scheme: 'https', host: 'reg.example:5000', path: '/v2' });
    expect([...host!.tls.ca].sort()).toEqual([join(dir, 'ca.crt'), join(dir, 'other.crt')]);
    expect([...host!.tls.client].sort()).toEqual([[join(dir, 'client.cert'), join(dir, 'client.key')], [join(dir, 'lonely.cert'), '']]);
    // _default serves every host without its own directory
    await mkdir(join(root, '_default'));
    await writeFile(join(root, '_default', 'hosts.toml'), '[host."https://mirror.example"]\n  capabilities = ["pull"]\n');
    expect(configureHosts('other.example', { hostsDir: root }).map((h) => h.host)).toEqual(['mirror.example', 'other.example']);
  });

  it('refuses a hosts.toml that does not parse, or has an unknown key or capability, naming the file', async () => {
    const root = await tempDir();
    await hostsToml(root, 'a.example', 'server = "https://a.example"\n[host."https://m"\n');
    await hostsToml(root, 'b.example', '[host."https://m"]\n  capabilitys = ["pull"]\n');
    await hostsToml(root, 'c.example', '[host."https://m"]\n  capabilities = ["pull", "delete"]\n');
    for (const [host, why] of [['a.example', 'not valid TOML'], ['b.example', 'unknown key "capabilitys"'], ['c.example', 'unknown capability "delete"']] as const) {
      let message = '';
      try {
        configureHosts(host, { hostsDir: root });
      } catch (err) {
        expect((err as { errdef?: string }).errdef).toBe('invalid-argument');
        message = (err as Error).message;
      }
      expect(message).toContain(join(root, host, 'hosts.toml'));
      expect(message).toContain(why);
    }
  });

  it('uses a mirror before the upstream (with ?ns=), falls back to the upstream for what the mirror lacks, and resolves tags only where allowed', async () => {
    const upstream = await registry();
    const mirror = await registry();
    const pullOnly = await registry();
    const data = randomBytes(10_000);
    const inMirror = randomBytes(5_000);
    const body = { schemaVersion: 2, mediaType: MANIFEST };
    const digest = mirror.addManifest('test/app', 'v1', MANIFEST, body);
    upstream.addManifest('test/app', 'v1', MANIFEST, body);
    pullOnly.addManifest('test/app', 'v1', MANIFEST, body);
    const upstreamBlob = upstream.addBlob('test/app', data);
    const mirrorBlob = mirror.addBlob('test/app', inMirror);
    const root = await tempDir();
    await hostsToml(
      root,
      upstream.host,
      `server = "http://${upstream.host}"

[host."http://${pullOnly.host}"]
  capabilities = ["pull"]

[host."http://${mirror.host}"]
  capabilities = ["pull", "resolve"]
`,
    );
    const r = resolver({ hostsDir: root });
    const resolved = await r.resolve(`${upstream.host}/test/app:v1`);
    expect(resolved.descriptor.digest).toBe(digest);
    // the pull-only mirror is not asked to resolve a tag; the resolving mirror answers, so the upstream is not asked
    expect(pullOnly.requests).toHaveLength(0);
    expect(mirror.requests.map((q) => `${q.method} ${q.url}`)).toEqual([`HEAD /v2/test/app/manifests/v1?ns=${encodeURIComponent(upstream.host)}`]);
    expect(upstream.requests).toHaveLength(0);

    const fetcher = r.fetcher(resolved.name);
    expect((await collectBytes((await fetcher.fetch({ mediaType: LAYER, digest: mirrorBlob, size: inMirror.length })).chunks)).equals(inMirror)).toBe(true);
    expect((await collectBytes((await fetcher.fetch({ mediaType: LAYER, digest: upstreamBlob, size: data.length })).chunks)).equals(data)).toBe(true);
    // the upstream blob was looked for in both mirrors first (404s), in file order
    expect(pullOnly.requests.map((q) => q.url)).toEqual([`/v2/test/app/blobs/${mirrorBlob}?ns=${encodeURIComponent(upstream.host)}`, `/v2/test/app/blobs/${upstreamBlob}?ns=${encodeURIComponent(upstream.host)}`]);
    expect(upstream.requests.map((q) => q.url)).toEqual([`/v2/test/app/blobs/${upstreamBlob}`]);
  });

  it('override_path: the API root is the URL path as written', async () => {
    const reg = await registry({
      hook: (req, res) => {
        if (!req.url?.startsWith('/custom/')) return false;
        req.url = req.url.replace('/custom/', '/v2/');
        return false;
      },
    });
    reg.addManifest('test/app', 'v1', MANIFEST, { schemaVersion: 2 });
    const root = await tempDir();
    await hostsToml(root, 'unreachable.example', `server = "http://${reg.host}/custom"\noverride_path = true\n`);
    await resolver({ hostsDir: root }).resolve('unreachable.example/test/app:v1');
    expect(reg.requests[0]!.url).toBe('/custom/test/app/manifests/v1?ns=unreachable.example');
  });
});

describe('TLS from the hosts dir', () => {
  let pki: string;
  const have = (() => {
    try {
      execFileSync('openssl', ['version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

  beforeAll(async () => {
    if (!have) return;
    pki = await mkdtemp(join(tmpdir(), 'berth-pki-'));
    const ossl = (...args: string[]) => execFileSync('openssl', args, { cwd: pki, stdio: 'pipe' });
    ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=berth test CA');
    for (const [name, ext] of [['server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth'], ['client', 'extendedKeyUsage=clientAuth']] as const) {
      await writeFile(join(pki, `${name}.ext`), `${ext}\n`);
      ossl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name === 'server' ? '127.0.0.1' : 'berth client'}`);
      ossl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`);
    }
  });
  afterAll(async () => {
    if (pki) await rm(pki, { recursive: true, force: true });
  });

  it.skipIf(!have)('trusts the CA of hosts.toml and presents the client certificate; without them the handshake fails clearly', async () => {
    const read = (f: string) => readFile(join(pki, f));
    const reg = await registry({ tls: { key: await read('server.key'), cert: await read('server.crt'), ca: await read('ca.crt'), requestCert: true, rejectUnauthorized: true } });
    const digest = reg.addManifest('test/app', 'v1', MANIFEST, { schemaVersion: 2 });
    const root = await tempDir();
    await hostsToml(root, reg.host, `server = "https://${reg.host}"\nca = "${join(pki, 'ca.crt')}"\nclient = [["${join(pki, 'client.crt')}", "${join(pki, 'client.key')}"]]\n`);
    expect((await resolver({ hostsDir: root }).resolve(`${reg.host}/test/app:v1`)).descriptor.digest).toBe(digest);
    expect(reg.requests).toHaveLength(1);

    // no client certificate: the server refuses the handshake
    const noClient = await tempDir();
    await hostsToml(noClient, reg.host, `server = "https://${reg.host}"\nca = "${join(pki, 'ca.crt')}"\n`);
    const refused = await failureOf(resolver({ hostsDir: noClient }).resolve(`${reg.host}/test/app:v1`));
    expect(refused.errdef).toBe('unavailable');
    expect(refused.message).toContain(`cannot reach registry ${reg.host}`);

    // no CA: the server's certificate is not trusted
    const noCa = await tempDir();
    await hostsToml(noCa, reg.host, `server = "https://${reg.host}"\nclient = [["${join(pki, 'client.crt')}", "${join(pki, 'client.key')}"]]\n`);
    const untrusted = await failureOf(resolver({ hostsDir: noCa }).resolve(`${reg.host}/test/app:v1`));
    expect(untrusted.errdef).toBe('unavailable');
    expect(untrusted.message).toMatch(/certificate/i);
    expect(reg.requests).toHaveLength(1);
  });

  it.skipIf(!have)('asks a token realm on the same TLS host with that host\'s CA and client certificate', async () => {
    const read = (f: string) => readFile(join(pki, f));
    let realm = '';
    const reg = await registry({
      tls: { key: await read('server.key'), cert: await read('server.crt'), ca: await read('ca.crt'), requestCert: true, rejectUnauthorized: true },
      hook: (req, res) => {
        if (req.url?.startsWith('/token')) {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{"token":"t0"}');
          return true;
        }
        if (req.headers.authorization === 'Bearer t0') return false;
        res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm}",service="s"` });
        res.end();
        return true;
      },
    });
    realm = `${reg.url}/token`;
    const digest = reg.addManifest('test/app', 'v1', MANIFEST, { schemaVersion: 2 });
    const root = await tempDir();
    await hostsToml(root, reg.host, `server = "https://${reg.host}"\nca = "${join(pki, 'ca.crt')}"\nclient = [["${join(pki, 'client.crt')}", "${join(pki, 'client.key')}"]]\n`);
    expect((await resolver({ hostsDir: root }).resolve(`${reg.host}/test/app:v1`)).descriptor.digest).toBe(digest);
    expect(reg.requests.map((q) => q.url.split('?')[0])).toEqual(['/v2/test/app/manifests/v1', '/token', '/v2/test/app/manifests/v1']);
  });

  it.skipIf(!have)('a CA file that is missing is an InvalidArgumentError naming it', async () => {
    const root = await tempDir();
    await hostsToml(root, 'reg.example', `server = "https://reg.example"\nca = "nope.pem"\n`);
    const err = await failureOf(resolver({ hostsDir: root }).resolve('reg.example/test/app:v1'));
    expect(err.errdef).toBe('invalid-argument');
    expect(err.message).toContain(join(root, 'reg.example', 'nope.pem'));
  });
});
