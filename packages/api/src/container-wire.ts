// containerd.services.containers.v1.Container written straight from a stored container, for the answers that carry
// thousands of them (Containers.List and ListStream: `ctr containers ls`). The general path builds the wire object
// (containerToWire), converts it again (protobufjs fromObject), prunes its defaults and encodes it through protobufjs'
// Writer, allocating at every step; with 2,000 containers of a 3 KB spec that allocation made the garbage collector
// the largest cost of a list (docs/performance.md). Here each container is measured, then written into one buffer.
// The bytes are those of the general path (the tests compare them): fields in number order, proto3 defaults
// omitted, map entries in key insertion order with key and value both written, sub-messages always written.
import type { AnyValue, Container } from '@berth/core';
import { encodedMessage, messageCodec } from './codec.js';
import type { containerd } from './generated/types.js';
import { containerToWire } from './service-impl.js';

/** Tag bytes (field number << 3 | wire type 2, length-delimited; 0, varint) of the fields written here. */
const LEN = 2;
const tag = (field: number, wire: number): number => (field << 3) | wire;

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Bytes of a length-delimited field holding `length` bytes (tags here are one byte: fields 1-15). */
const delimited = (length: number): number => 1 + varintSize(length) + length;
const stringSize = (s: string): number => (s === '' ? 0 : delimited(Buffer.byteLength(s)));

interface Timestamp {
  readonly seconds: number;
  readonly nanos: number;
}

function timestampOf(date: Date): Timestamp | undefined {
  const ms = date.getTime();
  const seconds = Math.floor(ms / 1000);
  // Negative seconds are 10-byte two's-complement varints: rare enough (dates before 1970) for the general path.
  if (!Number.isSafeInteger(seconds) || seconds < 0) return undefined;
  return { seconds, nanos: (ms - seconds * 1000) * 1_000_000 };
}

const timestampBody = (t: Timestamp): number => (t.seconds ? 1 + varintSize(t.seconds) : 0) + (t.nanos ? 1 + varintSize(t.nanos) : 0);
const anyBody = (a: AnyValue): number => stringSize(a.typeUrl) + (a.value.length ? delimited(a.value.length) : 0);

class Out {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  varint(n: number): void {
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }

  header(field: number, length: number): void {
    this.buf[this.pos++] = tag(field, LEN);
    this.varint(length);
  }

  string(field: number, s: string, always = false): void {
    if (s === '' && !always) return;
    const length = Buffer.byteLength(s);
    this.header(field, length);
    this.pos += this.buf.write(s, this.pos, length, 'utf8');
  }

  bytes(field: number, b: Uint8Array): void {
    if (b.length === 0) return;
    this.header(field, b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  any(field: number, a: AnyValue): void {
    this.header(field, anyBody(a));
    this.string(1, a.typeUrl);
    this.bytes(2, a.value);
  }

  timestamp(field: number, t: Timestamp): void {
    this.header(field, timestampBody(t));
    if (t.seconds) {
      this.buf[this.pos++] = tag(1, 0);
      this.varint(t.seconds);
    }
    if (t.nanos) {
      this.buf[this.pos++] = tag(2, 0);
      this.varint(t.nanos);
    }
  }
}

/** The encoding of `Container` (as field `field` of an outer message when given), or undefined when only the general path can write it. */
export function encodeContainer(c: Container, field?: number): Buffer | undefined {
  const created = timestampOf(c.createdAt);
  const updated = timestampOf(c.updatedAt);
  if (!created || !updated) return undefined;
  const labels = Object.entries(c.labels);
  const extensions = Object.entries(c.extensions);
  let size = stringSize(c.id) + stringSize(c.image) + stringSize(c.snapshotter) + stringSize(c.snapshotKey);
  for (const [k, v] of labels) size += delimited(delimited(Buffer.byteLength(k)) + delimited(Buffer.byteLength(v)));
  const runtimeBody = stringSize(c.runtime.name) + (c.runtime.options ? delimited(anyBody(c.runtime.options)) : 0);
  size += delimited(runtimeBody);
  if (c.spec) size += delimited(anyBody(c.spec));
  size += delimited(timestampBody(created)) + delimited(timestampBody(updated));
  for (const [k, v] of extensions) size += delimited(delimited(Buffer.byteLength(k)) + delimited(anyBody(v)));

  const total = field === undefined ? size : delimited(size);
  const out = new Out(Buffer.allocUnsafe(total));
  if (field !== undefined) out.header(field, size);
  out.string(1, c.id);
  for (const [k, v] of labels) {
    out.header(2, delimited(Buffer.byteLength(k)) + delimited(Buffer.byteLength(v)));
    out.string(1, k, true);
    out.string(2, v, true);
  }
  out.string(3, c.image);
  out.header(4, runtimeBody);
  out.string(1, c.runtime.name);
  if (c.runtime.options) out.any(2, c.runtime.options);
  if (c.spec) out.any(5, c.spec);
  out.string(6, c.snapshotter);
  out.string(7, c.snapshotKey);
  out.timestamp(8, created);
  out.timestamp(9, updated);
  for (const [k, v] of extensions) {
    out.header(10, delimited(Buffer.byteLength(k)) + delimited(anyBody(v)));
    out.string(1, k, true);
    out.any(2, v);
  }
  if (out.pos !== total) throw new Error(`container ${JSON.stringify(c.id)}: encoded ${out.pos} bytes, measured ${total}`);
  return out.buf;
}

/** `Container` as field 1 of a message (ListContainerMessage, ListContainersResponse's repeated field, ...). */
function asField1(c: Container): Buffer {
  return encodeContainer(c, 1) ?? messageCodec('containerd.services.containers.v1.ListContainerMessage').encode({ container: containerToWire(c) });
}

/** One ListStream message, encoded: what `ListStream` yields. */
export function containerMessage(c: Container): containerd.services.containers.v1.ListContainerMessageInput {
  return encodedMessage('containerd.services.containers.v1.ListContainerMessage', asField1(c));
}

/** The List answer, encoded: each container as the repeated field 1, which is each ListContainerMessage's bytes. */
export function containersResponse(containers: readonly Container[]): containerd.services.containers.v1.ListContainersResponseInput {
  const parts = containers.map(asField1);
  return encodedMessage('containerd.services.containers.v1.ListContainersResponse', Buffer.concat(parts));
}
