// Loopback OCI registry for tests: Debian's `docker-registry` (the CNCF distribution registry, API v2) as a real
// process on 127.0.0.1, with its storage in a temp dir.
//
//   const registry = await startRegistry();          // picks a free port, waits until GET /v2/ answers
//   const { digest, size } = await registry.pushBlob('test/repo', data);
//   const manifestDigest = await registry.pushManifest('test/repo', 'latest', manifest, MEDIA_TYPE_OCI_MANIFEST);
//   ... pull from `${registry.host}/test/repo:latest` (plain HTTP: ctr --plain-http, berth --plain-http) ...
//   await registry.stop();                            // kills the process by PID and removes the temp dir
//
// The registry runs without TLS, with deletes enabled, logging errors only, and by default without auth. Options:
// `schema1: true` accepts pushed Docker schema1 manifests (pushSchema1); `htpasswd: { user: password }` turns on
// basic auth (bcrypt entries written with Debian's htpasswd, apache2-utils); `tokenServer` (token-server.ts) turns
// on Bearer token auth against it. With auth on, the harness's own pushes authenticate as the first user, or with a
// token the token server issues directly; clients under test go through the challenge. `tls: true` serves HTTPS with
// a certificate for 127.0.0.1 from a fresh test CA (`registry.tls.caPath`; `certsDir` has ca.crt, as certs.d and
// skopeo's --cert-dir expect); `tls: { clientCertificates: true }` also requires a client certificate from that CA
// (client.cert and client.key in certsDir). The harness's own requests (registry.fetch) trust that CA. Blobs are pushed with the
// distribution API exactly as a client does (POST /v2/<repo>/blobs/uploads/, then PUT <Location>?digest=<digest>
// with the whole body); manifests with PUT /v2/<repo>/manifests/<tag or digest>. The registry checks a manifest's
// references: push the config and layer blobs before the manifest that names them, and the manifests before an
// index. `root` is the storage root (filesystem driver layout: docker/registry/v2/blobs/sha256/<2 hex>/<hex>/data),
// for tests that tamper with what the registry serves (blobPath gives that file). Every registry started here is
// killed and its dir removed by stop(), and as a last resort when the test process exits.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pushLayout as pushLayoutEntry, type PushedLayout } from '../../../tools/images/push.mjs';
import type { TokenServer } from './token-server.js';

export const REGISTRY_BIN = '/usr/bin/docker-registry';
export const HTPASSWD_BIN = '/usr/bin/htpasswd';
export const hasHtpasswd = (): boolean => existsSync(HTPASSWD_BIN);
export const MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED = 'application/vnd.docker.distribution.manifest.v1+prettyjws';
export const hasRegistry = (): boolean => existsSync(REGISTRY_BIN);

export const MEDIA_TYPE_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MEDIA_TYPE_OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const MEDIA_TYPE_OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const MEDIA_TYPE_OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const MEDIA_TYPE_OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';
export const MEDIA_TYPE_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const MEDIA_TYPE_DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';

export interface PushedBlob {
  readonly digest: string;
  readonly size: number;
}

export interface Registry {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** `127.0.0.1:PORT`: the registry part of references (`${host}/test/repo:tag`). */
  readonly host: string;
  /** Storage root of the filesystem driver. */
  readonly root: string;
  /** How clients must authenticate. */
  readonly auth: 'none' | 'basic' | 'token';
  /** With `tls`: the test CA and, with client certificates, the client's pair. */
  readonly tls: RegistryTls | undefined;
  /** fetch() for the harness's own requests: trusts the test CA and presents the client certificate with TLS. */
  fetch(url: string | URL, init?: RequestInit): Promise<Response>;
  readonly pid: number;
  /** Uploads a blob (POST + monolithic PUT); pushing one that is already there is fine. */
  pushBlob(repo: string, data: Buffer): Promise<PushedBlob>;
  /**
   * PUTs a manifest (or index) under a tag or digest, with `mediaType` as Content-Type. An object is serialised
   * with JSON.stringify; pass a Buffer or string to control the exact bytes. Resolves to the manifest's digest.
   */
  pushManifest(repo: string, ref: string, manifest: object | Buffer | string, mediaType: string): Promise<string>;
  /** Where the registry stores a blob's bytes. */
  blobPath(digest: string): string;
  /**
   * The Authorization header that lets the harness push and pull `repo` without a challenge (the first htpasswd
   * user, or a token the token server issues directly); empty without auth.
   */
  authHeaders(repo: string): Record<string, string>;
  /** Kills the registry (SIGTERM, then SIGKILL after 5 s) and removes its temp dir; safe to call twice. */
  stop(): Promise<void>;
}

