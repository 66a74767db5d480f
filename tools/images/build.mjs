#!/usr/bin/env node
// Builds the project's test images as OCI image layouts, from Debian's busybox-static and literal contents, with
// no downloads and the same bytes on every run (fixed mtimes and owners, our own tar writer, zlib's gzip with a
// zero mtime, the zstd binary at a fixed level). README.md beside this file describes each image.
//
//   node tools/images/build.mjs <name> <out-dir>     # prints the built image's descriptors as JSON
//   import { buildImage, cachedImage } from '<root>/tools/images/index.mjs';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { BUSYBOX, FIXTURE_ENV, bigLayers, busyboxEntries, featureLayers, manyFilesLayers, platformLayer } from './content.mjs';
import { LayoutWriter, MEDIA_TYPES, REF_NAME_ANNOTATION, hostPlatform, sha256 } from './layout.mjs';
import { buildSchema1 } from './schema1.mjs';
import { writeTar } from './tar.mjs';

/** @typedef {import('./layout.mjs').Descriptor} Descriptor */
/** @typedef {import('./layout.mjs').Platform} Platform */
/** @typedef {import('./tar.mjs').TarEntry} TarEntry */
/** @typedef {'gzip' | 'zstd' | 'none'} Compression */

/**
 * @typedef {object} BuiltLayer
 * @property {Descriptor} descriptor the compressed blob as the manifest names it
 * @property {string} diffId sha256 of the uncompressed tar
 * @property {Compression} compression
 */

/**
 * @typedef {object} BuiltManifest
 * @property {Descriptor} descriptor
 * @property {Platform} platform
 * @property {Descriptor} config
 * @property {BuiltLayer[]} layers
 */

/**
 * @typedef {object} BuiltImage
 * @property {string} name the fixture's name (`tiny`, `layers`, ...)
 * @property {string} dir the OCI layout
 * @property {string} refName the ref-name annotation of its index.json entry (`latest`)
 * @property {Descriptor} target that index.json entry: an index, or a manifest for single-platform images
 * @property {BuiltManifest[]} manifests every image manifest in it, host platform first
 * @property {import('./schema1.mjs').Schema1Parts} [schema1] only for `schema1`: what signSchema1() makes a manifest of
 */

export const IMAGE_NAMES = /** @type {const} */ (['tiny', 'layers', 'layers-plain', 'layers-zstd', 'layers-mixed', 'multi', 'docker', 'schema1', 'many', 'big']);
/** The images slow enough to build only on request (tools/bench); `cachedImage` keeps them. */
export const SLOW_IMAGES = /** @type {const} */ (['many', 'big']);

const CREATED = '2024-01-01T00:00:00Z';
const GZIP_LEVEL = 6;
const ZSTD_LEVEL = 3;

/**
 * @param {Buffer} tar
 * @param {Compression} compression
 * @param {boolean} docker
 */
function compress(tar, compression, docker) {
  if (compression === 'gzip') {
    return { data: gzipSync(tar, { level: GZIP_LEVEL }), mediaType: docker ? MEDIA_TYPES.dockerLayerGzip : MEDIA_TYPES.ociLayerGzip };
  }
  if (docker) throw new Error('docker layers are gzip here');
  if (compression === 'none') return { data: tar, mediaType: MEDIA_TYPES.ociLayer };
  // single-threaded and no frame checksum option changes: the same input gives the same frames
  const zstd = spawnSync('zstd', ['-q', '-c', `-${ZSTD_LEVEL}`, '-T1'], { input: tar, maxBuffer: tar.length + (1 << 20) });
  if (zstd.error) throw new Error(`zstd: ${zstd.error.message} (apt-get install zstd)`);
  if (zstd.status !== 0) throw new Error(`zstd exited ${zstd.status}: ${zstd.stderr.toString()}`);
  return { data: zstd.stdout, mediaType: MEDIA_TYPES.ociLayerZstd };
}

/**
 * @typedef {object} ImageSpec
 * @property {Platform} platform
 * @property {{ entries: TarEntry[], compression: Compression, comment: string }[]} layers
 * @property {string[]} [cmd]
 * @property {boolean} [docker] Docker media types instead of OCI
 */

/**
 * Writes one image's layers, config and manifest.
 * @param {LayoutWriter} writer
 * @param {ImageSpec} spec
 * @param {Map<string, BuiltLayer>} layerCache layers already written, by their tar's diff ID and compression
 * @returns {Promise<BuiltManifest>}
 */
