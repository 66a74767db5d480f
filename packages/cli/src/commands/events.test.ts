import { describe, expect, it } from 'vitest';
import { packAny } from '@berth/api';
import { envelopeJson, formatEnvelope } from './events.js';

const timestamp = { seconds: 1_700_000_000, nanos: 250_000_000 };

describe('events output', () => {
  it('decodes known event types, timestamps included', () => {
    const envelope = {
      timestamp,
      namespace: 'default',
      topic: '/tasks/exit',
      event: packAny('containerd.events.TaskExit', { container_id: 'c1', id: 'c1', pid: 42, exit_status: 3, exited_at: { seconds: 1_700_000_001, nanos: 0 } }),
    };
    expect(formatEnvelope(envelope)).toBe(
      '2023-11-14T22:13:20.25Z default /tasks/exit {"container_id":"c1","id":"c1","pid":42,"exit_status":3,"exited_at":"2023-11-14T22:13:21Z"}',
    );
    expect(envelopeJson(envelope)).toMatchObject({ type: 'containerd.events.TaskExit', event: { pid: 42 } });
  });

  it('prints fields in proto order', () => {
    const event = packAny('containerd.events.NamespaceCreate', { name: 'n', labels: { k: 'v' } });
    expect(formatEnvelope({ timestamp, namespace: 'ns', topic: '/namespaces/create', event })).toBe(
      '2023-11-14T22:13:20.25Z ns /namespaces/create {"name":"n","labels":{"k":"v"}}',
    );
  });

  it('keeps an unknown payload raw', () => {
    const envelope = { timestamp, namespace: 'ns', topic: '/x', event: { type_url: 'example.com/Unknown', value: Buffer.from('{"a":1}') } };
    expect(envelopeJson(envelope).event).toEqual({ type_url: 'example.com/Unknown', value: Buffer.from('{"a":1}').toString('base64') });
    expect(formatEnvelope({ ...envelope, event: null })).toBe('2023-11-14T22:13:20.25Z ns /x null');
  });
});
