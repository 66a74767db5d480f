// `berth pull REF`: daemon-side through containerd 2's Transfer service (progress and credentials over Streaming
// streams this command opens), or client-side with --local (@berth/images' pull over the daemon's services).
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { messageCodec, packAny, ServiceNames, type containerd, type google } from '@berth/api';
import { AsyncQueue } from '@berth/client';
import { InvalidArgumentError, UnavailableError } from '@berth/core';
import { defaultPlatform, parsePlatform, type Platform } from '@berth/images';
import { parseRemoteRef } from '@berth/registry';
import { parseLabels } from '../args.js';
import type { CliContext } from '../context.js';
import { PullProgressRenderer, type ProgressMode } from '../pull-progress.js';

export interface PullCommandOptions {
  readonly platform?: string[];
  readonly allPlatforms?: boolean;
  readonly plainHttp?: boolean;
  readonly snapshotter?: string;
  readonly hostsDir?: string;
  readonly user?: string;
  readonly local?: boolean;
  readonly quiet?: boolean;
  readonly unpack?: boolean;
  readonly label?: string[];
}

/** A platform of @berth/images as the wire's containerd.types.Platform. */
export function wirePlatform(p: Platform): containerd.types.Platform {
  return { os: p.os, architecture: p.architecture, variant: p.variant ?? '', os_version: p.osVersion ?? '' };
}

/** `user:secret` (the secret may contain colons). */
export function parseUser(text: string): { username: string; secret: string } {
  const colon = text.indexOf(':');
  if (colon <= 0 || colon === text.length - 1) throw new InvalidArgumentError('--user must be USER:PASSWORD');
  return { username: text.slice(0, colon), secret: text.slice(colon + 1) };
}

function progressMode(ctx: CliContext, quiet: boolean | undefined): ProgressMode {
  if (quiet) return 'quiet';
  if (ctx.json) return 'json';
  return ctx.io.stderr.isTTY ? 'tty' : 'plain';
}

/** The destination of a pull: the image named after the reference, the platforms to fetch and to unpack. */
export function imageStoreOf(ref: string, opts: PullCommandOptions): containerd.types.transfer.ImageStoreInput {
  const platforms = (opts.platform ?? []).map((text) => wirePlatform(parsePlatform(text)));
  if (opts.allPlatforms && platforms.length > 0) throw new InvalidArgumentError('--platform and --all-platforms exclude each other');
  const host = wirePlatform(defaultPlatform());
  const fetch = opts.allPlatforms ? [] : platforms.length > 0 ? platforms : [host];
  const unpack = opts.unpack !== false;
  const unpackFor = platforms.length > 0 ? platforms : [host];
  return {
    name: ref,
    labels: parseLabels(opts.label ?? [], ''),
    platforms: fetch,
    unpacks: unpack ? unpackFor.map((platform) => ({ platform, snapshotter: opts.snapshotter ?? '' })) : [],
  };
}

function streamId(kind: string): string {
  return `${kind}-${randomBytes(12).toString('base64url')}`;
}

/**
 * A Streaming call opened and acknowledged: `send` queues messages to the daemon, `responses` yields the
 * daemon's. end() half-closes it.
 */
async function openStream(ctx: CliContext, id: string, signal: AbortSignal) {
  const requests = new AsyncQueue<google.protobuf.AnyInput>();
  requests.push(packAny('containerd.services.streaming.v1.StreamInit', { id }));
  const responses = ctx.berth().service(ServiceNames.Streaming).Stream(requests, { signal })[Symbol.asyncIterator]();
  const ack = await responses.next();
  if (ack.done) throw new UnavailableError(`berthd closed stream ${id} before acknowledging it`);
  return { id, send: (m: google.protobuf.AnyInput) => requests.push(m), end: () => requests.end(), responses };
}

