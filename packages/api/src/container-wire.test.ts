import { describe, expect, it } from 'vitest';
import type { Container } from '@berth/core';
import { encodedMessage, messageCodec } from './codec.js';
import { containerMessage, containersResponse, encodeContainer } from './container-wire.js';
import { containerToWire } from './service-impl.js';

const general = {
  container: messageCodec('containerd.services.containers.v1.Container'),
  message: messageCodec('containerd.services.containers.v1.ListContainerMessage'),
  list: messageCodec('containerd.services.containers.v1.ListContainersResponse'),
};

const base: Container = {
  id: 'c1',
  labels: {},
  image: '',
  runtime: { name: 'io.containerd.runc.v2' },
  snapshotter: '',
  snapshotKey: '',
  extensions: {},
  extensionRevisions: {},
  createdAt: new Date(1_764_633_600_123),
  updatedAt: new Date(1_764_633_601_000),
};

const cases: Array<[string, Container]> = [
  ['the least a container has', base],
  ['every field', {
    ...base,
    id: 'every-field',
    labels: { a: 'b', 'io.containerd.image.config.stop-signal': 'SIGTERM', 'ünï': 'cödé ✓', empty: '' },
    image: 'docker.io/library/busybox:latest',
    runtime: { name: 'io.containerd.runc.v2', options: { typeUrl: 'containerd.runc.v1.Options', value: Buffer.from([8, 1]) } },
    spec: { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Spec', value: Buffer.from(JSON.stringify({ ociVersion: '1.0.2' })) },
    snapshotter: 'overlayfs',
    snapshotKey: 'every-field',
    extensions: { 'acme.io/ownership': { typeUrl: 'acme.io/ownership', value: Buffer.from('{"team":"payments"}') }, empty: { typeUrl: '', value: new Uint8Array(0) } },
    extensionRevisions: { 'acme.io/ownership': 3, empty: 1 },
  }],
  // Lengths of 128 and 16,384 bytes and more take two- and three-byte varints, in every nesting level.
  ['long values', {
    ...base,
    id: 'x'.repeat(128),
    labels: { ['k'.repeat(200)]: 'v'.repeat(4000) },
    spec: { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Spec', value: Buffer.alloc(70_000, 0x61) },
    extensions: { e: { typeUrl: 'e', value: Buffer.alloc(16_384, 1) } },
  }],
  ['options with empty value, spec with no type URL', {
    ...base,
    runtime: { name: '', options: { typeUrl: 'containerd.runc.v1.Options', value: new Uint8Array(0) } },
    spec: { typeUrl: '', value: Buffer.from('{}') },
  }],
  ['whole-second and epoch times', { ...base, createdAt: new Date(0), updatedAt: new Date(1_000) }],
  ['a subarray as the spec', { ...base, spec: { typeUrl: 't', value: Buffer.from('0123456789').subarray(3, 7) } }],
];

describe('containers on the wire, written directly', () => {
  it.each(cases)('%s: the bytes of the general path', (_name, c) => {
    const bytes = encodeContainer(c);
    expect(bytes).toBeDefined();
    expect(Buffer.compare(bytes!, general.container.encode(containerToWire(c)))).toBe(0);
    const asMessage = general.message.encode(containerMessage(c));
    expect(Buffer.compare(asMessage, general.message.encode({ container: containerToWire(c) }))).toBe(0);
    expect(general.message.decode(asMessage).container).toEqual(general.message.decode(general.message.encode({ container: containerToWire(c) })).container);
  });

  it('answers List with every container, in order, as the general path does', () => {
    const all = cases.map(([, c]) => c);
    const bytes = general.list.encode(containersResponse(all));
    expect(Buffer.compare(bytes, general.list.encode({ containers: all.map(containerToWire) }))).toBe(0);
    expect(general.list.decode(bytes).containers.map((c) => c.id)).toEqual(all.map((c) => c.id));
    expect(general.list.decode(general.list.encode(containersResponse([]))).containers).toEqual([]);
  });

  it('leaves a time before 1970 to the general path, which gives the same message', () => {
    const old = { ...base, createdAt: new Date(-1_500) };
    expect(encodeContainer(old)).toBeUndefined();
    const bytes = general.message.encode(containerMessage(old));
    expect(Buffer.compare(bytes, general.message.encode({ container: containerToWire(old) }))).toBe(0);
    expect(Number(general.message.decode(bytes).container!.created_at!.seconds)).toBe(-2);
  });

  it('sends an encoded message only through the codec of its own type', () => {
    const encoded = containerMessage(base);
    expect(() => general.list.encode(encoded as never)).toThrow(/ListContainerMessage message cannot be sent as .*ListContainersResponse/);
    const raw = encodedMessage('containerd.services.containers.v1.ListContainerMessage', Buffer.from([0x0a, 0x00]));
    expect(general.message.encode(raw)).toEqual(Buffer.from([0x0a, 0x00]));
  });
});
