import { findMessageType, fromAnyValue, fromTimestamp, implementService, ServiceNames, toAnyValue, toTimestamp, unpackAny, type containerd, type google } from '@berth/api';
import { InvalidArgumentError, opContextOf, type Envelope, type EventExchange, type RpcServiceImplementation, type RpcServices } from '@berth/core';

type WireEnvelope = containerd.services.events.v1.Envelope;

export class EventsService implements RpcServices {
  readonly services: readonly RpcServiceImplementation[];

  constructor(private readonly exchange: EventExchange) {
    const forward = async (req: { envelope: WireEnvelope | null }) => {
      await exchange.forward(fromWire(req.envelope));
    };
    this.services = [
      implementService(ServiceNames.Events, {
        Publish: async (req, ctx) => {
          const { namespace } = opContextOf(ctx);
          const event = requireEvent(req.event);
          await exchange.publish(namespace, req.topic, toAnyValue(event), decodeFields(event));
        },
        Forward: forward,
        Subscribe: (req, ctx) => this.subscribe(req.filters, ctx.signal),
      }),
      implementService(ServiceNames.TtrpcEvents, { Forward: forward }, ['ttrpc']),
    ];
  }

  private async *subscribe(filters: readonly string[], signal: AbortSignal): AsyncIterable<containerd.services.events.v1.EnvelopeInput> {
    for await (const envelope of this.exchange.subscribe(filters, signal)) {
      yield {
        timestamp: toTimestamp(envelope.timestamp),
        namespace: envelope.namespace,
        topic: envelope.topic,
        event: fromAnyValue(envelope.event),
      };
    }
  }
}

function requireEvent(event: google.protobuf.Any | null): google.protobuf.Any {
  if (!event?.type_url) throw new InvalidArgumentError('event must have a type');
  return event;
}

/** The decoded event, when its type is a known message, so that `event.<field>` filters can read it. */
function decodeFields(event: google.protobuf.Any): Readonly<Record<string, unknown>> | undefined {
  if (!findMessageType(event.type_url.slice(event.type_url.lastIndexOf('/') + 1))) return undefined;
  try {
    return unpackAny<Record<string, unknown>>(event);
  } catch {
    return undefined;
  }
}

function fromWire(envelope: WireEnvelope | null): Envelope {
  if (!envelope) throw new InvalidArgumentError('envelope is required');
  const event = requireEvent(envelope.event);
  return {
    timestamp: fromTimestamp(envelope.timestamp) ?? new Date(Number.NaN),
    namespace: envelope.namespace,
    topic: envelope.topic,
    event: toAnyValue(event),
    fields: decodeFields(event),
  };
}