async function pullThroughTransfer(ctx: CliContext, ref: string, opts: PullCommandOptions, renderer: PullProgressRenderer): Promise<void> {
  const controller = new AbortController();
  const progress = await openStream(ctx, streamId('progress'), controller.signal);
  const credentials = opts.user ? parseUser(opts.user) : undefined;
  const auth = credentials ? await openStream(ctx, streamId('creds'), controller.signal) : undefined;
  // Neither loop rejects (a failure is kept): the Transfer call decides the outcome; a broken progress stream only
  // costs the display.
  let progressFailure: unknown;
  const consumeProgress = (async () => {
    try {
      for (;;) {
        const next = await progress.responses.next();
        if (next.done) return;
        if (next.value.type_url !== 'containerd.types.transfer.Progress') continue;
        renderer.update(messageCodec('containerd.types.transfer.Progress').decode(next.value.value));
      }
    } catch (err) {
      progressFailure = err;
    }
  })();
  const answerAuth = (async () => {
    if (!auth || !credentials) return;
    try {
      for (;;) {
        const next = await auth.responses.next();
        if (next.done) return;
        auth.send(packAny('containerd.types.transfer.AuthResponse', { authType: 'CREDENTIALS', username: credentials.username, secret: credentials.secret }));
      }
    } catch {
      // The call is over (the transfer ended and the stream was cancelled).
    }
  })();
  const timer = setInterval(() => renderer.tick(), 100);
  try {
    await ctx.berth().service(ServiceNames.Transfer).Transfer({
      source: packAny('containerd.types.transfer.OCIRegistry', {
        reference: ref,
        resolver: {
          default_scheme: opts.plainHttp ? 'http' : '',
          host_dir: opts.hostsDir ?? '',
          auth_stream: auth?.id ?? '',
        },
      }),
      destination: packAny('containerd.types.transfer.ImageStore', imageStoreOf(ref, opts)),
      options: { progress_stream: progress.id },
    });
    // The daemon closes the progress stream once everything it sent is out: wait for the last events.
    await consumeProgress;
    if (progressFailure) ctx.warn(`progress stream: ${ctx.describeError(progressFailure)}`);
  } finally {
    clearInterval(timer);
    progress.end();
    auth?.end();
    controller.abort();
    await Promise.all([consumeProgress, answerAuth]);
  }
}

export function registerPull(program: Command, ctx: CliContext): void {
  program
    .command('pull')
    .description('pull an image from a registry and unpack it (daemon-side, through the Transfer service)')
    .argument('<ref>', 'image reference: host[:port]/repository[:tag][@digest]')
    .option('--platform <platform...>', 'platform to pull and unpack (os/arch[/variant]; default: this host)')
    .option('--all-platforms', 'pull the content of every platform (unpacks none unless --platform)')
    .option('--plain-http', 'talk http instead of https to the registry')
    .option('--snapshotter <name>', 'snapshotter to unpack into (default: the daemon\'s, overlayfs)')
    .option('--hosts-dir <dir>', 'certs.d directory with hosts.toml per registry host')
    .option('-u, --user <user:password>', 'registry credentials')
    .option('--no-unpack', 'fetch only; do not unpack the layers')
    .option('--label <k=v...>', 'labels of the image')
    .option('--local', 'pull client-side: fetch in this process and write through the daemon\'s services')
    .option('-q, --quiet', 'print only the image name')
    .action(async (ref: string, opts: PullCommandOptions) => {
      parseRemoteRef(ref);
      imageStoreOf(ref, opts);
      if (opts.user) parseUser(opts.user);
      const renderer = new PullProgressRenderer({ mode: progressMode(ctx, opts.quiet), write: (t) => (ctx.json ? ctx.write(t) : ctx.io.stderr.write(t)) });
      let digest: string;
      if (opts.local) {
        const { pullLocally } = await import('./pull-local.js');
        digest = await pullLocally(ctx, ref, opts, renderer);
      } else {
        await pullThroughTransfer(ctx, ref, opts, renderer);
        digest = (await ctx.berth().images.Get({ name: ref })).image?.target?.digest ?? '';
      }
      renderer.finish();
      if (ctx.json) ctx.write(`${JSON.stringify({ image: ref, digest })}\n`);
      else if (opts.quiet) ctx.line(ref);
      else ctx.line(`${ref}: ${digest}`);
    });
}