export interface RegistryOptions {
  /** How long to wait for GET /v2/ to answer (default 15 s). */
  readonly readyTimeoutMs?: number;
  /** Accept pushed schema1 manifests (`compatibility: schema1: enabled: true`); off by default, as in distribution. */
  readonly schema1?: boolean;
  /** Basic auth: user -> password (stored as bcrypt by htpasswd). */
  readonly htpasswd?: Readonly<Record<string, string>>;
  /** Bearer token auth against this token server (its realm, service, issuer and certificate). */
  readonly tokenServer?: TokenServer;
  /** HTTPS with a test CA; `clientCertificates` makes the registry require a client certificate from it. */
  readonly tls?: boolean | { readonly clientCertificates?: boolean };
}

export interface RegistryTls {
  /** PEM of the CA that signed the registry's certificate (and the client's). */
  readonly caPath: string;
  /** A dir with ca.crt (and client.cert, client.key): containerd's certs.d/<host>/ and skopeo's --cert-dir layout. */
  readonly certsDir: string;
  readonly clientCertPath?: string;
  readonly clientKeyPath?: string;
}

import { sha256Digest } from '@berth/core';

export { sha256Digest };

// Last resort: whatever a test forgot to stop dies with the test process, and its dir goes with it.
const running = new Map<ChildProcess, string>();
process.once('exit', () => {
  for (const [child, dir] of running) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A port that was free a moment ago on 127.0.0.1 (the registry takes a port number, not an fd). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function configYaml(root: string, port: number, auth: string[], schema1: boolean, tls: string[]): string {
  return [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${root}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    `  secret: ${randomBytes(16).toString('hex')}`,
    ...tls,
    ...(schema1 ? ['compatibility:', '  schema1:', '    enabled: true'] : []),
    ...auth,
    '',
  ].join('\n');
}

const execFileAsync = promisify(execFile);

/**
 * A test CA, a certificate for 127.0.0.1 signed by it and, when asked, a client certificate (openssl, EC P-256);
 * returns the `http.tls` config lines and where the files are.
 */
async function makeTls(dir: string, clientCertificates: boolean): Promise<{ config: string[]; tls: RegistryTls }> {
  const certsDir = join(dir, 'certs.d');
  await mkdir(certsDir);
  const openssl = (...args: string[]) => execFileAsync('openssl', args, { cwd: dir });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const caPath = join(certsDir, 'ca.crt');
  await openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', caPath, '-days', '2', '-subj', '/CN=berth-test-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  const issue = async (name: string, subject: string, extensions: string, certOut: string, keyOut: string) => {
    await writeFile(join(dir, `${name}.ext`), extensions);
    await openssl('req', ...ec, '-keyout', keyOut, '-out', `${name}.csr`, '-subj', subject);
    await openssl('x509', '-req', '-in', `${name}.csr`, '-CA', caPath, '-CAkey', 'ca.key', '-CAserial', 'ca.srl', '-CAcreateserial', '-days', '2', '-out', certOut, '-extfile', `${name}.ext`);
  };
  await issue('server', '/CN=127.0.0.1', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n', join(dir, 'server.crt'), join(dir, 'server.key'));
  const config = ['  tls:', `    certificate: ${join(dir, 'server.crt')}`, `    key: ${join(dir, 'server.key')}`];
  if (!clientCertificates) return { config, tls: { caPath, certsDir } };
  const clientCertPath = join(certsDir, 'client.cert');
  const clientKeyPath = join(certsDir, 'client.key');
  await issue('client', '/CN=berth-test-client', 'extendedKeyUsage=clientAuth\n', clientCertPath, clientKeyPath);
  config.push('    clientcas:', `      - ${caPath}`);
  return { config, tls: { caPath, certsDir, clientCertPath, clientKeyPath } };
}

/** fetch() over node:https with a custom CA and client certificate (global fetch takes neither). */
async function fetchTls(url: string | URL, init: RequestInit, tls: { ca: Buffer; cert?: Buffer; key?: Buffer }): Promise<Response> {
  const body = init.body === undefined || init.body === null ? undefined : Buffer.from(init.body as Buffer | string);
  const headers = Object.fromEntries(new Headers(init.headers).entries());
  if (body) headers['content-length'] = String(body.length);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: init.method ?? 'GET', headers, ca: tls.ca, cert: tls.cert, key: tls.key, signal: init.signal ?? undefined }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('error', reject);
      res.once('end', () => {
        const out = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out.set(k, Array.isArray(v) ? v.join(', ') : v);
        const status = res.statusCode ?? 0;
        const noBody = status === 204 || status === 304 || init.method === 'HEAD';
        resolve(new Response(noBody ? null : Buffer.concat(chunks), { status, statusText: res.statusMessage ?? '', headers: out }));
      });
    });
    req.once('error', reject);
    req.end(body);
  });
}

