import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { conversionOptions, findMessageType, messageCodec } from './codec.js';
import { allServiceNames, serviceMethods } from './services.js';
import { checkEncoding, isProtoDecodeError, MAX_NESTING_DEPTH, ProtoDecodeError } from './strict-decode.js';
import {
  INVALID_TIMESTAMPS,
  VALID_EXTREME_TIMESTAMPS,
  lengthDelimited,
  malformations,
  tagOf,
  validVariants,
  varint,
  type Encoding,
} from './testing/malformations.js';

/** Every request type of every method of every service in the Root, and ttrpc's own envelope. */
const requestTypes = [
  ...new Set([...allServiceNames().flatMap((s) => serviceMethods(s).map((m) => m.requestType)), 'ttrpc.Request']),
].sort();

/** Types that exercise what the Root's requests lack: every scalar kind, repeated numerics, other map keys. */
const testRoot = new protobuf.Root().loadSync('google/protobuf/timestamp.proto');
protobuf.parse(`
  syntax = "proto3";
  package t;
  enum Color { NONE = 0; RED = 1; BLUE = 2; }
  message Inner { string s = 1; int64 n = 2; google.protobuf.Timestamp at = 3; }
  message Every {
    int32 i32 = 1; uint32 u32 = 2; sint32 s32 = 3; int64 i64 = 4; uint64 u64 = 5; sint64 s64 = 6; bool b = 7;
    fixed32 f32 = 8; sfixed32 sf32 = 9; float fl = 10; fixed64 f64 = 11; sfixed64 sf64 = 12; double d = 13;
    string s = 14; bytes by = 15; Color c = 16; Inner inner = 17;
    repeated int32 ri32 = 18; repeated uint64 ru64 = 19; repeated bool rb = 20; repeated fixed32 rf32 = 21;
    repeated double rd = 22; repeated Color rc = 23; repeated sint64 rs64 = 24; repeated string rs = 25;
    repeated Inner rinner = 26;
    map<int32, string> by_int = 27; map<string, Inner> by_name = 28; map<uint64, Color> colors = 29;
    map<string, google.protobuf.Timestamp> times = 30;
    google.protobuf.Timestamp at = 31; repeated google.protobuf.Timestamp ats = 32;
    oneof choice { string name = 33; int32 number = 34; }
    int32 far = 100000;
  }
  message Node { Node child = 1; int32 v = 2; }
`, testRoot, { keepCase: true });
testRoot.resolveAll();
const testType = (name: string) => testRoot.lookupType(name);

function decodeTest(type: protobuf.Type, bytes: Uint8Array): unknown {
  checkEncoding(type, bytes);
  return type.toObject(type.decode(bytes), conversionOptions);
}

/** Malformations that were not refused with a ProtoDecodeError naming the type (empty when all were). */
function accepted(name: string, decode: (bytes: Uint8Array) => unknown, cases: readonly Encoding[]): string[] {
  const out: string[] = [];
  for (const c of cases) {
    try {
      decode(c.bytes);
      out.push(`${c.what}: accepted ${c.bytes.toString('hex')}`);
    } catch (err) {
      if (!isProtoDecodeError(err) || !err.message.startsWith(`proto: ${name}: `)) out.push(`${c.what}: threw ${String(err)}`);
    }
  }
  return out;
}

function refusal(decode: () => unknown): ProtoDecodeError {
  try {
    decode();
  } catch (err) {
    if (isProtoDecodeError(err)) return err;
    throw err;
  }
  throw new Error('decoded without error');
}