async function writeImage(writer, spec, layerCache) {
  const docker = spec.docker ?? false;
  /** @type {BuiltLayer[]} */
  const layers = [];
  for (const layer of spec.layers) {
    const tar = writeTar(layer.entries);
    const diffId = sha256(tar);
    const key = `${diffId} ${layer.compression} ${docker}`;
    let built = layerCache.get(key);
    if (!built) {
      const { data, mediaType } = compress(tar, layer.compression, docker);
      built = { descriptor: await writer.blob(data, mediaType), diffId, compression: layer.compression };
      layerCache.set(key, built);
    }
    layers.push(built);
  }
  const { platform } = spec;
  const config = {
    created: CREATED,
    architecture: platform.architecture,
    ...(platform.variant ? { variant: platform.variant } : {}),
    os: platform.os,
    config: { Env: FIXTURE_ENV, Cmd: spec.cmd ?? ['/bin/sh'], WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: spec.layers.map((l) => ({ created: CREATED, created_by: `berth tools/images: ${l.comment}` })),
  };
  const configDescriptor = await writer.json(config, docker ? MEDIA_TYPES.dockerConfig : MEDIA_TYPES.ociConfig);
  const mediaType = docker ? MEDIA_TYPES.dockerManifest : MEDIA_TYPES.ociManifest;
  const manifest = { schemaVersion: 2, mediaType, config: configDescriptor, layers: layers.map((l) => l.descriptor) };
  const descriptor = await writer.json(manifest, mediaType);
  return { descriptor, platform, config: configDescriptor, layers };
}

/**
 * @param {Platform} platform
 * @param {Descriptor} descriptor
 */
const withPlatform = (descriptor, platform) => ({ mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size, platform });

/** @param {Descriptor} descriptor @param {string} refName */
const named = (descriptor, refName) => ({ ...descriptor, annotations: { [REF_NAME_ANNOTATION]: refName } });

const busyboxLayer = () => ({ entries: busyboxEntries(), compression: /** @type {Compression} */ ('gzip'), comment: 'busybox-static and its applet links' });

/**
 * @param {Compression[]} compressions one per feature layer
 */
function layersSpec(compressions) {
  const [populate, change, back] = featureLayers();
  const comments = ['populate: every kind of entry', 'change: whiteouts, an opaque dir, a file becomes a dir and back', 'back: a whited-out dir, re-added files'];
  return {
    platform: hostPlatform(),
    layers: [busyboxLayer(), ...[populate, change, back].map((entries, i) => ({ entries, compression: compressions[i] ?? 'gzip', comment: comments[i] ?? '' }))],
  };
}

/** @type {Record<string, (options: BuildOptions) => ImageSpec[]>} single-manifest images (and `multi`'s members) */
const SPECS = {
  tiny: () => [{ platform: hostPlatform(), layers: [busyboxLayer()] }],
  layers: () => [layersSpec(['gzip', 'gzip', 'gzip'])],
  'layers-plain': () => [layersSpec(['none', 'none', 'none'])],
  'layers-zstd': () => [layersSpec(['zstd', 'zstd', 'zstd'])],
  'layers-mixed': () => [layersSpec(['gzip', 'none', 'zstd'])],
  docker: () => [{ platform: hostPlatform(), layers: [busyboxLayer()], docker: true }],
  multi: () => {
    const host = hostPlatform();
    /** @type {Platform[]} */
    const platforms = [
      { architecture: 'amd64', os: 'linux' },
      { architecture: 'arm64', os: 'linux', variant: 'v8' },
      { architecture: 'arm', os: 'linux', variant: 'v7' },
    ];
    const isHost = (/** @type {Platform} */ p) => p.architecture === host.architecture;
    if (!platforms.some(isHost)) platforms.unshift(host);
    return platforms.map((platform) => ({
      platform,
      layers: [
        ...(isHost(platform) ? [busyboxLayer()] : []),
        { entries: platformLayer(platform), compression: /** @type {Compression} */ ('gzip'), comment: 'a file naming the platform' },
      ],
    }));
  },
  many: (options) => [{ platform: hostPlatform(), layers: manyFilesLayers(options.many).map((entries, i) => ({ entries, compression: /** @type {Compression} */ ('gzip'), comment: `many files, part ${i + 1}` })) }],
  big: (options) => [{ platform: hostPlatform(), layers: bigLayers(options.big).map((entries, i) => ({ entries, compression: /** @type {Compression} */ ('gzip'), comment: `incompressible data, part ${i + 1}` })) }],
};

/**
 * @typedef {object} BuildOptions
 * @property {string} [refName] the ref-name annotation of the layout's entry (default `latest`)
 * @property {{ files?: number, layers?: number }} [many] smaller `many` images for tests
 * @property {{ mib?: number }} [big] smaller `big` images for tests
 */

/**
 * Builds the named image as an OCI layout in `outDir` (created if missing; an existing layout there is replaced).
 * @param {string} name one of IMAGE_NAMES
 * @param {string} outDir
 * @param {BuildOptions} [options]
 * @returns {Promise<BuiltImage>}
 */
export async function buildImage(name, outDir, options = {}) {
  if (!(IMAGE_NAMES).includes(/** @type {any} */ (name))) throw new Error(`unknown image ${JSON.stringify(name)}; the images are ${IMAGE_NAMES.join(', ')}`);
  if (!existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} is missing (apt-get install busybox-static)`);
  const refName = options.refName ?? 'latest';
  await rm(join(outDir, 'blobs'), { recursive: true, force: true });
  await rm(join(outDir, 'index.json'), { force: true });
  const writer = new LayoutWriter(outDir);
  /** @type {Map<string, BuiltLayer>} */
  const layerCache = new Map();

  if (name === 'schema1') {
    const tiny = await writeImage(writer, SPECS.tiny(options)[0], layerCache);
    // A layout cannot hold a schema1 manifest (and the registry checks its name and tag): the layout holds the
    // tiny image plus the schema1 image's extra blob, and signSchema1(image.schema1, repo, tag) makes the manifest.
    const schema1 = await buildSchema1(writer, tiny);
    await writer.finish([named(tiny.descriptor, refName)]);
    return { name, dir: outDir, refName, target: named(tiny.descriptor, refName), manifests: [tiny], schema1 };
  }

  const specs = SPECS[name](options);
  /** @type {BuiltManifest[]} */
  const manifests = [];
  for (const spec of specs) manifests.push(await writeImage(writer, spec, layerCache));
  /** @type {Descriptor} */
  let target;
  if (name === 'multi' || name === 'docker') {
    const docker = name === 'docker';
    const mediaType = docker ? MEDIA_TYPES.dockerManifestList : MEDIA_TYPES.ociIndex;
    const index = { schemaVersion: 2, mediaType, manifests: manifests.map((m) => withPlatform(m.descriptor, m.platform)) };
    target = named(await writer.json(index, mediaType), refName);
  } else {
    target = named(/** @type {BuiltManifest} */ (manifests[0]).descriptor, refName);
  }
  await writer.finish([target]);
  const host = hostPlatform().architecture;
  manifests.sort((a, b) => Number(b.platform.architecture === host) - Number(a.platform.architecture === host));
  return { name, dir: outDir, refName, target, manifests };
}

const here = fileURLToPath(new URL('.', import.meta.url));

/** Where cachedImage keeps layouts: $BERTH_IMAGE_CACHE, else <tmpdir>/berth-test-images. */
export const imageCacheDir = () => process.env.BERTH_IMAGE_CACHE ?? join(tmpdir(), 'berth-test-images');

/**
 * A key that changes whenever what a build produces could: the builder's sources, busybox, the options.
 * @param {string} name
 * @param {BuildOptions} options
 */
function cacheKey(name, options) {
  const hash = createHash('sha256');
  for (const file of ['build.mjs', 'content.mjs', 'layout.mjs', 'schema1.mjs', 'tar.mjs']) hash.update(readFileSync(join(here, file)));
  const busybox = statSync(BUSYBOX);
  hash.update(`${busybox.size} ${busybox.mtimeMs} ${name} ${JSON.stringify(options)} ${process.arch}`);
  return hash.digest('hex').slice(0, 16);
}

/**
 * Builds an image once into the cache (imageCacheDir) and returns it from there afterwards: for `many` and `big`,
 * which take seconds to build. Treat the returned layout as read-only. A half-written build never counts (it is
 * built in a temp dir and renamed into place).
 * @param {string} name
 * @param {BuildOptions} [options]
 * @returns {Promise<BuiltImage>}
 */
export async function cachedImage(name, options = {}) {
  const dir = join(imageCacheDir(), `${name}-${cacheKey(name, options)}`);
  const meta = `${dir}.json`;
  if (existsSync(meta) && existsSync(join(dir, 'index.json'))) return reviveBuilt(JSON.parse(await readFile(meta, 'utf8')));
  await mkdir(imageCacheDir(), { recursive: true });
  const building = `${dir}.building-${process.pid}`;
  try {
    const built = await buildImage(name, building, options);
    await rm(dir, { recursive: true, force: true });
    await rename(building, dir);
    const result = { ...built, dir };
    await writeFile(`${meta}.${process.pid}`, JSON.stringify(result));
    await rename(`${meta}.${process.pid}`, meta);
    return result;
  } finally {
    await rm(building, { recursive: true, force: true });
  }
}

/** @param {any} built */
const reviveBuilt = (built) => /** @type {BuiltImage} */ (built);

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [name, out] = process.argv.slice(2);
  if (!name || !out) {
    process.stderr.write(`usage: node tools/images/build.mjs <name> <out-dir>\n  names: ${IMAGE_NAMES.join(', ')}\n`);
    process.exit(2);
  }
  try {
    const built = await buildImage(name, resolve(out));
    process.stdout.write(`${JSON.stringify(built, null, 2)}\n`);
  } catch (err) {
    process.stderr.write(`build.mjs: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