/** The `auth:` section for the options, writing the htpasswd file into dir when asked for. */
async function authConfig(dir: string, options: RegistryOptions): Promise<string[]> {
  if (options.htpasswd && options.tokenServer) throw new Error('startRegistry: htpasswd or tokenServer, not both');
  if (options.htpasswd) {
    if (!hasHtpasswd()) throw new Error(`${HTPASSWD_BIN} is missing (apt-get install apache2-utils)`);
    const lines: string[] = [];
    for (const [user, password] of Object.entries(options.htpasswd)) {
      // -B: bcrypt, the only hash distribution's htpasswd accepts; -C 4: the cheapest cost, this is a test
      const { stdout } = await execFileAsync(HTPASSWD_BIN, ['-nbB', '-C', '4', user, password]);
      lines.push(stdout.trim());
    }
    const path = join(dir, 'htpasswd');
    await writeFile(path, `${lines.join('\n')}\n`, { mode: 0o600 });
    return ['auth:', '  htpasswd:', '    realm: berth-test-registry', `    path: ${path}`];
  }
  if (options.tokenServer) {
    const t = options.tokenServer;
    return ['auth:', '  token:', `    realm: ${t.realm}`, `    service: ${t.service}`, `    issuer: ${t.issuer}`, `    rootcertbundle: ${t.certPath}`];
  }
  return [];
}

const repoPattern = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

function checkRepo(repo: string): void {
  if (!repoPattern.test(repo)) throw new Error(`invalid repository name ${JSON.stringify(repo)}`);
}

async function expectStatus(res: Response, status: number, what: string): Promise<void> {
  if (res.status !== status) throw new Error(`${what}: HTTP ${res.status} ${res.statusText}: ${await res.text()}`);
}

class LoopbackRegistry implements Registry {
  readonly url: string;
  readonly host: string;
  private output = '';
  private stopped: Promise<void> | undefined;
  private failed = false;
  readonly exited: Promise<void>;

  readonly auth: 'none' | 'basic' | 'token';
  private readonly tlsFiles: { ca: Buffer; cert?: Buffer; key?: Buffer } | undefined;