describe('strict decoding of every request type of every service', () => {
  it('covers the services', () => {
    expect(requestTypes.length).toBeGreaterThan(60);
    expect(requestTypes).toContain('containerd.services.leases.v1.CreateRequest');
    expect(requestTypes).toContain('containerd.services.events.ttrpc.v1.ForwardRequest');
    expect(requestTypes).toContain('containerd.task.v2.CreateTaskRequest');
  });

  it.each(requestTypes)('%s refuses every malformation', (name) => {
    const cases = malformations(findMessageType(name)!);
    expect(cases.length).toBeGreaterThan(15);
    expect(accepted(name, (b) => messageCodec(name).decode(b), cases)).toEqual([]);
  });

  it.each(requestTypes)('%s decodes valid variants (unknown fields, groups, padded tags) like the sample', (name) => {
    const codec = messageCodec(name);
    const [sample, ...variants] = validVariants(findMessageType(name)!);
    const expected = codec.decode(sample!.bytes);
    for (const v of variants) expect(codec.decode(v.bytes), v.what).toEqual(expected);
  });

  it('is needed: protobufjs alone accepts many of these malformations', () => {
    let lenient = 0;
    for (const name of ['containerd.services.leases.v1.CreateRequest', 'containerd.services.events.v1.ForwardRequest']) {
      const type = findMessageType(name)!;
      for (const c of malformations(type)) {
        try {
          type.decode(c.bytes);
          lenient++;
        } catch {
          // refused by protobufjs too
        }
      }
    }
    expect(lenient).toBeGreaterThan(20);
  });
});

