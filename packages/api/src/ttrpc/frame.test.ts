import { describe, expect, it } from 'vitest';
import { FRAME_HEADER_LENGTH, FrameDecoder, FrameType, decodeFrameHeader, encodeFrame, type DecodedFrame } from './frame.js';

function frames(decoder: FrameDecoder, chunks: Buffer[]): DecodedFrame[] {
  return chunks.flatMap((c) => decoder.push(c));
}

describe('ttrpc frames', () => {
  it('writes the 10-byte big-endian header before the payload', () => {
    const buf = encodeFrame(0x01020304, FrameType.Response, Buffer.from('hi'), 0x7);
    expect([...buf]).toEqual([0, 0, 0, 2, 1, 2, 3, 4, 2, 7, 0x68, 0x69]);
    expect(decodeFrameHeader(buf)).toEqual({ length: 2, streamId: 0x01020304, type: 2, flags: 7 });
  });

  it('refuses to encode a payload over the limit', () => {
    expect(() => encodeFrame(1, FrameType.Request, Buffer.alloc(11), 0, 10)).toThrow(RangeError);
  });

  it('reassembles frames split at every byte and several frames in one chunk', () => {
    const a = encodeFrame(1, FrameType.Request, Buffer.from('first'));
    const b = encodeFrame(3, FrameType.Request, Buffer.alloc(0));
    const c = encodeFrame(5, FrameType.Request, Buffer.from('third payload'));
    const all = Buffer.concat([a, b, c]);
    const byteWise = frames(new FrameDecoder(), [...all].map((x) => Buffer.from([x])));
    const together = frames(new FrameDecoder(), [all]);
    for (const result of [byteWise, together]) {
      expect(result.map((f) => f.kind)).toEqual(['frame', 'frame', 'frame']);
      expect(result.map((f) => f.header.streamId)).toEqual([1, 3, 5]);
      expect(result.map((f) => (f.kind === 'frame' ? f.payload.toString() : ''))).toEqual(['first', '', 'third payload']);
    }
  });

  it('reports an oversized frame from its header, drops its bytes and keeps decoding', () => {
    const decoder = new FrameDecoder(16);
    const header = Buffer.alloc(FRAME_HEADER_LENGTH);
    header.writeUInt32BE(40, 0);
    header.writeUInt32BE(7, 4);
    header.writeUInt8(FrameType.Request, 8);
    const next = encodeFrame(9, FrameType.Request, Buffer.from('ok'));
    const out = frames(decoder, [header, Buffer.alloc(25, 1), Buffer.concat([Buffer.alloc(15, 2), next])]);
    expect(out).toHaveLength(2);
    expect(out[0]).toEqual({ kind: 'oversized', header: { length: 40, streamId: 7, type: 1, flags: 0 } });
    expect(out[1]?.kind).toBe('frame');
    expect(out[1]?.header.streamId).toBe(9);
    expect(decoder.pendingBytes).toBe(0);
  });

  it('holds an incomplete frame until the rest arrives', () => {
    const decoder = new FrameDecoder();
    const f = encodeFrame(11, FrameType.Response, Buffer.alloc(1000, 9));
    expect(decoder.push(f.subarray(0, 500))).toEqual([]);
    expect(decoder.pendingBytes).toBe(500);
    const out = decoder.push(f.subarray(500));
    expect(out).toHaveLength(1);
    expect(out[0]?.kind === 'frame' && out[0].payload.equals(Buffer.alloc(1000, 9))).toBe(true);
  });
});
