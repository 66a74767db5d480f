// Test images built on the fly for the image code's tests: gzip'd tar layers made with the system's tar (POSIX
// format, root-owned, fixed times), configs with their diff IDs, manifests and a multi-platform index, all put into a
// MemoryRegistry. Not used by the library itself.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { sha256Digest, type Descriptor } from '@berth/core';
import type { MemoryRegistry } from '../memory-registry.js';
import { MediaType } from '../media-types.js';
import type { Platform } from '../types.js';

export interface TestLayer {
  readonly tar: Buffer;
  readonly gz: Buffer;
  readonly diffId: string;
}

/** A layer of these files (path → content; a Buffer for binary). */
export function makeLayer(files: Readonly<Record<string, string | Buffer>>): TestLayer {
  const dir = mkdtempSync(join(tmpdir(), 'berth-images-layer-'));
  try {
    for (const [path, content] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), content);
    }
    const tar = spawnSync('tar', ['-c', '--format=posix', '--owner=0', '--group=0', '--mtime=@0', '--sort=name', '-C', dir, ...Object.keys(files).sort()], {
      maxBuffer: 1 << 30,
    });
    if (tar.status !== 0) throw new Error(`tar failed: ${tar.stderr.toString()}`);
    const gz = spawnSync('gzip', ['-n', '-1', '-c'], { input: tar.stdout, maxBuffer: 1 << 30 });
    if (gz.status !== 0) throw new Error(`gzip failed: ${gz.stderr.toString()}`);
    return { tar: tar.stdout, gz: gz.stdout, diffId: sha256Digest(tar.stdout) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface TestImage {
  readonly manifest: Descriptor;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
  readonly diffIds: readonly string[];
}

/** An OCI (or Docker v2) manifest of `layers` for `platform`, its config and layers put into the registry. */
export function putImage(
  registry: MemoryRegistry,
  platform: Platform,
  layers: readonly TestLayer[],
  options: { docker?: boolean; diffIds?: readonly string[] } = {},
): TestImage {
  const diffIds = options.diffIds ?? layers.map((l) => l.diffId);
  const config = registry.putJson(
    { architecture: platform.architecture, os: platform.os, ...(platform.variant ? { variant: platform.variant } : {}), rootfs: { type: 'layers', diff_ids: diffIds }, config: {} },
    options.docker ? MediaType.DockerConfig : MediaType.OciConfig,
  );
  const layerDescs = layers.map((l) => registry.put(l.gz, options.docker ? MediaType.DockerLayerGzip : MediaType.OciLayerGzip));
  const mediaType = options.docker ? MediaType.DockerManifest : MediaType.OciManifest;
  const manifest = registry.putJson({ schemaVersion: 2, mediaType, config, layers: layerDescs }, mediaType);
  return { manifest, config, layers: layerDescs, diffIds };
}

/** An index of the images, each entry with its platform. */
export function putIndex(registry: MemoryRegistry, entries: readonly { image: TestImage; platform: Platform }[]): Descriptor {
  return registry.putJson(
    { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: entries.map((e) => ({ ...e.image.manifest, platform: e.platform })) },
    MediaType.OciIndex,
  );
}
