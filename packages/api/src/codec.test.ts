import { describe, expect, it } from 'vitest';
import {
  anyOf,
  findMessageType,
  jsonAny,
  messageCodec,
  packAny,
  typeNameOfUrl,
  unpackAny,
  unpackJsonAny,
} from './codec.js';
import type { containerd } from './generated/types.js';
import { varint } from './testing/malformations.js';

/** Protobuf varint of a 64-bit two's complement value, written independently of protobufjs. */
const ZERO_TIME_SECONDS = -62135596800;

describe('messageCodec', () => {
  it('round-trips content Info with an int64 size, labels and timestamps', () => {
    const codec = messageCodec('containerd.services.content.v1.Info');
    const info = {
      digest: 'sha256:' + 'ab'.repeat(32),
      size: 2 ** 40 + 3,
      created_at: { seconds: 1_700_000_000, nanos: 123_000_000 },
      updated_at: { seconds: ZERO_TIME_SECONDS, nanos: 0 },
      labels: { 'containerd.io/gc.root': '2024-01-01T00:00:00Z', a: '' },
    };
    expect(codec.decode(codec.encode(info))).toEqual(info);
  });

  it('encodes a negative Timestamp as Go does (10-byte varint) and decodes it back', () => {
    const codec = messageCodec('google.protobuf.Timestamp');
    const bytes = codec.encode({ seconds: ZERO_TIME_SECONDS, nanos: 0 });
    expect([...bytes]).toEqual([0x08, ...varint(BigInt(ZERO_TIME_SECONDS))]);
    expect(bytes.length).toBe(11);
    expect(codec.decode(bytes)).toEqual({ seconds: ZERO_TIME_SECONDS, nanos: 0 });
  });

  it('uses the proto field numbers on the wire (Image.created_at is field 7)', () => {
    const codec = messageCodec('containerd.services.images.v1.Image');
    const bytes = codec.encode({ name: 'a', created_at: { seconds: 1 } });
    expect([...bytes]).toEqual([0x0a, 0x01, 0x61, 0x3a, 0x02, 0x08, 0x01]);
  });

  it('decodes absent fields as defaults: empty strings, zero numbers, null messages, empty arrays and maps', () => {
    const container = messageCodec('containerd.services.containers.v1.Container').decode(Buffer.alloc(0));
    expect(container).toEqual({
      id: '',
      labels: {},
      image: '',
      runtime: null,
      spec: null,
      snapshotter: '',
      snapshot_key: '',
      created_at: null,
      updated_at: null,
      extensions: {},
    });
    const process = messageCodec('containerd.v1.types.Process').decode(new Uint8Array(0));
    expect(process.status).toBe('UNKNOWN');
    expect(process.pid).toBe(0);
    expect(process.terminal).toBe(false);
  });

  it('keeps Any values as { type_url, value } including maps of Any', () => {
    const codec = messageCodec('containerd.services.containers.v1.Container');
    const spec = jsonAny('types.containerd.io/opencontainers/runtime-spec/1/Spec', { ociVersion: '1.0.2' });
    const runcOptions = packAny('containerd.runc.v1.Options', { binary_name: 'runc', systemd_cgroup: true });
    const decoded = codec.decode(
      codec.encode({
        id: 'c1',
        runtime: { name: 'io.containerd.runc.v2', options: runcOptions },
        spec,
        extensions: { 'berth.io/ext': jsonAny('berth.io/ext', { x: 1 }) },
      }),
    );
    expect(decoded.spec?.type_url).toBe('types.containerd.io/opencontainers/runtime-spec/1/Spec');
    expect(Buffer.isBuffer(decoded.spec?.value)).toBe(true);
    expect(unpackJsonAny(decoded.spec!)).toEqual({ ociVersion: '1.0.2' });
    expect(decoded.runtime?.options?.type_url).toBe('containerd.runc.v1.Options');
    expect(unpackAny(decoded.runtime!.options!)).toMatchObject({ binary_name: 'runc', systemd_cgroup: true });
    expect(Object.keys(decoded.extensions)).toEqual(['berth.io/ext']);
    expect(unpackJsonAny(decoded.extensions['berth.io/ext']!)).toEqual({ x: 1 });
  });

  it('round-trips a FieldMask in an update request', () => {
    const codec = messageCodec('containerd.services.containers.v1.UpdateContainerRequest');
    const decoded = codec.decode(
      codec.encode({ container: { id: 'c1', labels: { k: 'v' } }, update_mask: { paths: ['labels.k', 'labels.k2'] } }),
    );
    expect(decoded.update_mask).toEqual({ paths: ['labels.k', 'labels.k2'] });
    expect(decoded.container?.labels).toEqual({ k: 'v' });
  });

  it('encodes enums from names or numbers and decodes them as names', () => {
    const write = messageCodec('containerd.services.content.v1.WriteContentRequest');
    expect(write.decode(write.encode({ action: 'COMMIT', ref: 'r' })).action).toBe('COMMIT');
    expect(write.decode(write.encode({ action: 1 })).action).toBe('WRITE');
    const info = messageCodec('containerd.services.snapshots.v1.Info');
    const bytes = info.encode({ name: 's', kind: 'COMMITTED' });
    expect([...bytes]).toEqual([0x0a, 0x01, 0x73, 0x18, 0x03]);
    expect(info.decode(bytes).kind).toBe('COMMITTED');
    const health = messageCodec('grpc.health.v1.HealthCheckResponse');
    expect(health.decode(health.encode({ status: 'SERVING' })).status).toBe('SERVING');
  });

  it('decodes bytes as Buffers even from a plain Uint8Array', () => {
    const codec = messageCodec('containerd.services.content.v1.ReadContentResponse');
    const data = Buffer.from([0, 1, 2, 255]);
    const encoded = codec.encode({ offset: 5, data });
    const decoded = codec.decode(new Uint8Array(encoded));
    expect(Buffer.isBuffer(decoded.data)).toBe(true);
    expect([...decoded.data]).toEqual([0, 1, 2, 255]);
    expect(decoded.offset).toBe(5);
    expect(Buffer.isBuffer(codec.decode(Buffer.alloc(0)).data)).toBe(true);
  });

  it('round-trips repeated messages and descriptor annotations', () => {
    const codec = messageCodec('containerd.services.diff.v1.ApplyRequest');
    const req: containerd.services.diff.v1.ApplyRequestInput = {
      diff: {
        media_type: 'application/vnd.oci.image.layer.v1.tar+gzip',
        digest: 'sha256:00',
        size: 10,
        annotations: { a: 'b' },
      },
      mounts: [
        { type: 'overlay', source: 'overlay', target: '', options: ['lowerdir=/a', 'upperdir=/b'] },
        { type: 'bind', source: '/x', options: [] },
      ],
      payloads: { p: { type_url: 't', value: Buffer.from('v') } },
    };
    const decoded = codec.decode(codec.encode(req));
    expect(decoded.diff).toEqual(req.diff);
    expect(decoded.mounts).toEqual([
      { type: 'overlay', source: 'overlay', target: '', options: ['lowerdir=/a', 'upperdir=/b'] },
      { type: 'bind', source: '/x', target: '', options: [] },
    ]);
    expect(decoded.payloads.p?.value.toString()).toBe('v');
  });

  it('decodes Struct values with their oneof discriminator', () => {
    const codec = messageCodec('google.protobuf.Struct');
    const decoded = codec.decode(
      codec.encode({ fields: { n: { numberValue: 1.5 }, s: { stringValue: 'x' }, b: { boolValue: false } } }),
    );
    expect(decoded.fields.n).toEqual({ numberValue: 1.5, kind: 'numberValue' });
    expect(decoded.fields.s).toEqual({ stringValue: 'x', kind: 'stringValue' });
    expect(decoded.fields.b).toEqual({ boolValue: false, kind: 'boolValue' });
  });

  it('round-trips Duration and the google.rpc.Status with details', () => {
    const duration = messageCodec('google.protobuf.Duration');
    expect(duration.decode(duration.encode({ seconds: -3, nanos: -5 }))).toEqual({ seconds: -3, nanos: -5 });
    const status = messageCodec('google.rpc.Status');
    const decoded = status.decode(
      status.encode({ code: 5, message: 'x: not found', details: [{ type_url: 'a', value: Buffer.from([1]) }] }),
    );
    expect(decoded.code).toBe(5);
    expect(decoded.details[0]?.type_url).toBe('a');
  });

  it('rejects unknown message names', () => {
    expect(() => messageCodec('containerd.nope.Missing')).toThrow(/not found/);
    expect(findMessageType('containerd.services.content.v1.Content')).toBeUndefined(); // a service, not a message
    expect(findMessageType('.containerd.types.Mount')).toBeDefined();
  });

  it('omits fields holding their default, as Go does, so a decoded object re-encodes compactly', () => {
    const container = messageCodec('containerd.services.containers.v1.Container');
    expect(container.encode(container.decode(Buffer.alloc(0))).length).toBe(0);
    const process = messageCodec('containerd.v1.types.Process');
    const bytes = process.encode({ id: 'c', status: 'UNKNOWN', pid: 0, terminal: false, exited_at: { seconds: 0 } });
    // id (field 2) and an empty exited_at (field 10) remain
    expect([...bytes]).toEqual([0x12, 0x01, 0x63, 0x52, 0x00]);
  });

  it('returns the same codec object for a name', () => {
    expect(messageCodec('containerd.types.Mount')).toBe(messageCodec('containerd.types.Mount'));
  });
});

