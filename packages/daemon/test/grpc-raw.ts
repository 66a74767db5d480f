// Direct gRPC calls for tests that need to send what ctr never sends (no namespace, arbitrary metadata, bytes that
// are no valid encoding at all).
import { Client, credentials, makeGenericClientConstructor, Metadata, type ServiceError } from '@grpc/grpc-js';
import { serviceDefinition } from '@berth/api';

export interface RawResult<T> {
  readonly response?: T;
  readonly error?: ServiceError;
}

export async function unaryCall<T = unknown>(
  address: string,
  service: string,
  method: string,
  request: unknown,
  metadata: Record<string, string> = {},
): Promise<RawResult<T>> {
  const Ctor = makeGenericClientConstructor(serviceDefinition(service) as never, service);
  const client = new Ctor(`unix://${address}`, credentials.createInsecure()) as Client & Record<string, Function>;
  const md = new Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  try {
    return await new Promise<RawResult<T>>((resolve) => {
      client[method]!.call(client, request, md, (error: ServiceError | null, response: T) =>
        resolve(error ? { error } : { response }),
      );
    });
  } finally {
    client.close();
  }
}

const passThrough = (b: Buffer): Buffer => b;

function metadataOf(metadata: Record<string, string>): Metadata {
  const md = new Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  return md;
}

/**
 * Sends `bytes` as the request of a method (`/pkg.Service/Method`) exactly as given: the client serializer passes
 * them through, so malformed encodings reach the server. The response comes back undecoded. A streaming method gets
 * the bytes as its only message, then the half-close; its first response message (if any) is returned.
 */
export async function rawCall(
  address: string,
  path: string,
  bytes: Buffer,
  kind: { requestStream: boolean; responseStream: boolean } = { requestStream: false, responseStream: false },
  metadata: Record<string, string> = { 'containerd-namespace': 'default' },
): Promise<RawResult<Buffer>> {
  const client = new Client(`unix://${address}`, credentials.createInsecure());
  const md = metadataOf(metadata);
  const deadline = Date.now() + 10_000;
  try {
    return await new Promise<RawResult<Buffer>>((resolve) => {
      const done = (error: ServiceError | null, response?: Buffer) => resolve(error ? { error } : { response: response ?? Buffer.alloc(0) });
      if (!kind.requestStream && !kind.responseStream) {
        client.makeUnaryRequest(path, passThrough, passThrough, bytes, md, { deadline }, done);
      } else if (kind.requestStream && !kind.responseStream) {
        const call = client.makeClientStreamRequest(path, passThrough, passThrough, md, { deadline }, done);
        call.write(bytes);
        call.end();
      } else {
        let call;
        if (kind.requestStream) {
          const bidi = client.makeBidiStreamRequest(path, passThrough, passThrough, md, { deadline });
          bidi.write(bytes);
          bidi.end();
          call = bidi;
        } else {
          call = client.makeServerStreamRequest(path, passThrough, passThrough, bytes, md, { deadline });
        }
        let first: Buffer | undefined;
        call.on('data', (b: Buffer) => {
          first ??= b;
          call.cancel();
        });
        call.on('error', (err: ServiceError) => (first && err.code === 1 ? done(null, first) : done(err)));
        call.on('end', () => done(null, first));
      }
    });
  } finally {
    client.close();
  }
}