describe('strict decoding of every wire kind (test types)', () => {
  const every = testType('t.Every');

  it('refuses every malformation of a type with every scalar kind, repeated numerics, maps and a oneof', () => {
    const cases = malformations(every);
    expect(cases.length).toBeGreaterThan(500);
    expect(accepted('t.Every', (b) => decodeTest(every, b), cases)).toEqual([]);
  });

  it('decodes packed and unpacked repeated fields, unknown fields and map entries with extra fields alike', () => {
    const [sample, ...variants] = validVariants(every);
    const expected = decodeTest(every, sample!.bytes) as Record<string, unknown>;
    expect(expected.ri32).toEqual([-7, 5]);
    expect(expected.rc).toEqual(['RED', 'RED']);
    expect(variants.filter((v) => v.what.endsWith('unpacked')).length).toBe(7);
    for (const v of variants) expect(decodeTest(every, v.bytes), v.what).toEqual(expected);
  });

  it('accepts a 10-byte negative int32 and a 10-byte int64, refuses 32-bit varints of 6 to 9 bytes', () => {
    const i32 = (bytes: number[]) => Buffer.from([...tagOf(1, 0), ...bytes]);
    expect(decodeTest(every, i32(varint(-1)))).toMatchObject({ i32: -1 });
    expect(decodeTest(every, Buffer.from([...tagOf(4, 0), ...varint(-1)]))).toMatchObject({ i64: -1 });
    expect(decodeTest(every, i32([0x85, 0x80, 0x80, 0x80, 0x00]))).toMatchObject({ i32: 5 });
    expect(refusal(() => decodeTest(every, i32([0x85, 0x80, 0x80, 0x80, 0x80, 0x00]))).problem).toMatch(/6 bytes for a 32-bit field/);
    expect(refusal(() => decodeTest(every, Buffer.from([...tagOf(2, 0), ...varint(-1)]))).problem).toMatch(/10 bytes/);
  });

  it('reads a bool as gogo does, and refuses one protobufjs would read differently', () => {
    expect(decodeTest(every, Buffer.from([...tagOf(7, 0), 2]))).toMatchObject({ b: true });
    // 2^32: true for Go, false for protobufjs's 32-bit read.
    expect(refusal(() => decodeTest(every, Buffer.from([...tagOf(7, 0), 0x80, 0x80, 0x80, 0x80, 0x10]))).problem).toMatch(/bool/);
  });

  it('range-checks every Timestamp field, repeated and map values included, but not a top-level Timestamp', () => {
    const ts = testRoot.lookupType('google.protobuf.Timestamp');
    const encodeTs = (t: object) => ts.encode(ts.fromObject(t)).finish();
    for (const bad of INVALID_TIMESTAMPS) {
      for (const id of [31, 32]) expect(() => decodeTest(every, lengthDelimited(id, encodeTs(bad))), JSON.stringify(bad)).toThrow(ProtoDecodeError);
      expect(() => decodeTest(ts, encodeTs(bad))).not.toThrow();
    }
    for (const ok of VALID_EXTREME_TIMESTAMPS) {
      expect(decodeTest(every, lengthDelimited(31, encodeTs(ok)))).toMatchObject({ at: { seconds: ok.seconds } });
    }
    const entry = Buffer.concat([lengthDelimited(1, Buffer.from('k')), lengthDelimited(2, encodeTs({ nanos: -5 }))]);
    const err = refusal(() => decodeTest(every, lengthDelimited(30, entry)));
    expect(err.fieldPath).toEqual(['times', 'value']);
    expect(err.problem).toBe('timestamp nanos -5 not in range [0, 1e9)');
  });

  it('refuses strings that are not UTF-8, and keeps the ones that are', () => {
    const s = (bytes: number[]) => lengthDelimited(14, Buffer.from(bytes));
    expect(decodeTest(every, s([0x61, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80]))).toMatchObject({ s: 'aé€😀' });
    for (const bad of [[0xff], [0x61, 0xc3], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80]]) {
      expect(refusal(() => decodeTest(every, s(bad))).problem).toBe('string field contains invalid UTF-8');
    }
    // Long strings take the runtime's check: the same verdicts.
    const long = Buffer.from('é'.repeat(100));
    expect(decodeTest(every, s([...long]))).toMatchObject({ s: 'é'.repeat(100) });
    expect(refusal(() => decodeTest(every, s([...long.subarray(0, 199)]))).problem).toBe('string field contains invalid UTF-8');
    expect(refusal(() => decodeTest(every, s([...Buffer.alloc(300, 0x61), 0xff]))).problem).toBe('string field contains invalid UTF-8');
    // Map keys too, where two invalid keys would otherwise collide as U+FFFD.
    const entry = Buffer.concat([lengthDelimited(1, Buffer.from([0xfe])), lengthDelimited(2, Buffer.alloc(0))]);
    expect(refusal(() => decodeTest(every, lengthDelimited(28, entry))).fieldPath).toEqual(['by_name', 'key']);
  });

  it('refuses packed fixed-width runs of a partial element and packed varints running past the run', () => {
    expect(refusal(() => decodeTest(every, lengthDelimited(21, Buffer.from([1, 2, 3, 4, 5])))).problem).toMatch(/multiple of 4/);
    expect(refusal(() => decodeTest(every, Buffer.concat([lengthDelimited(18, Buffer.from([1, 0x80])), Buffer.from([0x01])]))).problem).toBe('unexpected EOF');
  });

  it(`nests messages up to ${MAX_NESTING_DEPTH} levels, as protobufjs`, () => {
    const node = testType('t.Node');
    const nest = (levels: number): Buffer => {
      let bytes: Buffer = Buffer.from([...tagOf(2, 0), 1]);
      for (let i = 0; i < levels; i++) bytes = lengthDelimited(1, bytes);
      return bytes;
    };
    expect(() => decodeTest(node, nest(MAX_NESTING_DEPTH))).not.toThrow();
    expect(() => node.decode(nest(MAX_NESTING_DEPTH + 1))).toThrow(/nesting depth/);
    expect(refusal(() => decodeTest(node, nest(MAX_NESTING_DEPTH + 1))).problem).toMatch(/nesting depth of 100/);
    // Unknown groups count as levels too.
    const groups = (levels: number) => Buffer.from([...Array(levels).fill(tagOf(9, 3)).flat(), ...Array(levels).fill(tagOf(9, 4)).flat()]);
    expect(() => decodeTest(node, groups(MAX_NESTING_DEPTH))).not.toThrow();
    expect(refusal(() => decodeTest(node, groups(MAX_NESTING_DEPTH + 1))).problem).toMatch(/nesting depth/);
  });

  it('decodes known groups (proto2) and refuses a mismatched or missing end', () => {
    const root = protobuf.parse('syntax = "proto2"; message G { optional group Item = 1 { optional int32 a = 2; } optional int32 z = 3; }').root;
    root.resolveAll();
    const g = root.lookupType('G');
    const good = Buffer.from([...tagOf(1, 3), ...tagOf(2, 0), 7, ...tagOf(1, 4), ...tagOf(3, 0), 1]);
    expect(decodeTest(g, good)).toMatchObject({ item: { a: 7 }, z: 1 });
    expect(refusal(() => decodeTest(g, Buffer.from([...tagOf(1, 3), ...tagOf(2, 0), 7, ...tagOf(5, 4)]))).problem).toMatch(/end group 5 inside group 1/);
    expect(refusal(() => decodeTest(g, Buffer.from([...tagOf(1, 3), ...tagOf(2, 0), 7]))).problem).toMatch(/unexpected EOF/);
    expect(refusal(() => decodeTest(g, lengthDelimited(1, Buffer.from([...tagOf(2, 0), 7])))).problem).toBe('wrong wire type 2 (want 3)');
  });
});

