// Pushing a layout entry to a registry as a client does, for tests (packages/daemon/test/registry.ts wraps it with
// its loopback registry) and for tools/bench (with registryClient over any registry URL).
import { readLayoutBlob, readLayoutIndex, REF_NAME_ANNOTATION, MEDIA_TYPES, sha256 } from './layout.mjs';

/** @typedef {import('./layout.mjs').Descriptor} Descriptor */

/**
 * What pushLayout needs of a registry: the loopback harness's Registry has it, registryClient() makes one.
 * @typedef {object} PushTarget
 * @property {string} host `127.0.0.1:PORT`, the registry part of the pushed reference
 * @property {(repo: string, data: Buffer) => Promise<unknown>} pushBlob
 * @property {(repo: string, ref: string, data: Buffer, mediaType: string) => Promise<unknown>} pushManifest
 */

/**
 * @typedef {object} PushedLayout
 * @property {string} reference `${host}/${repo}:${tag}`: the reference to pull
 * @property {string} repo
 * @property {string} tag
 * @property {string} digest what the tag points at (the layout entry: an index or a manifest)
 * @property {string} mediaType
 * @property {string[]} manifests every manifest and index pushed, children before parents
 * @property {string[]} blobs every config and layer pushed, in push order, each once
 */

const INDEX_TYPES = new Set([MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifestList]);
const MANIFEST_TYPES = new Set([MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest]);

/**
 * Pushes a layout entry to `repo:tag`: for each manifest its config and layers first, then the manifest by digest;
 * an index after all its manifests; the tag last, so nobody sees the tag before what it names. Blobs shared between
 * manifests go once. Every blob is checked against its digest and size on the way.
 * @param {PushTarget} target
 * @param {string} layoutDir
 * @param {string} repoAndTag `test/busybox:latest`
 * @param {{ refName?: string }} [options] the layout entry's ref name (default: the only entry, or `latest`)
 * @returns {Promise<PushedLayout>}
 */
export async function pushLayout(target, layoutDir, repoAndTag, options = {}) {
  const colon = repoAndTag.lastIndexOf(':');
  if (colon <= 0 || repoAndTag.includes('@') || repoAndTag.slice(colon + 1).includes('/')) {
    throw new Error(`pushLayout: want <repo>:<tag>, got ${JSON.stringify(repoAndTag)}`);
  }
  const repo = repoAndTag.slice(0, colon);
  const tag = repoAndTag.slice(colon + 1);
  const entries = (await readLayoutIndex(layoutDir)).manifests ?? [];
  const named = (/** @type {string} */ name) => entries.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === name);
  const entry = options.refName !== undefined ? named(options.refName) : entries.length === 1 ? entries[0] : named('latest');
  if (!entry) {
    const names = entries.map((m) => m.annotations?.[REF_NAME_ANNOTATION] ?? m.digest).join(', ') || 'nothing';
    throw new Error(`pushLayout: ${layoutDir} has no entry ${options.refName ?? '(only one, or latest)'}; it has ${names}`);
  }
  /** @param {Descriptor} d */
  const read = async (d) => {
    const data = await readLayoutBlob(layoutDir, d.digest);
    if (data.length !== d.size) throw new Error(`layout ${layoutDir}: blob ${d.digest} is ${data.length} bytes, its descriptor says ${d.size}`);
    return data;
  };

  /** @type {string[]} */
  const blobs = [];
  /** @type {string[]} */
  const manifests = [];
  const pushedManifests = new Set();
  /** @param {Descriptor} d */
  const pushBlobOnce = async (d) => {
    if (blobs.includes(d.digest)) return;
    await target.pushBlob(repo, await read(d));
    blobs.push(d.digest);
  };
  /** @param {Descriptor} d @param {string} ref @returns {Promise<void>} */
  const push = async (d, ref) => {
    const data = await read(d);
    if (INDEX_TYPES.has(d.mediaType)) {
      /** @type {{ manifests?: Descriptor[] }} */
      const doc = JSON.parse(data.toString('utf8'));
      for (const child of doc.manifests ?? []) if (!pushedManifests.has(child.digest)) await push(child, child.digest);
    } else if (MANIFEST_TYPES.has(d.mediaType)) {
      /** @type {{ config?: Descriptor, layers?: Descriptor[] }} */
      const doc = JSON.parse(data.toString('utf8'));
      if (!doc.config) throw new Error(`pushLayout: manifest ${d.digest} has no config`);
      await pushBlobOnce(doc.config);
      for (const layer of doc.layers ?? []) await pushBlobOnce(layer);
    } else {
      throw new Error(`pushLayout: ${d.digest} has media type ${d.mediaType}, not a manifest or index`);
    }
    await target.pushManifest(repo, ref, data, d.mediaType);
    if (!pushedManifests.has(d.digest)) manifests.push(d.digest);
    pushedManifests.add(d.digest);
  };
  await push(entry, entry.digest);
  await target.pushManifest(repo, tag, await read(entry), entry.mediaType);
  return { reference: `${target.host}/${repo}:${tag}`, repo, tag, digest: entry.digest, mediaType: entry.mediaType, manifests, blobs };
}

/**
 * A PushTarget over any registry's HTTP API (monolithic blob uploads: POST, then PUT with the digest), for scripts
 * that start their own registry (tools/bench).
 * @param {string} url `http://127.0.0.1:PORT`
 * @param {{ headers?: (repo: string) => Record<string, string> }} [options] e.g. an Authorization header
 * @returns {PushTarget}
 */
export function registryClient(url, options = {}) {
  const headers = options.headers ?? (() => ({}));
  /** @param {Response} res @param {number} status @param {string} what */
  const expect = async (res, status, what) => {
    if (res.status !== status) throw new Error(`${what}: HTTP ${res.status} ${res.statusText}: ${await res.text()}`);
  };
  return {
    host: new URL(url).host,
    async pushBlob(repo, data) {
      const digest = sha256(data);
      const started = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: headers(repo) });
      await expect(started, 202, `start upload to ${repo}`);
      const location = started.headers.get('location');
      if (!location) throw new Error(`start upload to ${repo}: no Location header`);
      const upload = new URL(location, url);
      upload.searchParams.set('digest', digest);
      const put = await fetch(upload, { method: 'PUT', body: data, headers: { ...headers(repo), 'content-type': 'application/octet-stream' } });
      await expect(put, 201, `upload ${digest} to ${repo}`);
      return { digest, size: data.length };
    },
    async pushManifest(repo, ref, data, mediaType) {
      const res = await fetch(`${url}/v2/${repo}/manifests/${ref}`, { method: 'PUT', body: data, headers: { ...headers(repo), 'content-type': mediaType } });
      await expect(res, 201, `push manifest ${repo}:${ref}`);
      return sha256(data);
    },
  };
}
