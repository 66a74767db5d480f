// The corpus is only as good as its malformations: each must be one containerd's decoder refuses, on top of a
// valid request it accepts. `strictRead` below applies the rules of gogo's generated Unmarshal (read in
// containerd's api/**/*.pb.go: field 0, wire types 4/6/7, wrong wire types of known fields, overflowing varints,
// negative or overrunning lengths, nested messages decoded within their own bounds) to every method's requests.
import { allServiceNames, findMessageType, messageCodec, packAny, serviceMethods } from '@berth/api';
import { describe, expect, it } from 'vitest';
import { corpusFor } from './corpus.js';
import type { Fixture } from './state.js';
import { malformations, scanFields, varint } from './wire.js';

type PbType = NonNullable<ReturnType<typeof findMessageType>>;
type Field = PbType['fieldsArray'][number];

const SCALAR_WIRE: Record<string, number> = { double: 1, fixed64: 1, sfixed64: 1, float: 5, fixed32: 5, sfixed32: 5, string: 2, bytes: 2 };

function readVarint(buf: Buffer, pos: number): [bigint, number] {
  let v = 0n;
  for (let shift = 0n; ; shift += 7n) {
    if (shift >= 64n) throw new Error('integer overflow');
    if (pos >= buf.length) throw new Error('unexpected EOF');
    const b = buf[pos++]!;
    v |= BigInt(b & 0x7f) << shift;
    if (b < 0x80) return [v, pos];
  }
}

function readLength(buf: Buffer, pos: number): [number, number] {
  const [len, next] = readVarint(buf, pos);
  if (len >= 1n << 63n) throw new Error('negative length');
  if (next + Number(len) > buf.length) throw new Error('unexpected EOF');
  return [Number(len), next];
}

function skip(buf: Buffer, pos: number, wire: number): number {
  switch (wire) {
    case 0:
      return readVarint(buf, pos)[1];
    case 1:
    case 5: {
      const end = pos + (wire === 1 ? 8 : 4);
      if (end > buf.length) throw new Error('unexpected EOF');
      return end;
    }
    case 2: {
      const [len, next] = readLength(buf, pos);
      return next + len;
    }
    case 3:
      for (;;) {
        const [tag, next] = readVarint(buf, pos);
        if (Number(tag & 7n) === 4) return next;
        pos = skip(buf, next, Number(tag & 7n));
      }
    default:
      throw new Error(`illegal wireType ${wire}`);
  }
}

/** Throws where gogo's Unmarshal would return an error. */
function strictRead(type: PbType | 'entry', buf: Buffer, entry?: Field): void {
  let pos = 0;
  while (pos < buf.length) {
    const [tag, next] = readVarint(buf, pos);
    pos = next;
    const field = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    if (wire === 4) throw new Error('wiretype end group for non-group');
    if (field <= 0) throw new Error(`illegal tag ${field}`);
    // A map entry is a message of key = 1, value = 2.
    const f = type === 'entry' ? undefined : type.fieldsById[field];
    const entryValue = type === 'entry' && field === 2 ? entry : undefined;
    if (!f && !entryValue && !(type === 'entry' && field === 1)) {
      pos = skip(buf, pos, wire);
      continue;
    }
    const resolved = (f ?? entryValue)?.resolvedType;
    const isMessage = f?.map || (resolved !== null && resolved !== undefined && 'fields' in resolved);
    const scalar = type === 'entry' && field === 1 ? (entry as unknown as { keyType: string }).keyType : (f ?? entryValue)!.type;
    const want = isMessage ? 2 : (SCALAR_WIRE[scalar] ?? 0);
    const packed = f?.repeated && want !== 2 && wire === 2;
    if (wire !== want && !packed) throw new Error(`wrong wireType ${wire} for field ${field}`);
    if (wire !== 2) {
      pos = skip(buf, pos, wire);
      continue;
    }
    const [len, start] = readLength(buf, pos);
    const sub = buf.subarray(start, start + len);
    pos = start + len;
    if (f?.map) strictRead('entry', sub, f);
    else if (isMessage) strictRead(resolved as PbType, sub);
  }
}

const fixture: Fixture = {
  ns: 'chaos',
  emptyNs: 'chaos-empty',
  digest: `sha256:${'1'.repeat(64)}`,
  size: 3,
  missingDigest: `sha256:${'2'.repeat(64)}`,
  lease: 'chaos-lease',
  image: 'chaos.example/fixture:latest',
  container: 'chaos-container',
  ingest: 'chaos-ingest',
  snapshotter: 'native',
  snapshot: 'chaos-committed',
  active: 'chaos-active',
  event: packAny('containerd.events.NamespaceCreate', { name: 'x', labels: { a: 'b' } }),
};

const methods = allServiceNames().flatMap((service) => serviceMethods(service).map((m) => ({ service, m })));

describe('malformations', () => {
  it.each(methods.map(({ service, m }) => [`${service}/${m.name}`, service, m] as const))('%s: the valid request passes, every malformation fails', (_, service, m) => {
    const valid = messageCodec(m.requestType).encode(corpusFor(service, m.name, fixture)?.valid ?? {});
    const type = findMessageType(m.requestType)!;
    expect(() => strictRead(type, valid)).not.toThrow();
    const variants = malformations(m.requestType, valid);
    expect(variants.length).toBeGreaterThanOrEqual(13);
    for (const v of variants) expect(() => strictRead(type, v.bytes), v.name).toThrow();
  });

  it('includes the nested cases where the schema has them', () => {
    const valid = messageCodec('containerd.services.leases.v1.CreateRequest').encode({ id: 'ab', labels: { k: 'v' } });
    const names = malformations('containerd.services.leases.v1.CreateRequest', valid).map((v) => v.name);
    expect(names).toContain('truncated field 1');
    expect(names).toContain('nested field 3.2 overruns its message');
    expect(names).toContain('garbage in message field 3');
  });

  it('encodes varints as protobuf does, negatives in ten bytes', () => {
    expect(varint(300)).toEqual(Buffer.from([0xac, 0x02]));
    expect(varint(-1n)).toEqual(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]));
    expect(scanFields(Buffer.from([0x0a, 0x02, 0x61, 0x62, 0x10, 0x01]))).toEqual([
      { field: 1, wire: 2, start: 0, payloadStart: 2, end: 4 },
      { field: 2, wire: 0, start: 4, payloadStart: 5, end: 6 },
    ]);
  });
});
