import type { Command } from 'commander';
import { findMessageType, typeNameOfUrl, unpackAny, type containerd } from '@berth/api';
import { isCancelled } from '@berth/core';
import type { CliContext } from '../context.js';
import { formatTimestamp, toJsonValue } from '../format.js';

type Envelope = containerd.services.events.v1.Envelope;

/** The event payload as JSON: decoded when its type is known, else `{type_url, value(base64)}`. */
export function eventPayload(envelope: Envelope): unknown {
  if (!envelope.event) return null;
  try {
    const decoded = unpackAny<Record<string, unknown>>(envelope.event);
    // Field order of the proto (protobufjs puts maps first), as ctr prints the Go struct.
    const fields = findMessageType(typeNameOfUrl(envelope.event.type_url))?.fieldsArray.map((f) => f.name) ?? [];
    const ordered = Object.fromEntries([...new Set([...fields, ...Object.keys(decoded)])].filter((k) => k in decoded).map((k) => [k, decoded[k]]));
    return toJsonValue(ordered, { timestamps: true });
  } catch {
    return toJsonValue(envelope.event);
  }
}

/** `<time> <namespace> <topic> <event JSON>`, as ctr events prints an envelope. */
export function formatEnvelope(envelope: Envelope): string {
  return `${formatTimestamp(envelope.timestamp)} ${envelope.namespace} ${envelope.topic} ${JSON.stringify(eventPayload(envelope))}`;
}

export function envelopeJson(envelope: Envelope) {
  return {
    timestamp: formatTimestamp(envelope.timestamp),
    namespace: envelope.namespace,
    topic: envelope.topic,
    type: envelope.event?.type_url ?? null,
    event: eventPayload(envelope),
  };
}

export function registerEvents(program: Command, ctx: CliContext): void {
  program
    .command('events')
    .alias('event')
    .description('stream the events of every namespace until interrupted (filters as in ctr, e.g. topic~="/tasks/.*")')
    .argument('[filters...]', 'filters, ORed together')
    .action(async (filters: string[]) => {
      const controller = new AbortController();
      const stop = () => controller.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        for await (const envelope of ctx.berth().events.Subscribe({ filters }, { signal: controller.signal })) {
          ctx.line(ctx.json ? JSON.stringify(envelopeJson(envelope)) : formatEnvelope(envelope));
        }
      } catch (err) {
        if (!(controller.signal.aborted && isCancelled(err))) throw err;
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    });
}