  constructor(
    private readonly dir: string,
    readonly root: string,
    port: number,
    private readonly child: ChildProcess,
    private readonly options: RegistryOptions = {},
    readonly tls: RegistryTls | undefined = undefined,
  ) {
    this.auth = options.htpasswd ? 'basic' : options.tokenServer ? 'token' : 'none';
    this.host = `127.0.0.1:${port}`;
    this.url = `${tls ? 'https' : 'http'}://${this.host}`;
    this.tlsFiles = tls
      ? {
          ca: readFileSync(tls.caPath),
          cert: tls.clientCertPath ? readFileSync(tls.clientCertPath) : undefined,
          key: tls.clientKeyPath ? readFileSync(tls.clientKeyPath) : undefined,
        }
      : undefined;
    running.set(child, dir);
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.exited = new Promise((resolve) => {
      const done = () => {
        running.delete(child);
        resolve();
      };
      child.once('exit', done);
      // spawn failures emit 'error' and never 'exit'
      child.once('error', (err) => {
        this.failed = true;
        this.output += `${err.message}\n`;
        done();
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  get logs(): string {
    return this.output;
  }

  get alive(): boolean {
    return !this.failed && this.child.exitCode === null && this.child.signalCode === null;
  }

  fetch(url: string | URL, init: RequestInit = {}): Promise<Response> {
    return this.tlsFiles ? fetchTls(url, init, this.tlsFiles) : fetch(url, init);
  }

  /** Resolves when GET /v2/ answers 200; rejects with the registry's output if it exits first or never answers. */
  async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.alive) throw new Error(`docker-registry exited before it was ready:\n${this.output}`);
      try {
        const res = await this.fetch(`${this.url}/v2/`, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        // with auth on, the unauthenticated GET /v2/ answers 401 with a challenge: that is ready too
        if (res.status === 200 || (this.auth !== 'none' && res.status === 401)) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`docker-registry did not answer GET /v2/ within ${timeoutMs} ms:\n${this.output}`);
  }

  authHeaders(repo: string): Record<string, string> {
    const { htpasswd, tokenServer } = this.options;
    if (htpasswd) {
      const [user, password] = Object.entries(htpasswd)[0] ?? [];
      if (user === undefined) throw new Error('startRegistry: htpasswd has no users');
      return { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` };
    }
    if (tokenServer) return { authorization: `Bearer ${tokenServer.issue([{ type: 'repository', name: repo, actions: ['pull', 'push'] }], 'berth-harness')}` };
    return {};
  }

  async pushBlob(repo: string, data: Buffer): Promise<PushedBlob> {
    checkRepo(repo);
    const digest = sha256Digest(data);
    const headers = this.authHeaders(repo);
    const started = await this.fetch(`${this.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers });
    await expectStatus(started, 202, `start upload to ${repo}`);
    const location = started.headers.get('location');
    if (!location) throw new Error(`start upload to ${repo}: no Location header`);
    const upload = new URL(location, this.url);
    upload.searchParams.set('digest', digest);
    const put = await this.fetch(upload, {
      method: 'PUT',
      body: data,
      headers: { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(data.length) },
    });
    await expectStatus(put, 201, `upload ${digest} to ${repo}`);
    return { digest, size: data.length };
  }

  async pushManifest(repo: string, ref: string, manifest: object | Buffer | string, mediaType: string): Promise<string> {
    checkRepo(repo);
    const body = Buffer.isBuffer(manifest) ? manifest : Buffer.from(typeof manifest === 'string' ? manifest : JSON.stringify(manifest));
    const digest = sha256Digest(body);
    const res = await this.fetch(`${this.url}/v2/${repo}/manifests/${ref}`, {
      method: 'PUT',
      body,
      headers: { ...this.authHeaders(repo), 'content-type': mediaType },
    });
    await expectStatus(res, 201, `push manifest ${repo}:${ref}`);
    const reported = res.headers.get('docker-content-digest');
    if (reported && reported !== digest) throw new Error(`push manifest ${repo}:${ref}: registry says ${reported}, expected ${digest}`);
    return digest;
  }

  blobPath(digest: string): string {
    const [algorithm, hex] = digest.split(':') as [string, string];
    return join(this.root, 'docker/registry/v2/blobs', algorithm, hex.slice(0, 2), hex, 'data');
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      if (this.alive) {
        this.child.kill('SIGTERM');
        const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
        await this.exited;
        clearTimeout(timer);
      }
      await rm(this.dir, { recursive: true, force: true });
    })();
    return this.stopped;
  }
}

/** Starts a registry on a free loopback port; retries on another port if the one picked was taken meanwhile. */
export async function startRegistry(options: RegistryOptions = {}): Promise<Registry> {
  if (!hasRegistry()) throw new Error(`${REGISTRY_BIN} is missing (apt-get install docker-registry)`);
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = await mkdtemp(join(tmpdir(), 'berth-registry-'));
    const root = join(dir, 'data');
    const port = await freePort();
    const config = join(dir, 'config.yml');
    let tls: { config: string[]; tls: RegistryTls } | undefined;
    try {
      if (options.tls) tls = await makeTls(dir, typeof options.tls === 'object' && options.tls.clientCertificates === true);
      await writeFile(config, configYaml(root, port, await authConfig(dir, options), options.schema1 ?? false, tls?.config ?? []));
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    const child = spawn(REGISTRY_BIN, ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    const registry = new LoopbackRegistry(dir, root, port, child, options, tls?.tls);
    try {
      await registry.waitReady(options.readyTimeoutMs ?? 15_000);
      return registry;
    } catch (err) {
      lastError = err;
      await registry.stop();
      if (!/address already in use/.test(registry.logs)) break;
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

export type { PushedLayout } from '../../../tools/images/push.mjs';

export interface PushLayoutOptions {
  /**
   * The `org.opencontainers.image.ref.name` of the layout entry to push; default: the only entry, or `latest`.
   */
  readonly refName?: string;
}

/**
 * Pushes an OCI image layout's entry (tools/images builds them) to `repo:tag`, as a client does: for each manifest
 * its config and layers first, then the manifest by digest; an index after all its manifests; the tag last. Blobs
 * a manifest shares with another are pushed once. Docker media types (manifest list, v2 manifest) work alike. The
 * walk is tools/images/push.mjs's (tools/bench uses it too, with registryClient()).
 *
 *   const image = await buildImage('tiny', dir);                 // tools/images
 *   const { reference } = await pushLayout(registry, image.dir, 'test/busybox:latest');
 */
export function pushLayout(registry: Registry, layoutDir: string, repoAndTag: string, options: PushLayoutOptions = {}): Promise<PushedLayout> {
  return pushLayoutEntry(registry, layoutDir, repoAndTag, options);
}

/**
 * Pushes a signed schema1 manifest (tools/images: `signSchema1(image.schema1, repo, tag).manifest`) with its
 * fsLayers blobs from the layout, to a registry started with `schema1: true`. Resolves to the registry's digest of
 * it (over the canonical bytes, the manifest without its signatures).
 */
export async function pushSchema1(registry: Registry, layoutDir: string, repoAndTag: string, manifest: Buffer): Promise<string> {
  const colon = repoAndTag.lastIndexOf(':');
  if (colon <= 0) throw new Error(`pushSchema1: want <repo>:<tag>, got ${JSON.stringify(repoAndTag)}`);
  const repo = repoAndTag.slice(0, colon);
  const tag = repoAndTag.slice(colon + 1);
  const doc = JSON.parse(manifest.toString('utf8')) as { name?: string; tag?: string; fsLayers?: { blobSum: string }[] };
  if (doc.name !== repo || doc.tag !== tag) throw new Error(`pushSchema1: the manifest is for ${doc.name}:${doc.tag}, not ${repoAndTag} (the registry refuses that)`);
  for (const digest of new Set((doc.fsLayers ?? []).map((l) => l.blobSum))) {
    const data = await readFile(join(layoutDir, 'blobs', 'sha256', digest.replace(/^sha256:/, '')));
    await registry.pushBlob(repo, data);
  }
  const repoUrl = `${registry.url}/v2/${repo}/manifests/${tag}`;
  // pushManifest checks Docker-Content-Digest against the bytes sent; schema1's digest is over other bytes
  const res = await registry.fetch(repoUrl, {
    method: 'PUT',
    body: manifest,
    headers: { ...registry.authHeaders(repo), 'content-type': MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED },
  });
  await expectStatus(res, 201, `push schema1 manifest ${repoAndTag}`);
  const digest = res.headers.get('docker-content-digest');
  if (!digest) throw new Error(`push schema1 manifest ${repoAndTag}: no Docker-Content-Digest`);
  return digest;
}
