// `berth artifact push|pull|ls|fetch`: generic OCI artifacts as ORAS writes them (the library is @berth/client's
// artifacts). push, pull and ls talk to the registry from this process; fetch writes into berthd's content store
// through the CLI's content proxy under a lease (the global --lease, or one made here with ctr's 24 h expiry).
import { mkdir, readFile, rmdir } from 'node:fs/promises';
import { basename, isAbsolute, posix } from 'node:path';
import type { Command } from 'commander';
import { contentStoreToken, InvalidArgumentError, leasesToken } from '@berth/core';
import {
  ANNOTATION_CREATED,
  ANNOTATION_TITLE,
  checkMediaType,
  fetchArtifactDetailed,
  listReferrersVia,
  pullArtifact,
  pushArtifact,
  resolveSubject,
  type ArtifactFile,
  type ArtifactOptions,
} from '@berth/client';
import { parseRemoteRef } from '@berth/registry';
import { parseDuration, parseLabels } from '../args.js';
import type { CliContext } from '../context.js';
import { DEFAULT_LEASE_EXPIRY, generateLeaseId, leaseLabels } from './leases.js';
import { parseUser } from './pull.js';

/** What oras gives a config file without `:type` (oras.MediaTypeUnknownConfig). */
export const DEFAULT_CONFIG_MEDIA_TYPE = 'application/vnd.unknown.config.v1+json';
/** What `oras push` gives an artifact with neither --artifact-type nor --config (oras.MediaTypeUnknownArtifact). */
export const DEFAULT_ARTIFACT_TYPE = 'application/vnd.unknown.artifact.v1';

/** The registry flags of the artifact and plugin commands. */
export interface RegistryFlags {
  readonly plainHttp?: boolean;
  readonly hostsDir?: string;
  readonly user?: string;
}

export function registryFlags(command: Command): Command {
  return command
    .option('--plain-http', 'talk http instead of https to the registry (loopback registries are http anyway, as in containerd)')
    .option('--hosts-dir <dir>', "registry host configuration in containerd's certs.d layout (<dir>/<host>/hosts.toml)")
    .option('-u, --user <user:password>', 'registry credentials (default: ~/.docker/config.json)');
}

export function artifactOptions(opts: RegistryFlags): ArtifactOptions {
  const credentials = opts.user ? parseUser(opts.user) : undefined;
  return {
    ...(opts.plainHttp ? { plainHttp: true } : {}),
    ...(opts.hostsDir ? { hostsDir: opts.hostsDir } : {}),
    ...(credentials ? { credentials: async () => credentials } : {}),
  };
}

/**
 * `FILE[:mediatype]`: the part after the last colon is a media type when it looks like one (`type/subtype`),
 * otherwise the colon belongs to the file name.
 */
export function parseFileArg(arg: string, defaultType?: string): { path: string; mediaType?: string } {
  const colon = arg.lastIndexOf(':');
  if (colon > 0) {
    const type = arg.slice(colon + 1);
    if (/^[^/\s]+\/[^/\s]+$/.test(type)) return { path: arg.slice(0, colon), mediaType: checkMediaType(type, arg) };
  }
  if (arg === '') throw new InvalidArgumentError('an empty file argument');
  return { path: arg, ...(defaultType ? { mediaType: defaultType } : {}) };
}

/**
 * The title of a file as `oras push` gives it: the path as written (normalized, `./` dropped). An absolute path is
 * titled with its base name (oras refuses one unless --disable-path-validation, then keeps it whole, which no pull
 * can write safely).
 */