describe('refusal messages', () => {
  it('names the message type, the field and the byte offset (a truncated Leases.Create)', () => {
    const codec = messageCodec('containerd.services.leases.v1.CreateRequest');
    const bytes = codec.encode({ id: 'abc' });
    const err = refusal(() => codec.decode(bytes.subarray(0, bytes.length - 1)));
    expect(err.message).toBe('proto: containerd.services.leases.v1.CreateRequest: field id (1) at byte 0: unexpected EOF');
    const labelled = codec.encode({ id: 'abc', labels: { k: 'v' } });
    expect(refusal(() => codec.decode(labelled.subarray(0, labelled.length - 1))).message).toBe(
      'proto: containerd.services.leases.v1.CreateRequest: field labels (3) at byte 5: unexpected EOF',
    );
    // Inside a well-framed entry, the path goes down to the entry's value.
    const entry = lengthDelimited(3, Buffer.from([0x0a, 0x01, 0x6b, 0x12, 0x05, 0x76]));
    expect(refusal(() => codec.decode(entry)).message).toBe(
      'proto: containerd.services.leases.v1.CreateRequest: field labels.value (3.2) at byte 5: unexpected EOF',
    );
  });

  it('uses gogo words for illegal tags, wire types and overflow', () => {
    const codec = messageCodec('containerd.services.leases.v1.DeleteRequest');
    expect(refusal(() => codec.decode(Buffer.from([0x00, 0x00]))).message).toBe(
      'proto: containerd.services.leases.v1.DeleteRequest: field #0 (0) at byte 0: illegal tag 0 (wire type 0)',
    );
    expect(refusal(() => codec.decode(Buffer.from([0x08, 0x01]))).problem).toBe('wrong wire type 0 (want 2)');
    expect(refusal(() => codec.decode(Buffer.from([0x10, 0x01, 0x7f, 0x00]))).message).toBe(
      'proto: containerd.services.leases.v1.DeleteRequest: field #15 (15) at byte 2: illegal wire type 7',
    );
    expect(refusal(() => codec.decode(Buffer.from([0x10, ...new Array<number>(10).fill(0xff), 0x01]))).problem).toBe('integer overflow');
    expect(refusal(() => codec.decode(Buffer.from([0x0c]))).problem).toBe('wiretype end group for non-group');
  });

  it('refuses an Events Forward whose timestamp nanos is 2e9, on gRPC and ttrpc types alike', () => {
    for (const name of ['containerd.services.events.v1.ForwardRequest', 'containerd.services.events.ttrpc.v1.ForwardRequest'] as const) {
      const codec = messageCodec(name);
      const bytes = codec.encode({
        envelope: { timestamp: { seconds: 1, nanos: 2_000_000_000 }, namespace: 'default', topic: '/x', event: { type_url: 't', value: Buffer.from([1]) } },
      });
      const err = refusal(() => codec.decode(bytes));
      expect(err.message).toBe(`proto: ${name}: field envelope.timestamp (1.1) at byte 2: timestamp nanos 2000000000 not in range [0, 1e9)`);
    }
  });

  it('gives a map entry without its message value an empty message, as gogo does (protobufjs would fail)', () => {
    const codec = messageCodec('containerd.services.containers.v1.Container');
    const keyOnly = lengthDelimited(10, Buffer.from([0x0a, 0x01, 0x6b]));
    expect(codec.decode(keyOnly).extensions).toEqual({ k: { type_url: '', value: Buffer.alloc(0) } });
    const nested = messageCodec('containerd.services.containers.v1.UpdateContainerRequest');
    expect(nested.decode(lengthDelimited(1, keyOnly)).container?.extensions).toEqual({ k: { type_url: '', value: Buffer.alloc(0) } });
  });

  it('leaves Any values opaque, as gogo does (checked when unpacked)', () => {
    const codec = messageCodec('containerd.services.events.v1.PublishRequest');
    const decoded = codec.decode(codec.encode({ topic: '/x', event: { type_url: 'containerd.events.TaskExit', value: Buffer.from([0x0a, 0x05]) } }));
    expect(decoded.event?.value).toEqual(Buffer.from([0x0a, 0x05]));
  });
});
