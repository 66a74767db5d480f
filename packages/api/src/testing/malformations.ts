// A generator of valid and malformed encodings of any protobufjs message Type, for strict-decoding tests. The
// encodings are built field by field from a sample with every field set, so the generator knows where each
// top-level record starts and ends without asking the decoder under test: a cut at a record boundary is a valid
// (shorter) message, every other cut is malformed. Wire facts come from the protobuf encoding spec, not from
// strict-decode.ts.
import protobuf from 'protobufjs';

export interface Encoding {
  /** What was done, for failure reports (`truncated at 3`, `field 2 (labels) > entry key with wire type 0`). */
  readonly what: string;
  readonly bytes: Buffer;
}

/** One top-level record of a sample: a field's tag and value, as protobufjs encodes it. */
export interface SampleRecord {
  readonly field: protobuf.Field;
  readonly bytes: Buffer;
}

const TIMESTAMP = '.google.protobuf.Timestamp';
export const MIN_TIMESTAMP_SECONDS = -62135596800;
export const MAX_TIMESTAMP_SECONDS = 253402300800;
/** An unknown field number no request type uses. */
const UNKNOWN = 1999;

const VARINT_TYPES = new Set(['int32', 'uint32', 'sint32', 'int64', 'uint64', 'sint64', 'bool']);
const FIXED64_TYPES = new Set(['fixed64', 'sfixed64', 'double']);
const FIXED32_TYPES = new Set(['fixed32', 'sfixed32', 'float']);

/** Varint of a 64-bit two's complement value. */
export function varint(value: number | bigint): number[] {
  let x = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  do {
    let byte = Number(x & 0x7fn);
    x >>= 7n;
    if (x !== 0n) byte |= 0x80;
    out.push(byte);
  } while (x !== 0n);
  return out;
}

export const tagOf = (id: number, wire: number): number[] => varint(id * 8 + wire);

export function lengthDelimited(id: number, payload: Uint8Array): Buffer {
  return Buffer.from([...tagOf(id, 2), ...varint(payload.length), ...payload]);
}

/** Length of the varint at the start of `bytes`. */
export function varintLength(bytes: Uint8Array, at = 0): number {
  let n = at;
  while (bytes[n]! >= 0x80) n++;
  return n + 1 - at;
}

function scalarTypeOf(field: protobuf.Field): string {
  return field.resolvedType instanceof protobuf.Enum ? 'int32' : field.type;
}

/** The wire types a field accepts: its own, and 2 as well for repeated numeric fields (packed). */
export function wireTypesOf(field: protobuf.Field): number[] {
  field.resolve();
  if (field.map) return [2];
  if (field.resolvedType instanceof protobuf.Type) return [field.delimited ? 3 : 2];
  const type = scalarTypeOf(field);
  const own = VARINT_TYPES.has(type) ? 0 : FIXED64_TYPES.has(type) ? 1 : FIXED32_TYPES.has(type) ? 5 : 2;
  return field.repeated && own !== 2 ? [own, 2] : [own];
}

function scalarSample(type: string, second: boolean): unknown {
  switch (type) {
    case 'string':
      return second ? 'xyz' : 'ab\u00e9';
    case 'bytes':
      return Buffer.from(second ? [9] : [1, 2, 3]);
    case 'bool':
      return true;
    case 'int32':
    case 'sint32':
    case 'sfixed32':
      return second ? 5 : -7; // negative int32: a 10-byte varint
    case 'int64':
    case 'sint64':
    case 'sfixed64':
      return second ? 6 : -(2 ** 40);
    case 'float':
    case 'double':
      return second ? 2.5 : 1.5;
    default:
      return second ? 8 : 2 ** 31 + 3;
  }
}

function enumSample(e: protobuf.Enum): number {
  const nonZero = Object.values(e.values).find((n) => n !== 0);
  return nonZero ?? 1;
}

function valueSample(field: protobuf.Field, depth: number, second: boolean): unknown {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return messageSample(resolved, depth + 1);
  if (resolved instanceof protobuf.Enum) return enumSample(resolved);
  return scalarSample(field.type, second);
}

