import { resolve } from 'node:path';
import { Channel, credentials, type ChannelOptions } from '@grpc/grpc-js';
import { ServiceNames, type ServiceName } from '@berth/api';
import { createServiceClient, type ServiceClient } from './service-client.js';

/** containerd's default message size limit, both ways. */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export interface BerthClientOptions {
  /** Path of berthd's unix socket (a `unix:` target is accepted too). */
  readonly address: string;
  /** Namespace sent with every call that names none (`containerd-namespace`). */
  readonly namespace?: string;
  /** Lease sent with every call that names none (`containerd-lease`). */
  readonly lease?: string;
  /** Deadline of unary calls that set none, in milliseconds; 0 or absent means none. */
  readonly timeoutMs?: number;
}

/** The grpc-js target of a socket path: `unix:/abs/path`. */
export function grpcTarget(address: string): string {
  return address.startsWith('unix:') ? address : `unix:${resolve(address)}`;
}

/**
 * A typed client of berthd over one gRPC channel. Each service client is created on first use; any service of
 * @berth/api can be reached with `service(name)`.
 */
export class BerthClient {
  readonly address: string;
  readonly namespace: string | undefined;
  readonly lease: string | undefined;
  private readonly channel: Channel;
  private readonly timeoutMs: number | undefined;
  private readonly clients = new Map<ServiceName, unknown>();
  private closed = false;

  constructor(options: BerthClientOptions) {
    this.address = options.address;
    this.namespace = options.namespace;
    this.lease = options.lease;
    this.timeoutMs = options.timeoutMs;
    const channelOptions: ChannelOptions = {
      'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
      'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
    };
    this.channel = new Channel(grpcTarget(options.address), credentials.createInsecure(), channelOptions);
  }

  /** The client of any service by its full proto name (see ServiceNames). */
  service<N extends ServiceName>(name: N): ServiceClient<N> {
    if (this.closed) throw new Error('berth client is closed');
    let client = this.clients.get(name) as ServiceClient<N> | undefined;
    if (!client) {
      client = createServiceClient(name, this.channel, { namespace: this.namespace, lease: this.lease, timeoutMs: this.timeoutMs });
      this.clients.set(name, client);
    }
    return client;
  }

  get containers() {
    return this.service(ServiceNames.Containers);
  }
  get content() {
    return this.service(ServiceNames.Content);
  }
  get diff() {
    return this.service(ServiceNames.Diff);
  }
  get events() {
    return this.service(ServiceNames.Events);
  }
  /** berth's own: the JSON Schemas of container extensions. */
  get extensionSchemas() {
    return this.service(ServiceNames.ExtensionSchemas);
  }
  /** berth's own: one extension of one container at a time, with revisions. */
  get extensions() {
    return this.service(ServiceNames.Extensions);
  }
  get images() {
    return this.service(ServiceNames.Images);
  }
  get introspection() {
    return this.service(ServiceNames.Introspection);
  }
  get leases() {
    return this.service(ServiceNames.Leases);
  }
  get namespaces() {
    return this.service(ServiceNames.Namespaces);
  }
  get snapshots() {
    return this.service(ServiceNames.Snapshots);
  }
  get tasks() {
    return this.service(ServiceNames.Tasks);
  }
  get version() {
    return this.service(ServiceNames.Version);
  }
  get health() {
    return this.service(ServiceNames.Health);
  }

  /** Closes the channel; calls in flight fail with UNAVAILABLE/CANCELLED. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.channel.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
