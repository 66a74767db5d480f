// Image archives for tests (these and the CLI's), made on disk and packed with GNU tar (as a user's tar would): a
// tiny OCI layout with two platforms, and a `docker save` archive of one image. Nothing is downloaded.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';

export const run = promisify(execFile);

export const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A one-file layer as GNU tar writes it. */
async function layerTar(work: string, file: string, text: string): Promise<Buffer> {
  const dir = await mkdtemp(join(work, 'layer-'));
  await writeFile(join(dir, file), text);
  const { stdout } = await run('tar', ['-c', '--owner=0', '--group=0', '--mtime=@0', '-C', dir, file], { encoding: 'buffer', maxBuffer: 1 << 24 });
  return stdout;
}

export interface Blob {
  readonly digest: string;
  readonly size: number;
  readonly bytes: Buffer;
}

function blob(bytes: Buffer | string): Blob {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes);
  return { digest: sha(b), size: b.length, bytes: b };
}

export interface PlatformImage {
  readonly architecture: string;
  readonly layer: Blob;
  readonly diffId: string;
  readonly config: Blob;
  readonly manifest: Blob;
}

export interface OciFixture {
  readonly work: string;
  readonly tar: string;
  readonly index: Blob;
  readonly amd64: PlatformImage;
  readonly arm64: PlatformImage;
  /** Writes a layout tar with other contents (for bad-input tests). */
  readonly dir: string;
}

async function platformImage(work: string, architecture: string): Promise<PlatformImage> {
  const raw = await layerTar(work, 'hello.txt', `hello from ${architecture}\n`);
  const layer = blob(gzipSync(raw));
  const diffId = sha(raw);
  const config = blob(JSON.stringify({ architecture, os: 'linux', config: { Cmd: ['/hello'] }, rootfs: { type: 'layers', diff_ids: [diffId] } }));
  const manifest = blob(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer.digest, size: layer.size }],
    }),
  );
  return { architecture, layer, diffId, config, manifest };
}

async function writeBlobs(dir: string, blobs: readonly Blob[]): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  for (const b of blobs) await writeFile(join(dir, 'blobs', 'sha256', b.digest.slice('sha256:'.length)), b.bytes);
}

/** The host architecture as containerd names it (amd64 on x64) and one other. */
export const HOST_ARCH = process.arch === 'arm64' ? 'arm64' : 'amd64';
export const OTHER_ARCH = HOST_ARCH === 'amd64' ? 'arm64' : 'amd64';

/**
 * An OCI layout: an index (`example.test/img:1` by name annotation) of two platform manifests, and a second index
 * entry naming the host manifest only by its OCI ref name `latest`.
 */
export async function ociFixture(work: string, indexAnnotations?: (host: PlatformImage) => readonly object[]): Promise<OciFixture> {
  const host = await platformImage(work, HOST_ARCH);
  const other = await platformImage(work, OTHER_ARCH);
  const desc = (p: PlatformImage) => ({
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: p.manifest.digest,
    size: p.manifest.size,
    platform: { architecture: p.architecture, os: 'linux' },
  });
  const imgIndex = blob(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [desc(host), desc(other)] }));
  const entries = indexAnnotations?.(host) ?? [
    { mediaType: 'application/vnd.oci.image.index.v1+json', digest: imgIndex.digest, size: imgIndex.size, annotations: { 'io.containerd.image.name': 'example.test/img:1', 'org.opencontainers.image.ref.name': '1' } },
    { ...desc(host), annotations: { 'org.opencontainers.image.ref.name': 'latest' } },
  ];
  const index = blob(JSON.stringify({ schemaVersion: 2, manifests: entries }));
  const dir = await mkdtemp(join(work, 'oci-'));
  await writeBlobs(dir, [host.layer, host.config, host.manifest, other.layer, other.config, other.manifest, imgIndex]);
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(join(dir, 'index.json'), index.bytes);
  const tar = join(work, 'oci.tar');
  await run('tar', ['-cf', tar, '-C', dir, 'oci-layout', 'index.json', 'blobs']);
  return { work, tar, index: imgIndex, amd64: host.architecture === 'amd64' ? host : other, arm64: host.architecture === 'arm64' ? host : other, dir };
}

export interface DockerFixture {
  readonly tar: string;
  readonly layer: Blob;
  readonly config: Blob;
}

/** A `docker save` archive: `<id>/layer.tar` (uncompressed), `<hex>.json` config, manifest.json and repositories. */
export async function dockerFixture(work: string, repoTags: readonly string[] = ['busybox:latest']): Promise<DockerFixture> {
  const raw = await layerTar(work, 'hello.txt', 'hello from docker\n');
  const layer = blob(raw);
  const config = blob(JSON.stringify({ architecture: HOST_ARCH, os: 'linux', config: { Cmd: ['/hello'] }, rootfs: { type: 'layers', diff_ids: [layer.digest] } }));
  const dir = await mkdtemp(join(work, 'docker-'));
  const id = layer.digest.slice(7);
  const cfgName = `${config.digest.slice(7)}.json`;
  await mkdir(join(dir, id));
  await writeFile(join(dir, id, 'layer.tar'), raw);
  await writeFile(join(dir, id, 'VERSION'), '1.0');
  await writeFile(join(dir, id, 'json'), '{}');
  await writeFile(join(dir, cfgName), config.bytes);
  await writeFile(join(dir, 'manifest.json'), JSON.stringify([{ Config: cfgName, RepoTags: repoTags, Layers: [`${id}/layer.tar`] }]));
  await writeFile(join(dir, 'repositories'), JSON.stringify({ busybox: { latest: id } }));
  const tar = join(work, 'docker.tar');
  await run('tar', ['-cf', tar, '-C', dir, '.']);
  return { tar, layer, config };
}

export async function workDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'berth-archive-'));
}
