// ttrpc 1.1 framing: a 10-byte header (payload length u32 BE, stream id u32 BE, type u8, flags u8) then the payload.

export const FRAME_HEADER_LENGTH = 10;
/** Largest payload either side accepts (4 MiB). */
export const MAX_FRAME_PAYLOAD = 4 << 20;

export const FrameType = {
  Request: 1,
  Response: 2,
} as const;

export interface FrameHeader {
  readonly length: number;
  readonly streamId: number;
  readonly type: number;
  readonly flags: number;
}

export type DecodedFrame =
  | { readonly kind: 'frame'; readonly header: FrameHeader; readonly payload: Buffer }
  /** A frame whose declared payload exceeds the limit; its bytes are skipped, the stream is kept. */
  | { readonly kind: 'oversized'; readonly header: FrameHeader };

export function encodeFrameHeader(header: FrameHeader): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER_LENGTH);
  buf.writeUInt32BE(header.length, 0);
  buf.writeUInt32BE(header.streamId, 4);
  buf.writeUInt8(header.type, 8);
  buf.writeUInt8(header.flags, 9);
  return buf;
}

export function decodeFrameHeader(buf: Buffer): FrameHeader {
  return {
    length: buf.readUInt32BE(0),
    streamId: buf.readUInt32BE(4),
    type: buf.readUInt8(8),
    flags: buf.readUInt8(9),
  };
}

/** Header and payload in one buffer. Throws a RangeError when the payload is over `maxPayload`. */
export function encodeFrame(
  streamId: number,
  type: number,
  payload: Uint8Array,
  flags = 0,
  maxPayload = MAX_FRAME_PAYLOAD,
): Buffer {
  if (payload.length > maxPayload) {
    throw new RangeError(`message length ${payload.length} exceed maximum message size of ${maxPayload}`);
  }
  const header = encodeFrameHeader({ length: payload.length, streamId, type, flags });
  return Buffer.concat([header, payload], FRAME_HEADER_LENGTH + payload.length);
}

/**
 * Incremental decoder: feed it socket chunks, get whole frames back. Chunks are kept as a list and joined only when
 * a frame completes, so a large payload arriving in many chunks is copied once. Oversized payloads are never
 * buffered: they are reported as soon as their header arrives and their bytes are dropped as they come in.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private header: FrameHeader | undefined;
  private discarding = 0;

  constructor(private readonly maxPayload = MAX_FRAME_PAYLOAD) {}

  /** Bytes held for an incomplete frame, header included. */
  get pendingBytes(): number {
    return this.buffered + (this.header ? FRAME_HEADER_LENGTH : 0);
  }

  /**
   * Bytes the incomplete frame will hold once complete (header included), as announced by its header: what a
   * reader must be prepared to buffer for it. Before the header is complete, the bytes held so far; 0 when idle.
   * Nothing is allocated for the announced length: chunks are kept as they arrive.
   */
  get pendingFrameBytes(): number {
    return this.header ? FRAME_HEADER_LENGTH + this.header.length : this.buffered;
  }

  /** Drops everything held (the connection is gone), so none of it stays reachable from the decoder. */
  clear(): void {
    this.chunks = [];
    this.buffered = 0;
    this.header = undefined;
    this.discarding = 0;
  }

  push(chunk: Buffer): DecodedFrame[] {
    const out: DecodedFrame[] = [];
    let data = chunk;
    if (this.discarding > 0) {
      const n = Math.min(this.discarding, data.length);
      this.discarding -= n;
      data = data.subarray(n);
    }
    if (data.length > 0) {
      this.chunks.push(data);
      this.buffered += data.length;
    }
    for (;;) {
      if (!this.header) {
        if (this.buffered < FRAME_HEADER_LENGTH) break;
        const header = decodeFrameHeader(this.take(FRAME_HEADER_LENGTH));
        if (header.length > this.maxPayload) {
          out.push({ kind: 'oversized', header });
          const n = Math.min(header.length, this.buffered);
          this.skip(n);
          this.discarding = header.length - n;
          continue;
        }
        this.header = header;
      }
      if (this.buffered < this.header.length) break;
      const payload = this.take(this.header.length);
      out.push({ kind: 'frame', header: this.header, payload });
      this.header = undefined;
    }
    return out;
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    let result: Buffer;
    if (first.length >= n) {
      result = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      result = Buffer.allocUnsafe(n);
      let copied = 0;
      while (copied < n) {
        const c = this.chunks[0]!;
        const k = Math.min(c.length, n - copied);
        c.copy(result, copied, 0, k);
        copied += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.buffered -= n;
    return result;
  }

  private skip(n: number): void {
    let left = n;
    while (left > 0) {
      const c = this.chunks[0]!;
      if (c.length <= left) {
        this.chunks.shift();
        left -= c.length;
      } else {
        this.chunks[0] = c.subarray(left);
        left = 0;
      }
    }
    this.buffered -= n;
  }
}