describe('Any helpers', () => {
  it('packs event payloads under their bare full name and unpacks them', () => {
    const exited = { seconds: 1_700_000_001, nanos: 5 };
    const any = packAny('containerd.events.TaskExit', {
      container_id: 'c1',
      id: 'c1',
      pid: 42,
      exit_status: 137,
      exited_at: exited,
    });
    expect(any.type_url).toBe('containerd.events.TaskExit');
    expect(unpackAny(any)).toEqual({ container_id: 'c1', id: 'c1', pid: 42, exit_status: 137, exited_at: exited });
  });

  it('keeps the image events in the images service package, as containerd 1.6 registers them', () => {
    const any = packAny('containerd.services.images.v1.ImageCreate', { name: 'docker.io/library/busybox:latest' });
    expect(any.type_url).toBe('containerd.services.images.v1.ImageCreate');
    expect(findMessageType('containerd.events.ImageCreate')).toBeUndefined();
    expect(unpackAny(any)).toEqual({ name: 'docker.io/library/busybox:latest', labels: {} });
  });

  it('anyOf uses the given type URL; unpackAny accepts a host prefix', () => {
    const any = anyOf('type.googleapis.com/containerd.events.TaskOOM', 'containerd.events.TaskOOM', {
      container_id: 'c9',
    });
    expect(any.type_url).toBe('type.googleapis.com/containerd.events.TaskOOM');
    expect(typeNameOfUrl(any.type_url)).toBe('containerd.events.TaskOOM');
    expect(unpackAny(any)).toEqual({ container_id: 'c9' });
  });

  it('refuses to unpack a type URL that is not a message', () => {
    const spec = jsonAny('types.containerd.io/opencontainers/runtime-spec/1/Spec', {});
    expect(() => unpackAny(spec)).toThrow(/not found/);
    expect(() => unpackAny({ type_url: '', value: Buffer.alloc(0) })).toThrow(/not found/);
  });
});

describe('berth.services.extensions.v1 (berth-only messages)', () => {
  it('keeps an expected revision of 0 apart from none: the UInt64Value wrapper is present or null', () => {
    const codec = messageCodec('berth.services.extensions.v1.SetExtensionRequest');
    const zero = codec.decode(codec.encode({ container_id: 'c1', name: 'acme.io/x', expected_revision: { value: 0 } }));
    expect(zero.expected_revision).toEqual({ value: 0 });
    const none = codec.decode(codec.encode({ container_id: 'c1', name: 'acme.io/x' }));
    expect(none.expected_revision).toBeNull();
    const seven = codec.decode(codec.encode({ container_id: 'c1', name: 'acme.io/x', expected_revision: { value: 7 } }));
    expect(seven.expected_revision).toEqual({ value: 7 });
  });

  it('round-trips the /containers/extensions/update payload', () => {
    const codec = messageCodec('berth.services.extensions.v1.ContainerExtensionUpdate');
    const event = { container_id: 'c1', name: 'acme.io/ownership', revision: 3, deleted: true };
    expect(codec.decode(codec.encode(event))).toEqual(event);
  });
});
