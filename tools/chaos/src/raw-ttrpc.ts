// A ttrpc connection that writes frames byte by byte as told: a valid envelope around a malformed payload, a
// malformed envelope, even stream ids, oversized or unknown frames. Responses are matched by stream id.
import { createConnection, type Socket } from 'node:net';
import { encodeFrameHeader, FrameDecoder, FrameType, messageCodec, type google } from '@berth/api';

export interface TtrpcAnswer {
  /** gRPC status code; 'none' when no answer came within the wait. */
  readonly code: number | 'none';
  readonly message: string;
}

export class RawTtrpc {
  private readonly decoder = new FrameDecoder();
  private readonly waiting = new Map<number, (answer: TtrpcAnswer) => void>();
  private nextId = 1;
  closed = false;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const frame of this.decoder.push(chunk)) {
        const done = this.waiting.get(frame.header.streamId);
        if (!done) continue;
        this.waiting.delete(frame.header.streamId);
        if (frame.kind === 'oversized') {
          done({ code: 'none', message: `oversized response frame of ${frame.header.length} bytes` });
          continue;
        }
        const res = messageCodec<{ status: google.rpc.Status | null }>('ttrpc.Response').decode(frame.payload);
        done({ code: res.status?.code ?? 0, message: res.status?.message ?? '' });
      }
    });
    const close = () => {
      this.closed = true;
      for (const done of this.waiting.values()) done({ code: 'none', message: 'connection closed' });
      this.waiting.clear();
    };
    socket.on('close', close);
    socket.on('error', close);
  }

  static connect(path: string): Promise<RawTtrpc> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ path });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RawTtrpc(socket));
      });
    });
  }

  /** A fresh client-initiated (odd) stream id. */
  streamId(): number {
    const id = this.nextId;
    this.nextId += 2;
    return id;
  }

  /** The bytes of a ttrpc.Request envelope with a raw payload, as a well-behaved client encodes it. */
  static envelope(service: string, method: string, payload: Uint8Array, metadata: Record<string, string> = {}): Buffer {
    return messageCodec('ttrpc.Request').encode({
      service,
      method,
      payload,
      metadata: Object.entries(metadata).map(([key, value]) => ({ key, value })),
    });
  }

  /** Writes one frame (header fields as given) and waits up to `waitMs` for the answer on `streamId`. */
  frame(envelope: Uint8Array, options: { streamId?: number; type?: number; declaredLength?: number; waitMs?: number } = {}): Promise<TtrpcAnswer> {
    const streamId = options.streamId ?? this.streamId();
    const header = encodeFrameHeader({ length: options.declaredLength ?? envelope.length, streamId, type: options.type ?? FrameType.Request, flags: 0 });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(streamId);
        resolve({ code: 'none', message: 'no answer' });
      }, options.waitMs ?? 5000);
      this.waiting.set(streamId, (answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
      this.socket.write(Buffer.concat([header, envelope]));
    });
  }

  /** Writes bytes that are not a whole frame (a header announcing more than follows, say). */
  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  close(): void {
    this.socket.destroy();
  }
}