/** An object with every field set to a non-default value (a oneof: its first member), nested types to depth 3. */
export function messageSample(type: protobuf.Type, depth = 0): Record<string, unknown> {
  if (type.fullName === TIMESTAMP) return { seconds: 1_700_000_000, nanos: 5 };
  const out: Record<string, unknown> = {};
  if (depth > 3) return out;
  const oneofsSeen = new Set<string>();
  for (const field of type.fieldsArray) {
    field.resolve();
    if (field.partOf) {
      if (oneofsSeen.has(field.partOf.name)) continue;
      oneofsSeen.add(field.partOf.name);
    }
    if (field.map) {
      const keyType = field instanceof protobuf.MapField ? field.keyType : 'string';
      const key = keyType === 'string' ? 'k1' : keyType === 'bool' ? 'true' : '7';
      out[field.name] = { [key]: valueSample(field, depth, false) };
    } else if (field.repeated) {
      out[field.name] = [valueSample(field, depth, false), valueSample(field, depth, true)];
    } else {
      out[field.name] = valueSample(field, depth, false);
    }
  }
  return out;
}

function encode(type: protobuf.Type, obj: Record<string, unknown>): Buffer {
  return Buffer.from(type.encode(type.fromObject(obj)).finish());
}

/** The sample as records: one per singular field, per element of a repeated field (packed: one), per map entry. */
export function sampleRecords(type: protobuf.Type): SampleRecord[] {
  const sample = messageSample(type);
  const records: SampleRecord[] = [];
  const fields = [...type.fieldsArray].sort((a, b) => a.id - b.id);
  for (const field of fields) {
    if (!(field.name in sample)) continue;
    const value = sample[field.name];
    const pieces: unknown[] = field.map
      ? Object.entries(value as Record<string, unknown>).map(([k, v]) => ({ [k]: v }))
      : field.repeated && wireTypesOf(field).length === 1
        ? (value as unknown[]).map((v) => [v])
        : [value];
    for (const piece of pieces) records.push({ field, bytes: encode(type, { [field.name]: piece }) });
  }
  return records;
}

export function concat(records: readonly { bytes: Uint8Array }[]): Buffer {
  return Buffer.concat(records.map((r) => r.bytes));
}

/** The record with its tag replaced. */
function retag(record: Buffer, id: number, wire: number): Buffer {
  return Buffer.concat([Buffer.from(tagOf(id, wire)), record.subarray(varintLength(record))]);
}

/** Payload of a length-delimited record. */
function payloadOf(record: Buffer): Buffer {
  const tagLength = varintLength(record);
  return record.subarray(tagLength + varintLength(record, tagLength));
}

function label(field: protobuf.Field): string {
  return `field ${field.id} (${field.name})`;
}

