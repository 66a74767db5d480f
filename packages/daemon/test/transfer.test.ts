// containerd 2's Transfer and Streaming services in berthd, driven by a Transfer client written here from the
// protos (grpc-js with the api package's codec, as containerd 2's proxy transferrer talks), and by `berth pull`,
// against Debian's docker-registry on loopback filled with the project's test image.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, credentials, makeGenericClientConstructor, Metadata, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { messageCodec, packAny, serviceDefinition, ServiceNames, type containerd, type google } from '@berth/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, type BuiltImage } from '../../../tools/images/index.mjs';
import { hasCtr, hasRoot, QUIET_GC, startBerthd, type Berthd } from './harness.js';
import { hasRegistry, pushLayout, startRegistry, type Registry } from './registry.js';

type Progress = containerd.types.transfer.Progress;

const ready = hasRoot() && hasCtr() && hasRegistry();
const skipReason = !hasRoot() ? 'needs root (overlayfs unpack)' : !hasCtr() ? 'needs /usr/bin/ctr' : 'needs /usr/bin/docker-registry';

function clientOf(address: string, service: string): Client & Record<string, Function> {
  const Ctor = makeGenericClientConstructor(serviceDefinition(service) as never, service);
  return new Ctor(`unix://${address}`, credentials.createInsecure()) as Client & Record<string, Function>;
}

function metadata(namespace: string): Metadata {
  const md = new Metadata();
  md.set('containerd-namespace', namespace);
  return md;
}

/** A progress stream opened as containerd 2's client does: StreamInit, then wait for the acknowledgement. */
async function openProgressStream(address: string, namespace: string, id: string) {
  const client = clientOf(address, ServiceNames.Streaming);
  const call = client.Stream!.call(client, metadata(namespace)) as ClientDuplexStream<google.protobuf.AnyInput, google.protobuf.Any>;
  const received: google.protobuf.Any[] = [];
  let ack: (value: google.protobuf.Any) => void = () => {};
  const acknowledged = new Promise<google.protobuf.Any>((resolve) => (ack = resolve));
  const ended = new Promise<ServiceError | null>((resolve) => {
    call.on('data', (message: google.protobuf.Any) => {
      if (received.length === 0 && message.type_url === 'google.protobuf.Empty') ack(message);
      received.push(message);
    });
    call.on('error', (err: ServiceError) => resolve(err));
    call.on('end', () => resolve(null));
  });
  call.write(packAny('containerd.services.streaming.v1.StreamInit', { id }));
  await acknowledged;
  return {
    ended,
    progress: (): Progress[] =>
      received.slice(1).map((m) => {
        expect(m.type_url).toBe('containerd.types.transfer.Progress');
        return messageCodec('containerd.types.transfer.Progress').decode(m.value);
      }),
    close: () => {
      call.end();
      client.close();
    },
  };
}

function transfer(address: string, namespace: string, request: containerd.services.transfer.v1.TransferRequestInput): Promise<ServiceError | null> {
  const client = clientOf(address, ServiceNames.Transfer);
  return new Promise<ServiceError | null>((resolve) => {
    client.Transfer!.call(client, request, metadata(namespace), { deadline: Date.now() + 120_000 }, (err: ServiceError | null) => resolve(err));
  }).finally(() => client.close());
}

function hostWirePlatform(image: BuiltImage): containerd.types.PlatformInput {
  const p = image.manifests[0]!.platform;
  return { os: p.os, architecture: p.architecture, variant: p.variant ?? '' };
}

