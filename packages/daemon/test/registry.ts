// Loopback OCI registry for tests: Debian's `docker-registry` (the CNCF distribution registry, API v2) as a real
// process on 127.0.0.1, with its storage in a temp dir.
//
//   const registry = await startRegistry();          // picks a free port, waits until GET /v2/ answers
//   const { digest, size } = await registry.pushBlob('test/repo', data);
//   const manifestDigest = await registry.pushManifest('test/repo', 'latest', manifest, MEDIA_TYPE_OCI_MANIFEST);
//   ... pull from `${registry.host}/test/repo:latest` (plain HTTP: ctr --plain-http, berth --plain-http) ...
//   await registry.stop();                            // kills the process by PID and removes the temp dir
//
// The registry runs without auth or TLS, with deletes enabled, logging errors only. Blobs are pushed with the
// distribution API exactly as a client does (POST /v2/<repo>/blobs/uploads/, then PUT <Location>?digest=<digest>
// with the whole body); manifests with PUT /v2/<repo>/manifests/<tag or digest>. The registry checks a manifest's
// references: push the config and layer blobs before the manifest that names them, and the manifests before an
// index. `root` is the storage root (filesystem driver layout: docker/registry/v2/blobs/sha256/<2 hex>/<hex>/data),
// for tests that tamper with what the registry serves (blobPath gives that file). Every registry started here is
// killed and its dir removed by stop(), and as a last resort when the test process exits.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REGISTRY_BIN = '/usr/bin/docker-registry';
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
  /** Kills the registry (SIGTERM, then SIGKILL after 5 s) and removes its temp dir; safe to call twice. */
  stop(): Promise<void>;
}

export interface RegistryOptions {
  /** How long to wait for GET /v2/ to answer (default 15 s). */
  readonly readyTimeoutMs?: number;
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

function configYaml(root: string, port: number): string {
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
    '',
  ].join('\n');
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

  constructor(
    private readonly dir: string,
    readonly root: string,
    port: number,
    private readonly child: ChildProcess,
  ) {
    this.host = `127.0.0.1:${port}`;
    this.url = `http://${this.host}`;
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

  /** Resolves when GET /v2/ answers 200; rejects with the registry's output if it exits first or never answers. */
  async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.alive) throw new Error(`docker-registry exited before it was ready:\n${this.output}`);
      try {
        const res = await fetch(`${this.url}/v2/`, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        if (res.status === 200) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`docker-registry did not answer GET /v2/ within ${timeoutMs} ms:\n${this.output}`);
  }