/** Encodings that must decode, and decode to the same values as the plain sample (unknown fields dropped). */
export function validVariants(type: protobuf.Type): Encoding[] {
  const records = sampleRecords(type);
  const plain = concat(records);
  const unknown: [string, number[]][] = [
    ['unknown varint', [...tagOf(UNKNOWN, 0), ...varint(-1)]],
    ['unknown fixed64', [...tagOf(UNKNOWN, 1), 1, 2, 3, 4, 5, 6, 7, 8]],
    ['unknown bytes', [...tagOf(UNKNOWN, 2), 2, 0xff, 0xfe]],
    ['unknown fixed32', [...tagOf(UNKNOWN, 5), 1, 2, 3, 4]],
    ['unknown group', [...tagOf(UNKNOWN, 3), ...tagOf(1, 0), 1, ...tagOf(2, 3), ...tagOf(1, 5), 0, 0, 0, 0, ...tagOf(2, 4), ...tagOf(UNKNOWN, 4)]],
    ['padded unknown tag', [0x80 | ((UNKNOWN * 8) & 0x7f), 0x80 | ((UNKNOWN * 8) >> 7), 0x80, 0x00, 1]],
  ];
  const out: Encoding[] = [{ what: 'sample', bytes: plain }];
  for (const [what, bytes] of unknown) {
    out.push({ what: `${what} first`, bytes: Buffer.concat([Buffer.from(bytes), plain]) });
    out.push({ what: `${what} last`, bytes: Buffer.concat([plain, Buffer.from(bytes)]) });
  }
  // Repeated numeric fields both ways: packed (protobufjs's proto3 default) and one record per element.
  for (const record of records) {
    const wires = wireTypesOf(record.field);
    if (wires.length === 2) {
      const unpacked = unpack(record);
      out.push({ what: `${label(record.field)} unpacked`, bytes: concat(records.map((r) => (r === record ? { bytes: unpacked } : r))) });
    }
    if (record.field.map) {
      const entry = payloadOf(record.bytes);
      const extra = Buffer.concat([entry, Buffer.from([...tagOf(3, 0), 1])]);
      out.push({ what: `${label(record.field)} entry with an unknown field`, bytes: concat(records.map((r) => (r === record ? { bytes: lengthDelimited(record.field.id, extra) } : r))) });
    }
  }
  return out;
}

/** A packed record rewritten as one record per element, with the element encodings protobufjs writes. */
function unpack(record: SampleRecord): Buffer {
  const field = record.field;
  const type = scalarTypeOf(field);
  const [own] = wireTypesOf(field);
  const payload = payloadOf(record.bytes);
  const reader = protobuf.Reader.create(payload);
  const pieces: Buffer[] = [];
  while (reader.pos < reader.len) {
    const start = reader.pos;
    (reader as unknown as Record<string, () => unknown>)[type]!.call(reader);
    pieces.push(Buffer.concat([Buffer.from(tagOf(field.id, own!)), payload.subarray(start, reader.pos)]));
  }
  return Buffer.concat(pieces);
}

/** Timestamps the containerd API refuses (gogo's stdtime) and the extremes it accepts. */
export const INVALID_TIMESTAMPS = [
  { nanos: 2_000_000_000 },
  { nanos: 1_000_000_000 },
  { nanos: -1 },
  { seconds: MIN_TIMESTAMP_SECONDS - 1 },
  { seconds: MAX_TIMESTAMP_SECONDS },
  { seconds: -(2 ** 53) },
];
export const VALID_EXTREME_TIMESTAMPS = [{ seconds: MIN_TIMESTAMP_SECONDS }, { seconds: MAX_TIMESTAMP_SECONDS - 1, nanos: 999_999_999 }];

export interface MalformationOptions {
  /** Depth of nested messages to malform recursively (default 2). */
  readonly depth?: number;
}

