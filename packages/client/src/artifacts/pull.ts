// pullArtifact: an artifact's files into a directory by title, as `oras pull` does: layers without a title are
// skipped, two layers with one title are refused, each file is streamed to a temporary name beside its target,
// checked against its size and digest, and renamed into place only when every file is complete.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DataLossError, InvalidArgumentError, NotImplementedError } from '@berth/core';
import { parseRemoteRef } from '@berth/registry';
import { repositoryOf, withResolver } from './manifest.js';
import { resolveWith } from './resolve.js';
import { targetPath } from './titles.js';
import { ANNOTATION_TITLE, type ArtifactDescriptor, type ArtifactOptions } from './types.js';

/** oras' annotation for a directory packed as a tar (`oras push DIR`): it unpacks it on pull; berth does not. */
export const ORAS_UNPACK_ANNOTATION = 'io.deis.oras.content.unpack';

export interface PulledFile {
  readonly title: string;
  readonly path: string;
  readonly descriptor: ArtifactDescriptor;
}

export interface PullResult {
  readonly descriptor: ArtifactDescriptor;
  readonly files: readonly PulledFile[];
  /** Layers without a title (not written, as oras skips them). */
  readonly skipped: readonly ArtifactDescriptor[];
}

/** Pulls the titled files of the artifact `ref` into `dir` (an existing directory). */
export async function pullArtifact(ref: string, dir: string, options: ArtifactOptions = {}): Promise<PullResult> {
  const info = await stat(dir).catch((err: unknown) => {
    throw new InvalidArgumentError(`output directory ${dir}: ${(err as Error).message}`, { cause: err });
  });
  if (!info.isDirectory()) throw new InvalidArgumentError(`output ${dir} is not a directory`);
  const remote = parseRemoteRef(ref);
  const signal = options.signal;
  return withResolver(options, async (resolver) => {
    const { descriptor, manifest } = await resolveWith(resolver, ref, signal);
    const titled: ArtifactDescriptor[] = [];
    const skipped: ArtifactDescriptor[] = [];
    const titles = new Set<string>();
    for (const layer of manifest.layers) {
      const title = layer.annotations?.[ANNOTATION_TITLE];
      if (title === undefined || title === '') {
        skipped.push(layer);
        continue;
      }
      if (titles.has(title)) throw new InvalidArgumentError(`${ref}: two layers are titled ${JSON.stringify(title)}`);
      if (layer.annotations?.[ORAS_UNPACK_ANNOTATION] === 'true') {
        throw new NotImplementedError(`${ref}: layer ${JSON.stringify(title)} is a directory packed by oras (${ORAS_UNPACK_ANNOTATION}); berth does not unpack it (berth artifact fetch keeps it as a blob)`);
      }
      if (!layer.digest.startsWith('sha256:')) throw new NotImplementedError(`${ref}: file ${JSON.stringify(title)} has a ${layer.digest.split(':')[0]} digest; berth verifies sha256 only`);
      titles.add(title);
      titled.push(layer);
    }
    // every target checked (and its parents made) before any byte is fetched
    const targets = new Map<ArtifactDescriptor, string>();
    for (const layer of titled) targets.set(layer, await targetPath(dir, layer.annotations![ANNOTATION_TITLE]!));
    const fetcher = resolver.fetcher(repositoryOf(remote));
    const staged: { temp: string; target: string }[] = [];
    try {
      for (const layer of titled) {
        const target = targets.get(layer)!;
        const temp = join(dirname(target), `.${randomBytes(6).toString('hex')}.berth-partial`);
        staged.push({ temp, target });
        const body = await fetcher.fetch(layer, signal ? { signal } : {});
        const hash = createHash('sha256');
        let size = 0;
        await pipeline(
          (async function* () {
            for await (const chunk of body.chunks) {
              size += chunk.length;
              if (size > layer.size) throw new DataLossError(`${ref}: ${layer.digest} is longer than its ${layer.size} bytes`);
              hash.update(chunk);
              yield chunk;
            }
          })(),
          createWriteStream(temp, { flags: 'wx', mode: 0o644 }),
        );
        const digest = `sha256:${hash.digest('hex')}`;
        if (size !== layer.size || digest !== layer.digest) {
          throw new DataLossError(`${ref}: file ${layer.annotations![ANNOTATION_TITLE]} came as ${size} bytes with digest ${digest}, the manifest says ${layer.size} and ${layer.digest}`);
        }
      }
      for (const { temp, target } of staged) await rename(temp, target);
      staged.length = 0;
    } finally {
      for (const { temp } of staged) await rm(temp, { force: true });
    }
    return {
      descriptor,
      files: titled.map((layer) => ({ title: layer.annotations![ANNOTATION_TITLE]!, path: targets.get(layer)!, descriptor: layer })),
      skipped,
    };
  });
}
