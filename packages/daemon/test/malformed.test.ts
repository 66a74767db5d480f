// Malformed protobuf against a real berthd, over gRPC and ttrpc: every request that does not decode is refused with
// containerd's codes (gRPC: INTERNAL, as grpc-go; ttrpc: INVALID_ARGUMENT for the envelope, INTERNAL for the
// payload), nothing is acted on, and the daemon keeps serving. Requests go out as raw bytes, never re-encoded.
import { spawn, type ChildProcess } from 'node:child_process';
import { allServiceNames, messageCodec, serviceMethods, ServiceNames } from '@berth/api';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { rawCall, unaryCall } from './grpc-raw.js';
import { CTR, hasCtr, hasRoot, startBerthd, type Berthd } from './harness.js';
import { RawTtrpcPeer } from './ttrpc-raw.js';

const LEASES = '/containerd.services.leases.v1.Leases';
const INTERNAL = 13;
const UNIMPLEMENTED = 12;

/** Every cut of an encoding that does not fall between two top-level fields (those are valid, shorter messages). */
function cutsInsideFields(bytes: Buffer, boundaries: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let cut = 1; cut < bytes.length; cut++) if (!boundaries.includes(cut)) out.push(bytes.subarray(0, cut));
  return out;
}

describe.skipIf(!hasRoot() || !hasCtr())('berthd with malformed protobuf', () => {
  let daemon: Berthd;
  const children: ChildProcess[] = [];
  const peers: RawTtrpcPeer[] = [];

  beforeAll(async () => {
    daemon = await startBerthd({ logLevel: 'info' });
  });
  afterEach(() => {
    for (const child of children.splice(0)) child.kill('SIGKILL');
    for (const peer of peers.splice(0)) peer.close();
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  const leaseIds = async (): Promise<string[]> => {
    const ls = await daemon.ctr(['leases', 'ls', '-q']);
    expect(ls.code, ls.stderr).toBe(0);
    return ls.stdout.split('\n').filter(Boolean).sort();
  };

  it('a truncated Leases.Create creates nothing, at whatever byte it is cut', async () => {
    const codec = messageCodec('containerd.services.leases.v1.CreateRequest');
    const id = codec.encode({ id: 'abc' });
    const full = codec.encode({ id: 'abc', labels: { a: 'b' } });
    // The cut of the adversarial run: `id` claims 3 bytes, 2 follow; protobufjs alone created lease "ab".
    const cuts = [Buffer.from([0x0a, 0x03, 0x61, 0x62]), ...cutsInsideFields(full, [id.length])];
    for (const bytes of cuts) {
      const res = await rawCall(daemon.address, `${LEASES}/Create`, bytes);
      expect(res.error?.code, bytes.toString('hex')).toBe(INTERNAL);
      expect(res.error?.details).toMatch(/^grpc: error unmarshalling request: proto: containerd\.services\.leases\.v1\.CreateRequest: field \S+ \(\S+\) at byte \d+: unexpected EOF$/);
    }
    expect(await leaseIds()).toEqual([]);
    // The whole encoding is fine.
    expect((await rawCall(daemon.address, `${LEASES}/Create`, full)).error).toBeUndefined();
    expect(await leaseIds()).toEqual(['abc']);
    expect((await daemon.ctr(['leases', 'rm', 'abc'])).code).toBe(0);
  });

  it('a truncated Leases.Delete deletes nothing', async () => {
    expect((await daemon.ctr(['leases', 'create', '--id', 'ab'])).code).toBe(0);
    const codec = messageCodec('containerd.services.leases.v1.DeleteRequest');
    const full = codec.encode({ id: 'abc', sync: true });
    for (const bytes of [Buffer.from([0x0a, 0x03, 0x61, 0x62]), ...cutsInsideFields(full, [codec.encode({ id: 'abc' }).length])]) {
      const res = await rawCall(daemon.address, `${LEASES}/Delete`, bytes);
      expect(res.error?.code, bytes.toString('hex')).toBe(INTERNAL);
    }
    // Wrong wire type and field number 0 are refused the same way.
    for (const bytes of [Buffer.from([0x08, 0x01]), Buffer.from([0x00, 0x00, 0x0a, 0x02, 0x61, 0x62])]) {
      expect((await rawCall(daemon.address, `${LEASES}/Delete`, bytes)).error?.code, bytes.toString('hex')).toBe(INTERNAL);
    }
    expect(await leaseIds()).toEqual(['ab']);
    expect((await rawCall(daemon.address, `${LEASES}/Delete`, codec.encode({ id: 'ab' }))).error).toBeUndefined();
    expect(await leaseIds()).toEqual([]);
  });

  it('refuses field number 0 on every method of every gRPC service it serves', async () => {
    const served: string[] = [];
    for (const service of allServiceNames()) {
      if (service === ServiceNames.TtrpcEvents || service === ServiceNames.ShimTask) continue;
      for (const method of serviceMethods(service)) {
        const path = `/${service}/${method.name}`;
        const res = await rawCall(daemon.address, path, Buffer.from([0x00, 0x00]), method);
        if (res.error?.code === UNIMPLEMENTED) continue; // a service or method berthd does not serve (yet)
        expect(res.error?.code, path).toBe(INTERNAL);
        const unmarshal = method.requestStream || method.responseStream ? 'failed to unmarshal the received message' : 'error unmarshalling request';
        expect(res.error?.details, path).toBe(`grpc: ${unmarshal}: proto: ${method.requestType}: field #0 (0) at byte 0: illegal tag 0 (wire type 0)`);
        served.push(path);
      }
    }
    // Leases, namespaces, content, events, introspection, version and health at least.
    expect(served.length).toBeGreaterThan(25);
    expect(served).toContain('/containerd.services.content.v1.Content/Write');
    expect(served).toContain('/containerd.services.events.v1.Events/Subscribe');
    expect(daemon.alive).toBe(true);
    expect((await daemon.ctr(['version'])).code).toBe(0);
  });

  it('refuses a Forward whose timestamp nanos is 2e9 on gRPC and ttrpc, and malformed ttrpc envelopes, delivering nothing', async () => {
    const events = spawn(CTR, ['--address', daemon.address, 'events', 'topic~="^/berth/"'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(events);
    let seen = '';
    events.stdout!.on('data', (d: Buffer) => (seen += d.toString()));
    await new Promise((r) => setTimeout(r, 500)); // ctr subscribes as it starts

    const envelope = (topic: string, nanos: number) => ({
      envelope: {
        timestamp: { seconds: Math.floor(Date.now() / 1000), nanos },
        namespace: 'default',
        topic,
        event: { type_url: 'containerd.events.ContentDelete', value: Buffer.from([0x0a, 0x01, 0x78]) },
      },
    });
    const grpcForward = messageCodec('containerd.services.events.v1.ForwardRequest');
    const refused = await rawCall(daemon.address, '/containerd.services.events.v1.Events/Forward', grpcForward.encode(envelope('/berth/grpc-bad', 2e9)));
    expect(refused.error?.code).toBe(INTERNAL);
    expect(refused.error?.details).toContain('field envelope.timestamp (1.1) at byte 2: timestamp nanos 2000000000 not in range [0, 1e9)');

    const peer = await RawTtrpcPeer.open(`${daemon.address}.ttrpc`);
    peers.push(peer);
    const ttrpcForward = messageCodec('containerd.services.events.ttrpc.v1.ForwardRequest');
    const bad = ttrpcForward.encode(envelope('/berth/ttrpc-bad', 2e9));
    const good = ttrpcForward.encode(envelope('/berth/ttrpc-good', 0));
    for (const payload of [bad, good.subarray(0, good.length - 1), Buffer.concat([Buffer.from([0x7f, 0x00]), good])]) {
      const res = await peer.request(ServiceNames.TtrpcEvents, 'Forward', payload);
      expect(res.status?.code, payload.toString('hex')).toBe(INTERNAL);
      expect(res.status?.message).toMatch(/^ttrpc: error unmarshalling payload: proto: containerd\.services\.events\.ttrpc\.v1\.ForwardRequest: /);
    }
    const envelopeBytes = messageCodec('ttrpc.Request').encode({ service: ServiceNames.TtrpcEvents, method: 'Forward', payload: good });
    const cutEnvelope = await peer.sendEnvelope(envelopeBytes.subarray(0, envelopeBytes.length - 1));
    expect(cutEnvelope.status?.code).toBe(3);
    expect(cutEnvelope.status?.message).toMatch(/^unmarshal request error: proto: ttrpc\.Request: field payload \(3\)/);

    // The same connection and the daemon still serve a good Forward, and only that one reaches subscribers.
    expect((await peer.request(ServiceNames.TtrpcEvents, 'Forward', good)).status).toBeNull();
    const deadline = Date.now() + 5000;
    while (!seen.includes('/berth/ttrpc-good') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(seen).toContain('/berth/ttrpc-good');
    expect(seen).not.toContain('-bad');
    expect(daemon.alive).toBe(true);
  });

  it('still answers ordinary calls afterwards', async () => {
    const res = await unaryCall(daemon.address, 'containerd.services.namespaces.v1.Namespaces', 'List', {});
    expect(res.error).toBeUndefined();
    expect((await daemon.ctr(['namespaces', 'ls'])).code).toBe(0);
  });
});
