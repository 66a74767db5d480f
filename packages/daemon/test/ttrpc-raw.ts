// A ttrpc peer that writes frames by hand, for tests that send what a shim never sends: envelopes and payloads that
// are no valid encoding. Responses are matched by stream id.
import { once } from 'node:events';
import { createConnection, type Socket } from 'node:net';
import { encodeFrame, FrameDecoder, FrameType, messageCodec, type google } from '@berth/api';

export interface RawTtrpcResponse {
  readonly status: google.rpc.Status | null;
  readonly payload: Buffer;
}

export class RawTtrpcPeer {
  private readonly decoder = new FrameDecoder();
  private readonly waiting = new Map<number, (res: RawTtrpcResponse) => void>();
  private nextStream = 1;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const frame of this.decoder.push(chunk)) {
        if (frame.kind !== 'frame') continue;
        const res = messageCodec('ttrpc.Response').decode(frame.payload);
        this.waiting.get(frame.header.streamId)?.({ status: res.status, payload: res.payload });
        this.waiting.delete(frame.header.streamId);
      }
    });
    socket.on('error', () => undefined);
  }

  static async open(path: string): Promise<RawTtrpcPeer> {
    const socket = createConnection({ path });
    await once(socket, 'connect');
    return new RawTtrpcPeer(socket);
  }

  /** Sends a request frame whose body is `envelope` as given (a ttrpc.Request encoding, or not). */
  sendEnvelope(envelope: Buffer): Promise<RawTtrpcResponse> {
    const streamId = this.nextStream;
    this.nextStream += 2;
    const answered = new Promise<RawTtrpcResponse>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ttrpc response for stream ${streamId}`)), 10_000);
      this.waiting.set(streamId, (res) => {
        clearTimeout(timer);
        resolve(res);
      });
    });
    this.socket.write(encodeFrame(streamId, FrameType.Request, envelope));
    return answered;
  }

  /** A well-formed envelope around a payload sent as given. */
  request(service: string, method: string, payload: Buffer, metadata: Record<string, string> = {}): Promise<RawTtrpcResponse> {
    const envelope = messageCodec('ttrpc.Request').encode({
      service,
      method,
      payload,
      metadata: Object.entries(metadata).map(([key, value]) => ({ key, value })),
    });
    return this.sendEnvelope(envelope);
  }

  close(): void {
    this.socket.destroy();
  }
}