export function titleFor(path: string): string {
  if (isAbsolute(path)) return basename(path);
  const normalized = posix.normalize(path.replaceAll('\\', '/'));
  return normalized.replace(/\/+$/, '');
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function registerArtifact(program: Command, ctx: CliContext): void {
  const artifact = program.command('artifact').alias('artifacts').description('push, pull, list and fetch generic OCI artifacts (ORAS-compatible)');

  registryFlags(
    artifact
      .command('push')
      .description('push files as an OCI 1.1 artifact (an image manifest with artifactType, one layer per file titled by its name)')
      .argument('<ref>', 'where to push: host[:port]/repository[:tag] (default tag latest; an attachment without a tag is pushed by digest)')
      .argument('[files...]', 'FILE[:mediatype] (default application/vnd.oci.image.layer.v1.tar)')
      .option('--artifact-type <type>', `the artifact type (default without --config: ${DEFAULT_ARTIFACT_TYPE}, as oras)`)
      .option('--annotation <key=value>', 'manifest annotation, repeatable', collect)
      .option('--subject <ref>', 'attach to this manifest (same repository): the artifact becomes one of its referrers')
      .option('--config <file[:mediatype]>', `config blob instead of the empty one (default type ${DEFAULT_CONFIG_MEDIA_TYPE})`),
  ).action(async (ref: string, fileArgs: string[], opts: RegistryFlags & { artifactType?: string; annotation?: string[]; subject?: string; config?: string }) => {
    const remote = parseRemoteRef(ref);
    const options = artifactOptions(opts);
    const files: ArtifactFile[] = fileArgs.map((arg) => {
      const { path, mediaType } = parseFileArg(arg);
      return { path, title: titleFor(path), ...(mediaType ? { mediaType } : {}) };
    });
    let config: { mediaType: string; data: Buffer } | undefined;
    if (opts.config !== undefined) {
      const { path, mediaType } = parseFileArg(opts.config, DEFAULT_CONFIG_MEDIA_TYPE);
      const data = await readFile(path).catch((err: unknown) => {
        throw new InvalidArgumentError(`--config ${path}: ${(err as Error).message}`, { cause: err });
      });
      config = { mediaType: mediaType!, data };
    }
    const annotations = opts.annotation ? parseLabels(opts.annotation, '') : undefined;
    let subject;
    if (opts.subject !== undefined) {
      const s = parseRemoteRef(opts.subject);
      if (s.host !== remote.host || s.repository !== remote.repository) {
        throw new InvalidArgumentError(`--subject ${opts.subject} must be in the repository of ${ref} (${remote.host}/${remote.repository}): referrers are per repository`);
      }
      subject = await resolveSubject(opts.subject, options);
    }
    const artifactType = opts.artifactType ?? (config ? undefined : DEFAULT_ARTIFACT_TYPE);
    const desc = await pushArtifact(ref, {
      ...(artifactType ? { artifactType } : {}),
      files,
      ...(config ? { config } : {}),
      ...(annotations ? { annotations } : {}),
      ...(subject ? { subject } : {}),
    }, options);
    if (ctx.json) return ctx.printJson({ reference: ref, digest: desc.digest, mediaType: desc.mediaType, size: desc.size, artifactType: desc.artifactType, ...(subject ? { subject: subject.digest } : {}) });
    ctx.line(`${ref}: ${desc.digest}${subject ? ` (referrer of ${subject.digest})` : ''}`);
  });

  registryFlags(
    artifact
      .command('pull')
      .description("write an artifact's files into a directory by their titles (path-safe: no absolute paths, .. or symlink escapes)")
      .argument('<ref>', 'host[:port]/repository[:tag|@digest]')
      .requiredOption('-o, --output <dir>', 'directory to write into (made when missing)'),
  ).action(async (ref: string, opts: RegistryFlags & { output: string }) => {
    // the directory is made when missing, and removed again (if still empty) when the pull fails
    const made = await mkdir(opts.output, { recursive: true });
    let result;
    try {
      result = await pullArtifact(ref, opts.output, artifactOptions(opts));
    } catch (err) {
      if (made !== undefined) await rmdir(made).catch(() => undefined);
      throw err;
    }
    for (const layer of result.skipped) ctx.warn(`layer ${layer.digest} has no title (${ANNOTATION_TITLE}): skipped, as oras does`);
    if (ctx.json) return ctx.printJson({ reference: ref, digest: result.descriptor.digest, artifactType: result.descriptor.artifactType, files: result.files.map((f) => ({ title: f.title, path: f.path, digest: f.descriptor.digest, size: f.descriptor.size })) });
    for (const f of result.files) ctx.line(f.path);
  });

  registryFlags(
    artifact
      .command('ls')
      .alias('referrers')
      .description('list the referrers of a manifest (referrers API, else the sha256-<hex> tag fallback)')
      .argument('<ref>', 'the subject: host[:port]/repository[:tag|@digest]')
      .option('--artifact-type <type>', 'only referrers of this artifact type'),
  ).action(async (ref: string, opts: RegistryFlags & { artifactType?: string }) => {
    const { referrers, via } = await listReferrersVia(ref, opts.artifactType ? { artifactType: opts.artifactType } : {}, artifactOptions(opts));
    if (ctx.json) return ctx.printJson({ subject: ref, via, referrers });
    ctx.table([
      ['DIGEST', 'ARTIFACT TYPE', 'SIZE', 'CREATED'],
      ...referrers.map((r) => [r.digest, r.artifactType ?? '-', String(r.size), r.annotations?.[ANNOTATION_CREATED] ?? '-']),
    ]);
  });

  registryFlags(
    artifact
      .command('fetch')
      .description("fetch an artifact's manifest, config and layers into berthd's content store (no unpacking), under a lease")
      .argument('<ref>', 'host[:port]/repository[:tag|@digest]')
      .option('--expires <duration>', `expiry of the lease made when no --lease is given (0: none)`, DEFAULT_LEASE_EXPIRY),
  ).action(async (ref: string, opts: RegistryFlags & { expires: string }) => {
    const content = await ctx.resolve(contentStoreToken);
    const namespace = ctx.options.namespace;
    let lease = ctx.options.lease;
    let made: (() => Promise<void>) | undefined;
    if (lease === undefined) {
      const leases = await ctx.resolve(leasesToken);
      const id = generateLeaseId();
      await leases.create({ namespace }, { id, labels: leaseLabels({}, parseDuration(opts.expires)) });
      lease = id;
      made = () => leases.delete({ namespace }, id);
    }
    let result;
    try {
      result = await fetchArtifactDetailed(ref, content, { namespace, lease }, artifactOptions(opts));
    } catch (err) {
      // a lease made for a fetch that failed holds only its partial blobs: let them go
      await made?.().catch(() => undefined);
      throw err;
    }
    if (ctx.json) return ctx.printJson({ reference: ref, digest: result.descriptor.digest, artifactType: result.descriptor.artifactType, lease, blobs: result.blobs });
    ctx.line(`${result.name}: ${result.descriptor.digest} (${result.blobs.length} blobs, ${result.blobs.filter((b) => !b.existed).length} fetched; lease ${lease})`);
  });
}