/** Encodings that a strict decoder must refuse, each made from the sample by one change. */
export function malformations(type: protobuf.Type, options: MalformationOptions = {}): Encoding[] {
  const depth = options.depth ?? 2;
  const records = sampleRecords(type);
  const plain = concat(records);
  const out: Encoding[] = [];
  const replacing = (record: SampleRecord, bytes: Buffer, last = false): Buffer => {
    const others = records.filter((r) => r !== record);
    return last ? concat([...others, { bytes }]) : concat(records.map((r) => (r === record ? { bytes } : r)));
  };

  // Cut at every byte that is not a record boundary.
  const boundaries = new Set<number>([0]);
  let offset = 0;
  for (const r of records) boundaries.add((offset += r.bytes.length));
  for (let cut = 1; cut < plain.length; cut++) {
    if (!boundaries.has(cut)) out.push({ what: `truncated at ${cut} of ${plain.length}`, bytes: plain.subarray(0, cut) });
  }

  // Tags no message may carry, first or after the first record.
  const illegal: [string, number[]][] = [
    ['field number 0, varint', [0x00, 0x00]],
    ['field number 0, bytes', [0x02, 0x00]],
    ['field number 0, fixed32', [0x05, 0, 0, 0, 0]],
    ['unknown field with wire type 6', [...tagOf(UNKNOWN, 6), 0]],
    ['unknown field with wire type 7', [...tagOf(UNKNOWN, 7), 0]],
    ['end group outside a group', [...tagOf(UNKNOWN, 4)]],
    ['unknown group with wire type 6 inside', [...tagOf(UNKNOWN, 3), ...tagOf(1, 6), ...tagOf(UNKNOWN, 4)]],
    ['unknown varint of 11 bytes', [...tagOf(UNKNOWN, 0), ...new Array<number>(10).fill(0xff), 0x01]],
    ['unknown bytes with a negative length', [...tagOf(UNKNOWN, 2), ...varint(-1)]],
    // Valid for gogo, but no encoder pads a tag and protobufjs would misread it (see strict-decode.ts).
    ['tag of 6 bytes', [0x80 | ((UNKNOWN * 8) & 0x7f), 0x80 | ((UNKNOWN * 8) >> 7), 0x80, 0x80, 0x80, 0x00, 0x01]],
    ['tag of 11 bytes', [...new Array<number>(10).fill(0x80), 0x01]],
    ['field number above 2^29-1', [...varint(2 ** 29 * 8), 0]],
  ];
  const firstLength = records[0]?.bytes.length ?? 0;
  for (const [what, bytes] of illegal) {
    out.push({ what: `${what} first`, bytes: Buffer.concat([Buffer.from(bytes), plain]) });
    if (records.length > 1) {
      out.push({ what: `${what} after the first record`, bytes: Buffer.concat([plain.subarray(0, firstLength), Buffer.from(bytes), plain.subarray(firstLength)]) });
    }
  }
  // Unknown fields cut short: last, where no following byte can complete them.
  const cutShort: [string, number[]][] = [
    ['unclosed unknown group', [...tagOf(UNKNOWN, 3), ...tagOf(1, 0), 1]],
    ['unknown varint cut short', [...tagOf(UNKNOWN, 0), 0xff]],
    ['unknown fixed64 cut short', [...tagOf(UNKNOWN, 1), 1, 2, 3]],
    ['unknown fixed32 cut short', [...tagOf(UNKNOWN, 5), 1]],
    ['unknown bytes past the end', [...tagOf(UNKNOWN, 2), 5, 1]],
    ['tag cut short', [0x80 | ((UNKNOWN * 8) & 0x7f)]],
  ];
  for (const [what, bytes] of cutShort) out.push({ what: `${what} last`, bytes: Buffer.concat([plain, Buffer.from(bytes)]) });

  for (const record of records) {
    const field = record.field;
    const allowed = wireTypesOf(field);
    // Every wire type the field does not take, the rest of the record unchanged.
    for (let wire = 0; wire < 8; wire++) {
      if (!allowed.includes(wire)) out.push({ what: `${label(field)} with wire type ${wire}`, bytes: replacing(record, retag(record.bytes, field.id, wire)) });
    }
    const [own] = allowed;
    if (own === 2 || own === undefined) {
      // A length one past the end (the record moved last, so the extra byte does not exist), then absurd lengths.
      const tagLength = varintLength(record.bytes);
      const payload = payloadOf(record.bytes);
      const tag = record.bytes.subarray(0, tagLength);
      const withLength = (length: number[]) => Buffer.concat([tag, Buffer.from(length), payload]);
      out.push({ what: `${label(field)} length past the end`, bytes: replacing(record, withLength(varint(payload.length + 1)), true) });
      out.push({ what: `${label(field)} length 2^32-1`, bytes: replacing(record, withLength(varint(2 ** 32 - 1))) });
      out.push({ what: `${label(field)} negative length`, bytes: replacing(record, withLength(varint(-2))) });
      out.push({ what: `${label(field)} length varint of 11 bytes`, bytes: replacing(record, withLength([...new Array<number>(10).fill(0x80), 0x01])) });
      if (field.resolvedType instanceof protobuf.Type && depth > 0) {
        for (const inner of nestedMalformations(field.resolvedType, depth)) {
          out.push({ what: `${label(field)} > ${inner.what}`, bytes: replacing(record, lengthDelimited(field.id, inner.bytes)) });
        }
      }
      if (field instanceof protobuf.MapField) {
        for (const inner of entryMalformations(field, payload)) {
          out.push({ what: `${label(field)} > ${inner.what}`, bytes: replacing(record, lengthDelimited(field.id, inner.bytes)) });
        }
      }
    } else if (own === 0 && allowed.length === 1) {
      // A varint value of 11 bytes.
      const tag = record.bytes.subarray(0, varintLength(record.bytes));
      out.push({ what: `${label(field)} varint of 11 bytes`, bytes: replacing(record, Buffer.concat([tag, Buffer.from([...new Array<number>(10).fill(0xff), 0x01])])) });
      out.push({ what: `${label(field)} varint cut short`, bytes: replacing(record, Buffer.concat([tag, Buffer.from([0xff])]), true) });
    } else if (own === 1 || own === 5) {
      out.push({ what: `${label(field)} cut short`, bytes: replacing(record, record.bytes.subarray(0, record.bytes.length - 1), true) });
    }
  }
  return out;
}