  async pushBlob(repo: string, data: Buffer): Promise<PushedBlob> {
    checkRepo(repo);
    const digest = sha256Digest(data);
    const started = await fetch(`${this.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    await expectStatus(started, 202, `start upload to ${repo}`);
    const location = started.headers.get('location');
    if (!location) throw new Error(`start upload to ${repo}: no Location header`);
    const upload = new URL(location, this.url);
    upload.searchParams.set('digest', digest);
    const put = await fetch(upload, {
      method: 'PUT',
      body: data,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(data.length) },
    });
    await expectStatus(put, 201, `upload ${digest} to ${repo}`);
    return { digest, size: data.length };
  }

  async pushManifest(repo: string, ref: string, manifest: object | Buffer | string, mediaType: string): Promise<string> {
    checkRepo(repo);
    const body = Buffer.isBuffer(manifest) ? manifest : Buffer.from(typeof manifest === 'string' ? manifest : JSON.stringify(manifest));
    const digest = sha256Digest(body);
    const res = await fetch(`${this.url}/v2/${repo}/manifests/${ref}`, {
      method: 'PUT',
      body,
      headers: { 'content-type': mediaType },
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
    await writeFile(config, configYaml(root, port));
    const child = spawn(REGISTRY_BIN, ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    const registry = new LoopbackRegistry(dir, root, port, child);
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

/** What pushLayout pushed. */
export interface PushedLayout {
  /** `${registry.host}/${repo}:${tag}`: the reference to pull. */
  readonly reference: string;
  readonly repo: string;
  readonly tag: string;
  /** Digest and media type of what the tag points at (the layout entry: an index or a manifest). */
  readonly digest: string;
  readonly mediaType: string;
  /** Every manifest and index pushed, children before parents. */
  readonly manifests: readonly string[];
  /** Every blob pushed (configs and layers), in push order, each once. */
  readonly blobs: readonly string[];
}

export interface PushLayoutOptions {
  /**
   * The `org.opencontainers.image.ref.name` of the layout entry to push; default: the only entry, or `latest`.
   */
  readonly refName?: string;
}

interface LayoutDescriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly annotations?: Readonly<Record<string, string>>;
}

const INDEX_TYPES = new Set([MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_DOCKER_MANIFEST_LIST]);
const MANIFEST_TYPES = new Set([MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST]);
const REF_NAME = 'org.opencontainers.image.ref.name';

async function layoutBlob(dir: string, descriptor: LayoutDescriptor): Promise<Buffer> {
  const match = /^sha256:([0-9a-f]{64})$/.exec(descriptor.digest);
  if (!match) throw new Error(`layout ${dir}: unsupported digest ${JSON.stringify(descriptor.digest)}`);
  const data = await readFile(join(dir, 'blobs', 'sha256', match[1]!));
  if (sha256Digest(data) !== descriptor.digest) throw new Error(`layout ${dir}: blob ${descriptor.digest} does not match its digest`);
  if (data.length !== descriptor.size) throw new Error(`layout ${dir}: blob ${descriptor.digest} is ${data.length} bytes, its descriptor says ${descriptor.size}`);
  return data;
}

/**
 * Pushes an OCI image layout's entry (tools/images builds them) to `repo:tag`, as a client does: for each manifest
 * its config and layers first, then the manifest by digest; an index after all its manifests; the tag last. Blobs
 * a manifest shares with another are pushed once. Docker media types (manifest list, v2 manifest) work alike.
 *
 *   const image = await buildImage('tiny', dir);                 // tools/images
 *   const { reference } = await pushLayout(registry, image.dir, 'test/busybox:latest');
 */
export async function pushLayout(registry: Registry, layoutDir: string, repoAndTag: string, options: PushLayoutOptions = {}): Promise<PushedLayout> {
  const colon = repoAndTag.lastIndexOf(':');
  if (colon <= 0 || repoAndTag.includes('@')) throw new Error(`pushLayout: want <repo>:<tag>, got ${JSON.stringify(repoAndTag)}`);
  const repo = repoAndTag.slice(0, colon);
  const tag = repoAndTag.slice(colon + 1);
  const index = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as { manifests?: LayoutDescriptor[] };
  const entries = index.manifests ?? [];
  const named = (name: string) => entries.find((m) => m.annotations?.[REF_NAME] === name);
  const entry = options.refName !== undefined ? named(options.refName) : entries.length === 1 ? entries[0] : named('latest');
  if (!entry) {
    const names = entries.map((m) => m.annotations?.[REF_NAME] ?? m.digest).join(', ') || 'nothing';
    throw new Error(`pushLayout: ${layoutDir} has no entry ${options.refName ?? '(only one, or latest)'}; it has ${names}`);
  }

  const blobs: string[] = [];
  const manifests: string[] = [];
  const pushedBlobs = new Set<string>();
  const pushedManifests = new Set<string>();
  const pushBlobOnce = async (descriptor: LayoutDescriptor) => {
    if (pushedBlobs.has(descriptor.digest)) return;
    await registry.pushBlob(repo, await layoutBlob(layoutDir, descriptor));
    pushedBlobs.add(descriptor.digest);
    blobs.push(descriptor.digest);
  };
  const push = async (descriptor: LayoutDescriptor, ref: string): Promise<void> => {
    const data = await layoutBlob(layoutDir, descriptor);
    if (INDEX_TYPES.has(descriptor.mediaType)) {
      const doc = JSON.parse(data.toString('utf8')) as { manifests?: LayoutDescriptor[] };
      for (const child of doc.manifests ?? []) {
        if (!pushedManifests.has(child.digest)) await push(child, child.digest);
      }
    } else if (MANIFEST_TYPES.has(descriptor.mediaType)) {
      const doc = JSON.parse(data.toString('utf8')) as { config?: LayoutDescriptor; layers?: LayoutDescriptor[] };
      if (!doc.config) throw new Error(`pushLayout: manifest ${descriptor.digest} has no config`);
      await pushBlobOnce(doc.config);
      for (const layer of doc.layers ?? []) await pushBlobOnce(layer);
    } else {
      throw new Error(`pushLayout: ${descriptor.digest} has media type ${descriptor.mediaType}, not a manifest or index`);
    }
    await registry.pushManifest(repo, ref, data, descriptor.mediaType);
    if (!pushedManifests.has(descriptor.digest)) manifests.push(descriptor.digest);
    pushedManifests.add(descriptor.digest);
  };
  await push(entry, entry.digest);
  // the tag last, so a reader never sees the tag before everything it points at is there
  await registry.pushManifest(repo, tag, await layoutBlob(layoutDir, entry), entry.mediaType);
  return { reference: `${registry.host}/${repo}:${tag}`, repo, tag, digest: entry.digest, mediaType: entry.mediaType, manifests, blobs };
}