describe.skipIf(!ready)(`containerd 2's Transfer service in berthd${ready ? '' : ` (skipped: ${skipReason})`}`, () => {
  let scratch: string;
  let registry: Registry;
  let berthd: Berthd;
  let image: BuiltImage;
  let ref: string;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'berth-transfer-'));
    registry = await startRegistry();
    image = await buildImage('tiny', join(scratch, 'tiny'));
    ref = (await pushLayout(registry, image.dir, 'test/busybox:latest')).reference;
    berthd = await startBerthd({ config: QUIET_GC });
  }, 120_000);

  afterAll(async () => {
    await berthd?.stop();
    await registry?.stop();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('pulls an image through Transfer with progress events on the stream, unpacked for ctr to see', async () => {
    const ns = 'transfer-raw';
    const stream = await openProgressStream(berthd.address, ns, 'progress-raw-1');
    try {
      const platform = hostWirePlatform(image);
      const err = await transfer(berthd.address, ns, {
        source: packAny('containerd.types.transfer.OCIRegistry', { reference: ref, resolver: { default_scheme: 'http' } }),
        destination: packAny('containerd.types.transfer.ImageStore', { name: ref, platforms: [platform], unpacks: [{ platform, snapshotter: 'overlayfs' }] }),
        options: { progress_stream: 'progress-raw-1' },
      });
      expect(err).toBeNull();
      // The daemon ends the progress stream when the transfer is over.
      expect(await stream.ended).toBeNull();
      const events = stream.progress();
      const layer = image.manifests[0]!.layers[0]!.descriptor;
      const layerEvents = events.filter((e) => e.name === `layer-${layer.digest}`);
      expect(layerEvents.length).toBeGreaterThan(0);
      expect(layerEvents.map((e) => e.event)).toContain('unpacking');
      expect(layerEvents.at(-1)).toMatchObject({ event: 'complete', progress: layer.size, total: layer.size });
      expect(layerEvents[0]!.desc).toMatchObject({ digest: layer.digest, size: layer.size, media_type: layer.mediaType });
      expect(events[0]).toMatchObject({ event: `Pulling from ${ref}`, name: '' });
      expect(events.find((e) => e.event === 'saved')).toMatchObject({ name: ref });
      expect(events.at(-1)?.event).toBe(`Completed pull from ${ref}`);
    } finally {
      stream.close();
    }
    const images = await berthd.ctr(['images', 'ls', '-q'], { namespace: ns });
    expect(images.stdout.split('\n')).toContain(ref);
    const snapshots = await berthd.ctr(['snapshots', 'ls'], { namespace: ns });
    expect(snapshots.stdout).toMatch(/sha256:[0-9a-f]{64}\s+Committed/);
    const check = await berthd.ctr(['images', 'check'], { namespace: ns });
    expect(check.stdout).toMatch(/complete/);
  }, 120_000);

  it('berth pull shows per-layer progress, unpacks, and a second pull downloads nothing', async () => {
    const ns = 'transfer-cli';
    const first = await berthd.berth(['-n', ns, 'pull', '--plain-http', ref], { timeoutMs: 120_000 });
    expect(first.stderr).toContain(`Pulling from ${ref}`);
    expect(first.code, first.stderr).toBe(0);
    const layer = image.manifests[0]!.layers[0]!.descriptor;
    const short = `layer-${layer.digest.slice(0, 'sha256:'.length + 12)}`;
    const lines = first.stderr.split('\n');
    expect(lines.some((l) => l.startsWith(short) && /\bdone\b/.test(l))).toBe(true);
    expect(lines.some((l) => /^total: /.test(l))).toBe(true);
    expect(first.stderr).not.toContain('\x1b[');
    expect(first.stdout.trim()).toBe(`${ref}: ${image.target.digest}`);
    const snapshots = await berthd.ctr(['snapshots', 'ls'], { namespace: ns });
    expect(snapshots.stdout).toMatch(/Committed/);
    expect((await berthd.ctr(['images', 'ls', '-q'], { namespace: ns })).stdout.split('\n')).toContain(ref);

    const second = await berthd.berth(['-n', ns, 'pull', '--plain-http', ref], { timeoutMs: 120_000 });
    expect(second.code, second.stderr).toBe(0);
    const secondLines = second.stderr.split('\n');
    expect(secondLines.some((l) => l.startsWith(short) && /\bexists\b/.test(l))).toBe(true);
    expect(secondLines.some((l) => /\bdownloading\b/.test(l))).toBe(false);

    const json = await berthd.berth(['-n', ns, '--format', 'json', 'pull', '--plain-http', ref], { timeoutMs: 120_000 });
    expect(json.code, json.stderr).toBe(0);
    const objects = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(objects.at(-1)).toEqual({ image: ref, digest: image.target.digest });
    expect(objects.some((o) => o.state === 'exists' && o.name === `layer-${layer.digest}`)).toBe(true);

    const quiet = await berthd.berth(['-n', ns, 'pull', '-q', '--plain-http', ref], { timeoutMs: 120_000 });
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(quiet.stdout).toBe(`${ref}\n`);
    expect(quiet.stderr).toBe('');
  }, 240_000);

  it('berth pull --local pulls client-side through the daemon\'s services, to the same image and snapshots', async () => {
    const ns = 'transfer-local';
    const local = await berthd.berth(['-n', ns, 'pull', '--local', '--plain-http', ref], { timeoutMs: 120_000 });
    expect(local.code, local.stderr).toBe(0);
    expect(local.stdout.trim()).toBe(`${ref}: ${image.target.digest}`);
    const layer = image.manifests[0]!.layers[0]!.descriptor;
    expect(local.stderr.split('\n').some((l) => l.startsWith(`layer-${layer.digest.slice(0, 19)}`) && /\bdone\b/.test(l))).toBe(true);
    expect((await berthd.ctr(['images', 'ls', '-q'], { namespace: ns })).stdout.split('\n')).toContain(ref);
    expect((await berthd.ctr(['snapshots', 'ls'], { namespace: ns })).stdout).toMatch(/Committed/);
    const check = await berthd.ctr(['images', 'check'], { namespace: ns });
    expect(check.stdout).toMatch(/complete/);
  }, 120_000);

  it('refuses unknown pairs, bad references and unknown streams with clear errors, and stays up', async () => {
    const ns = 'transfer-bad';
    const store = packAny('containerd.types.transfer.ImageStore', { name: ref });
    const unknown = await transfer(berthd.address, ns, { source: { type_url: 'example.com/Unknown', value: Buffer.alloc(0) }, destination: store });
    expect(unknown?.code).toBe(12);
    expect(unknown?.details).toBe('method Transfer not implemented for example.com/Unknown to containerd.types.transfer.ImageStore: not implemented');

    const badRef = await transfer(berthd.address, ns, {
      source: packAny('containerd.types.transfer.OCIRegistry', { reference: 'no-slash-here' }),
      destination: store,
    });
    expect(badRef?.code).toBe(3);
    expect(badRef?.details).toMatch(/invalid reference "no-slash-here"/);

    const noStream = await transfer(berthd.address, ns, {
      source: packAny('containerd.types.transfer.OCIRegistry', { reference: ref }),
      destination: store,
      options: { progress_stream: 'never-opened' },
    });
    expect(noStream?.code).toBe(5);

    const missing = `${registry.host}/test/nothing-here:latest`;
    const notAnImage = await transfer(berthd.address, ns, {
      source: packAny('containerd.types.transfer.OCIRegistry', { reference: missing, resolver: { default_scheme: 'http' } }),
      destination: packAny('containerd.types.transfer.ImageStore', { name: missing }),
    });
    expect(notAnImage?.code).toBe(5);
    expect(notAnImage?.details).toContain('nothing-here');

    const cli = await berthd.berth(['pull', 'not a reference']);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(/^berth: invalid reference "not a reference"/);

    expect((await berthd.ctr(['version'])).code).toBe(0);
  }, 60_000);
});
