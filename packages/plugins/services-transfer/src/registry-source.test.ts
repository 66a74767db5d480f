import { packAny, toAnyValue } from '@berth/api';
import type { AnyValue, Stream } from '@berth/core';
import { failureOf } from '@berth/core/testing';
import { describe, expect, it } from 'vitest';
import { resolverOptionsOf } from './registry-source.js';

/** A client that answers each AuthRequest with `answer` (or never, for undefined). */
function authStream(answer: AnyValue | undefined): Stream & { sent: AnyValue[] } {
  const sent: AnyValue[] = [];
  return {
    sent,
    send: async (m) => void sent.push(m),
    recv: (options) =>
      answer
        ? Promise.resolve(answer)
        : new Promise((_, reject) => options?.signal?.addEventListener('abort', () => reject(options.signal?.reason), { once: true })),
    close: () => {},
  };
}

const source = (resolver: Record<string, unknown> = {}) => ({ reference: '127.0.0.1:5000/a/b:1', resolver: { auth_stream: '', headers: {}, host_dir: '', default_scheme: '', ...resolver } });
const response = (input: Record<string, unknown>) => toAnyValue(packAny('containerd.types.transfer.AuthResponse', input));

describe('resolverOptionsOf', () => {
  it('maps the scheme, certs.d directory and headers, and refuses an unknown scheme', () => {
    const signal = new AbortController().signal;
    expect(resolverOptionsOf(source({ default_scheme: 'http', host_dir: '/d', headers: { a: 'b' } }), undefined, signal)).toEqual({ plainHttp: true, hostsDir: '/d', headers: { a: 'b' } });
    expect(resolverOptionsOf(source({ default_scheme: 'https' }), undefined, signal)).toEqual({});
    expect(() => resolverOptionsOf(source({ default_scheme: 'ftp' }), undefined, signal)).toThrow(/default_scheme "ftp"/);
  });

  it('turns each AuthResponse type into credentials, and refuses HEADER and other messages', async () => {
    const signal = new AbortController().signal;
    const ask = (answer: AnyValue) => resolverOptionsOf(source(), authStream(answer), signal).credentials!('h:1');
    expect(await ask(response({ authType: 'CREDENTIALS', username: 'u', secret: 's' }))).toEqual({ username: 'u', secret: 's' });
    expect(await ask(response({ authType: 'REFRESH', secret: 'tok' }))).toEqual({ username: '', secret: 'tok' });
    expect(await ask(response({ authType: 'NONE' }))).toBeUndefined();
    expect((await failureOf(ask(response({ authType: 'HEADER', secret: 'Bearer x' })))).errdef).toBe('not-implemented');
    expect((await failureOf(ask(toAnyValue(packAny('containerd.types.transfer.Progress', { event: 'x' }))))).message).toMatch(/expected a containerd.types.transfer.AuthResponse/);
  });

  it('gives up on a client that never answers, with a deadline error naming the host', async () => {
    const stream = authStream(undefined);
    const credentials = resolverOptionsOf(source(), stream, new AbortController().signal, 50).credentials!;
    const failure = await failureOf(credentials('registry.example:443'));
    expect(failure.errdef).toBe('deadline-exceeded');
    expect(failure.message).toContain('registry.example:443');
    expect(stream.sent.map((m) => m.typeUrl)).toEqual(['containerd.types.transfer.AuthRequest']);
  });
});