/** Malformed contents of a message-typed field: those of its type, and for a Timestamp the out-of-range ones. */
function nestedMalformations(type: protobuf.Type, depth: number): Encoding[] {
  const own = malformations(type, { depth: depth - 1 });
  if (type.fullName === TIMESTAMP) {
    for (const ts of INVALID_TIMESTAMPS) own.push({ what: `timestamp ${JSON.stringify(ts)}`, bytes: encode(type, ts) });
  }
  return own;
}

/** Malformed map entries: key or value of the wrong wire type, cut short, illegal tags, a malformed value. */
function entryMalformations(field: protobuf.MapField, entry: Buffer): Encoding[] {
  field.resolve();
  const keyWire = VARINT_TYPES.has(field.keyType) ? 0 : FIXED64_TYPES.has(field.keyType) ? 1 : FIXED32_TYPES.has(field.keyType) ? 5 : 2;
  const valueType = field.resolvedType;
  const valueWire = valueType instanceof protobuf.Type ? 2 : valueType instanceof protobuf.Enum ? 0 : VARINT_TYPES.has(field.type) ? 0 : FIXED64_TYPES.has(field.type) ? 1 : FIXED32_TYPES.has(field.type) ? 5 : 2;
  // The entry as protobufjs writes it: key record, then value record.
  const keyLength = varintLength(entry) + (keyWire === 2 ? varintLength(entry, varintLength(entry)) + entry[varintLength(entry)]! : keyWire === 0 ? varintLength(entry, varintLength(entry)) : keyWire === 1 ? 8 : 4);
  const key = entry.subarray(0, keyLength);
  const value = entry.subarray(keyLength);
  const out: Encoding[] = [];
  for (let wire = 0; wire < 8; wire++) {
    if (wire !== keyWire) out.push({ what: `entry key with wire type ${wire}`, bytes: Buffer.concat([retag(key, 1, wire), value]) });
    if (wire !== valueWire && value.length > 0) out.push({ what: `entry value with wire type ${wire}`, bytes: Buffer.concat([key, retag(value, 2, wire)]) });
  }
  for (let cut = 1; cut < entry.length; cut++) {
    if (cut !== keyLength) out.push({ what: `entry cut at ${cut}`, bytes: entry.subarray(0, cut) });
  }
  out.push({ what: 'entry with field number 0', bytes: Buffer.concat([entry, Buffer.from([0x00, 0x00])]) });
  out.push({ what: 'entry with wire type 7', bytes: Buffer.concat([entry, Buffer.from([...tagOf(3, 7), 0])]) });
  if (valueType instanceof protobuf.Type && value.length > 0) {
    for (const inner of nestedMalformations(valueType, 1)) {
      out.push({ what: `entry value > ${inner.what}`, bytes: Buffer.concat([key, lengthDelimited(2, inner.bytes)]) });
    }
  }
  return out;
}
