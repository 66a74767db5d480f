// Protobuf wire bytes written by hand, and the malformed variants of a valid request that the corpus sends.
// Every malformation below is one that Go's gogo-generated Unmarshal (containerd 1.6's decoder) refuses: the
// comments name the error it returns, so a decoder that accepts one is known to differ from containerd.
import { findMessageType } from '@berth/api';

export const WireType = { Varint: 0, Fixed64: 1, Bytes: 2, StartGroup: 3, EndGroup: 4, Fixed32: 5 } as const;

export function varint(value: number | bigint): Buffer {
  let v = BigInt(value);
  if (v < 0n) v &= (1n << 64n) - 1n; // negative int64s are ten-byte two's complement varints
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return Buffer.from(out);
}

export const tag = (field: number, wire: number): Buffer => varint((BigInt(field) << 3n) | BigInt(wire));

export const bytesField = (field: number, payload: Uint8Array): Buffer =>
  Buffer.concat([tag(field, WireType.Bytes), varint(payload.length), payload]);

/** One top-level field of an encoded message: where it starts, where its payload starts and where it ends. */
export interface WireField {
  readonly field: number;
  readonly wire: number;
  readonly start: number;
  readonly payloadStart: number;
  readonly end: number;
}

function readVarint(buf: Uint8Array, pos: number): { value: bigint; next: number } {
  let value = 0n;
  for (let shift = 0n, i = pos; i < buf.length; i++, shift += 7n) {
    value |= BigInt(buf[i]! & 0x7f) << shift;
    if (buf[i]! < 0x80) return { value, next: i + 1 };
  }
  throw new RangeError(`truncated varint at ${pos}`);
}

/** The top-level fields of a well-formed message (the valid requests this suite starts from). */
export function scanFields(buf: Uint8Array): WireField[] {
  const fields: WireField[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const start = pos;
    const key = readVarint(buf, pos);
    const field = Number(key.value >> 3n);
    const wire = Number(key.value & 7n);
    pos = key.next;
    let payloadStart = pos;
    switch (wire) {
      case WireType.Varint:
        pos = readVarint(buf, pos).next;
        break;
      case WireType.Fixed64:
        pos += 8;
        break;
      case WireType.Fixed32:
        pos += 4;
        break;
      case WireType.Bytes: {
        const len = readVarint(buf, pos);
        payloadStart = len.next;
        pos = len.next + Number(len.value);
        break;
      }
      default:
        throw new RangeError(`wire type ${wire} at ${start} in a message meant to be valid`);
    }
    if (pos > buf.length) throw new RangeError(`field ${field} at ${start} runs past the end`);
    fields.push({ field, wire, start, payloadStart, end: pos });
  }
  return fields;
}

/** A field number the message does not define: garbage under it reaches the decoder's skip path. */
export function unknownField(messageType: string): number {
  const type = findMessageType(messageType);
  if (!type) throw new Error(`message ${messageType}: not found`);
  return Math.max(0, ...type.fieldsArray.map((f) => f.id)) + 1;
}

export interface Malformation {
  readonly name: string;
  readonly bytes: Buffer;
}

/** The wire type of one value of a field (packed repeated scalars may also come as Bytes). */
function wireTypeOf(type: string, isMessage: boolean): number {
  if (isMessage || type === 'string' || type === 'bytes') return WireType.Bytes;
  if (['fixed64', 'sfixed64', 'double'].includes(type)) return WireType.Fixed64;
  if (['fixed32', 'sfixed32', 'float'].includes(type)) return WireType.Fixed32;
  return WireType.Varint;
}

/** A payload of the given wire type that is itself well-formed (so only the type mismatch is wrong). */
function payloadOfWire(wire: number): Buffer {
  switch (wire) {
    case WireType.Varint:
      return varint(1);
    case WireType.Fixed64:
      return Buffer.alloc(8, 1);
    case WireType.Fixed32:
      return Buffer.alloc(4, 1);
    default:
      return Buffer.concat([varint(1), Buffer.from('x')]);
  }
}

/**
 * Malformed variants of `valid` (an encoding of `requestType`). Each keeps the valid fields first, so a decoder that
 * stops at the garbage and acts on what it read is caught doing it.
 */
