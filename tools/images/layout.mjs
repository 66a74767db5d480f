// Writing and reading OCI image layouts (oci-layout, index.json, blobs/sha256/<hex>), and the media types the
// fixtures use. Every JSON document is serialised once, with JSON.stringify and a fixed key order, and its digest is
// taken over exactly those bytes.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const MEDIA_TYPES = Object.freeze({
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
});

export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

/**
 * @typedef {object} Platform
 * @property {string} architecture
 * @property {string} os
 * @property {string} [variant]
 */

/**
 * @typedef {object} Descriptor
 * @property {string} mediaType
 * @property {string} digest
 * @property {number} size
 * @property {Platform} [platform]
 * @property {Record<string, string>} [annotations]
 */

/** @param {Buffer | string} data */
export const sha256 = (data) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** GOARCH (and variant) of this machine, as the busybox-static binary on it is built for. */
export function hostPlatform() {
  /** @type {Record<string, Platform>} */
  const table = {
    x64: { architecture: 'amd64', os: 'linux' },
    arm64: { architecture: 'arm64', os: 'linux', variant: 'v8' },
    arm: { architecture: 'arm', os: 'linux', variant: 'v7' },
    ia32: { architecture: '386', os: 'linux' },
    ppc64: { architecture: 'ppc64le', os: 'linux' },
    s390x: { architecture: 's390x', os: 'linux' },
    riscv64: { architecture: 'riscv64', os: 'linux' },
  };
  const platform = table[process.arch];
  if (!platform) throw new Error(`no GOARCH known for node's arch ${process.arch}`);
  return platform;
}

/** Writes blobs into a layout directory as they are produced; `finish` writes index.json and oci-layout last. */
export class LayoutWriter {
  /** @param {string} dir */
  constructor(dir) {
    this.dir = dir;
    this.blobsDir = join(dir, 'blobs', 'sha256');
  }

  /**
   * @param {Buffer} data
   * @param {string} mediaType
   * @returns {Promise<Descriptor>}
   */
  async blob(data, mediaType) {
    await mkdir(this.blobsDir, { recursive: true });
    const digest = sha256(data);
    const path = join(this.blobsDir, digest.slice('sha256:'.length));
    if (!existsSync(path)) {
      // write then rename, so an interrupted build never leaves a blob whose bytes do not match its name
      await writeFile(`${path}.tmp`, data);
      await rename(`${path}.tmp`, path);
    }
    return { mediaType, digest, size: data.length };
  }

  /**
   * @param {object} doc
   * @param {string} mediaType
   */
  json(doc, mediaType) {
    return this.blob(Buffer.from(JSON.stringify(doc)), mediaType);
  }

  /** @param {Descriptor[]} manifests the index.json entries (with their ref-name annotations) */
  async finish(manifests) {
    await mkdir(this.dir, { recursive: true });
    const index = { schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests };
    await writeFile(join(this.dir, 'index.json'), JSON.stringify(index));
    await writeFile(join(this.dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    return index;
  }
}

/**
 * Reads a layout's index.json.
 * @param {string} dir
 * @returns {Promise<{ schemaVersion: number, manifests: Descriptor[] }>}
 */
export async function readLayoutIndex(dir) {
  return JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
}

/**
 * The bytes of a blob in a layout, checked against its digest.
 * @param {string} dir
 * @param {string} digest
 */
export async function readLayoutBlob(dir, digest) {
  const [algorithm, hex] = digest.split(':');
  if (algorithm !== 'sha256' || !/^[0-9a-f]{64}$/.test(hex ?? '')) throw new Error(`unsupported digest ${digest}`);
  const data = await readFile(join(dir, 'blobs', 'sha256', hex));
  if (sha256(data) !== digest) throw new Error(`layout ${dir}: blob ${digest} does not match its digest`);
  return data;
}

/**
 * The index.json entry for a ref name; with no name, the only entry (or the one named `latest`).
 * @param {string} dir
 * @param {string} [refName]
 */
export async function findLayoutRef(dir, refName) {
  const { manifests } = await readLayoutIndex(dir);
  const named = (/** @type {string} */ name) => manifests.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === name);
  const found = refName !== undefined ? named(refName) : manifests.length === 1 ? manifests[0] : named('latest');
  if (!found) {
    const names = manifests.map((m) => m.annotations?.[REF_NAME_ANNOTATION] ?? m.digest).join(', ');
    throw new Error(`layout ${dir}: no entry ${refName === undefined ? '(no name given and several entries)' : JSON.stringify(refName)}; it has ${names}`);
  }
  return found;
}
