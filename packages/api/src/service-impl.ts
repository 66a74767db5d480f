import type { AnyValue, Container, EventPublisher, RpcServiceImplementation } from '@berth/core';
import { packAny } from './codec.js';
import type { containerd, google, MessageInputs, MessageName, Services } from './generated/types.js';

/** A transport-neutral service implementation whose handlers are checked against the generated interface. */
export function implementService<N extends keyof Services>(
  service: N,
  handlers: Services[N]['handlers'],
  transports?: RpcServiceImplementation['transports'],
): RpcServiceImplementation {
  return { service, handlers: handlers as unknown as RpcServiceImplementation['handlers'], ...(transports ? { transports } : {}) };
}

/** Go's zero time.Time as protobuf seconds (what containerd sends for "unset"). */
export const GO_ZERO_TIME_SECONDS = -62135596800;

export function toTimestamp(date: Date): google.protobuf.Timestamp {
  const ms = date.getTime();
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: (ms - seconds * 1000) * 1_000_000 };
}

/** A Timestamp as a Date; undefined for absent or Go-zero timestamps. */
export function fromTimestamp(ts: google.protobuf.TimestampInput | null | undefined): Date | undefined {
  if (!ts) return undefined;
  const seconds = Number(ts.seconds ?? 0);
  const nanos = Number(ts.nanos ?? 0);
  if (seconds <= GO_ZERO_TIME_SECONDS || (seconds === 0 && nanos === 0)) return undefined;
  return new Date(seconds * 1000 + Math.floor(nanos / 1_000_000));
}

/** Core's event payload shape from a wire Any, and back. */
export function toAnyValue(any: google.protobuf.AnyInput): AnyValue {
  return { typeUrl: any.type_url ?? '', value: Buffer.from(any.value ?? new Uint8Array(0)) };
}

export function fromAnyValue(value: AnyValue): google.protobuf.Any {
  return { type_url: value.typeUrl, value: Buffer.from(value.value) };
}

/** containerd's wire Container (what Containers.Get returns) from a stored one: the Containers and Extensions services both answer with it. */
export function containerToWire(c: Container): containerd.services.containers.v1.ContainerInput {
  return {
    id: c.id,
    labels: c.labels,
    image: c.image,
    runtime: { name: c.runtime.name, options: c.runtime.options ? fromAnyValue(c.runtime.options) : null },
    spec: c.spec ? fromAnyValue(c.spec) : null,
    snapshotter: c.snapshotter,
    snapshot_key: c.snapshotKey,
    created_at: toTimestamp(c.createdAt),
    updated_at: toTimestamp(c.updatedAt),
    extensions: Object.fromEntries(Object.entries(c.extensions).map(([name, value]) => [name, fromAnyValue(value)])),
  };
}

/** Packs an event message (type URL = its full name, as containerd's typeurl) and publishes it. */
export function publishEvent<N extends MessageName>(
  publisher: EventPublisher,
  namespace: string,
  topic: string,
  type: N,
  event: MessageInputs[N],
): Promise<void> {
  return publisher.publish(namespace, topic, toAnyValue(packAny(type, event)), event as Readonly<Record<string, unknown>>);
}