export function malformations(requestType: string, valid: Buffer): Malformation[] {
  const type = findMessageType(requestType);
  if (!type) throw new Error(`message ${requestType}: not found`);
  const known = type.fieldsArray.map((f) => {
    f.resolve();
    return { id: f.id, wire: f.map ? WireType.Bytes : wireTypeOf(f.type, f.resolvedType !== null && 'fields' in f.resolvedType) };
  });
  const messageFields = type.fieldsArray.filter((f) => f.map || (f.resolvedType !== null && 'fields' in f.resolvedType));
  const unknown = unknownField(requestType);
  const out: Malformation[] = [];
  const add = (name: string, ...parts: Uint8Array[]) => out.push({ name, bytes: Buffer.concat([valid, ...parts]) });

  const fields = scanFields(valid);
  // Truncated length-delimited fields (io.ErrUnexpectedEOF): the last byte of the field and everything after it cut.
  const delimited = fields.filter((f) => f.wire === WireType.Bytes && f.end > f.payloadStart);
  for (const f of delimited.slice(0, 3)) {
    out.push({ name: `truncated field ${f.field}`, bytes: valid.subarray(0, f.end - 1) });
  }
  // A nested field that runs one byte past the end of its enclosing message, whose own length is consistent: the
  // inner decoder must stop at the enclosing length (io.ErrUnexpectedEOF), not read into the fields that follow.
  const messageIds = new Set(messageFields.map((f) => f.id));
  for (const f of delimited.filter((d) => messageIds.has(d.field))) {
    let inner: WireField[];
    try {
      inner = scanFields(valid.subarray(f.payloadStart, f.end));
    } catch {
      continue; // an empty or unusual sub-message; the next one may do
    }
    const last = inner.at(-1);
    if (!last || last.wire !== WireType.Bytes || last.end <= last.payloadStart) continue;
    const innerBytes = valid.subarray(f.payloadStart, f.payloadStart + last.end - 1);
    const rebuilt = Buffer.concat([valid.subarray(0, f.start), tag(f.field, WireType.Bytes), varint(innerBytes.length), innerBytes, valid.subarray(f.end)]);
    out.push({ name: `nested field ${f.field}.${last.field} overruns its message`, bytes: Buffer.concat([rebuilt, tag(unknown, WireType.Varint), varint(0)]) });
    break;
  }
  // A known field with the wrong wire type ("proto: wrong wireType = N for field X"): neither its own nor Bytes,
  // which a repeated scalar may use when packed.
  const first = known[0];
  if (first) {
    const wrong = first.wire === WireType.Bytes ? WireType.Varint : first.wire === WireType.Fixed32 ? WireType.Fixed64 : WireType.Fixed32;
    add(`field ${first.id} with wire type ${wrong}`, tag(first.id, wrong), payloadOfWire(wrong));
  }
  // Field number 0 ("illegal tag 0").
  add('field number 0 (bytes)', tag(0, WireType.Bytes), varint(0));
  add('field number 0 (varint)', tag(0, WireType.Varint), varint(0));
  // Wire types that do not exist ("proto: illegal wireType 6/7").
  add('wire type 6', tag(unknown, 6), varint(0));
  add('wire type 7', tag(unknown, 7), varint(0));
  // Groups: an end without a start ("wiretype end group for non-group"), a start never ended (unexpected EOF).
  add('end group without start', tag(unknown, WireType.EndGroup));
  add('unterminated start group', tag(unknown, WireType.StartGroup));
  // Varints of 11 bytes overflow 64 bits (ErrIntOverflow), in a value and in a tag.
  add('overlong varint value', tag(unknown, WireType.Varint), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]));
  add('overlong varint tag', Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]));
  add('truncated tag', Buffer.from([0x80]));
  // Lengths that point past the end (unexpected EOF) or are negative as int64 (ErrInvalidLength).
  add('length past the end', tag(unknown, WireType.Bytes), varint(100), Buffer.from('abc'));
  add('negative length', tag(unknown, WireType.Bytes), varint(-1n), Buffer.from('abc'));
  add('truncated fixed64', tag(unknown, WireType.Fixed64), Buffer.from([1, 2, 3]));
  add('truncated fixed32', tag(unknown, WireType.Fixed32), Buffer.from([1, 2]));
  // Garbage inside a message-typed field: the nested decoder must fail and fail the whole request.
  const nested = messageFields[0];
  if (nested) add(`garbage in message field ${nested.id}`, tag(nested.id, WireType.Bytes), varint(4), Buffer.from([0xff, 0xff, 0xff, 0xff]));
  return out;
}
