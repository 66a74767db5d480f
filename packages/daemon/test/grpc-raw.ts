// Direct gRPC calls for tests that need to send what ctr never sends (no namespace, arbitrary metadata).
import { credentials, makeGenericClientConstructor, Metadata, type Client, type ServiceError } from '@grpc/grpc-js';
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
