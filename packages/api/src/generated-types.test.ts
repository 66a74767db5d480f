// Type-level pins of the generated declarations (checked by `tsc --noEmit`), plus a run-time use of them.
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { RpcContext } from '@berth/core';
import { messageCodec } from './codec.js';
import type { containerd, google, MessageName, Services } from './generated/types.js';
import { ServiceNames } from './services.js';

type Content = typeof ServiceNames.Content;

describe('generated types', () => {
  it('map decoded fields to codec shapes and keep inputs permissive', () => {
    expectTypeOf<containerd.services.content.v1.Info['size']>().toEqualTypeOf<number>();
    expectTypeOf<containerd.services.content.v1.Info['created_at']>().toEqualTypeOf<google.protobuf.Timestamp | null>();
    expectTypeOf<containerd.services.content.v1.ReadContentResponse['data']>().toEqualTypeOf<Buffer>();
    expectTypeOf<containerd.services.snapshots.v1.Info['kind']>().toEqualTypeOf<'UNKNOWN' | 'VIEW' | 'ACTIVE' | 'COMMITTED'>();
    expectTypeOf<containerd.services.containers.v1.Container['extensions']>().toEqualTypeOf<Record<string, google.protobuf.Any>>();
    expectTypeOf<containerd.services.containers.v1.Container['runtime']>().toEqualTypeOf<containerd.services.containers.v1.Container.Runtime | null>();
    expectTypeOf<containerd.services.content.v1.Info>().toMatchTypeOf<containerd.services.content.v1.InfoInput>();
    expectTypeOf<'containerd.events.TaskExit'>().toMatchTypeOf<MessageName>();
    const input: containerd.services.content.v1.InfoInput = { digest: 'sha256:x' };
    // @ts-expect-error a decoded Info has every scalar field
    const decoded: containerd.services.content.v1.Info = { digest: 'sha256:x' };
    void decoded;
    const codec = messageCodec('containerd.services.content.v1.Info');
    expect(codec.decode(codec.encode(input)).digest).toBe('sha256:x');
  });

  it('type handlers per RPC kind', () => {
    type H = Services[Content]['handlers'];
    expectTypeOf<Parameters<H['Read']>[0]>().toEqualTypeOf<containerd.services.content.v1.ReadContentRequest>();
    expectTypeOf<ReturnType<H['Read']>>().toEqualTypeOf<AsyncIterable<containerd.services.content.v1.ReadContentResponseInput>>();
    expectTypeOf<Parameters<H['Write']>[0]>().toEqualTypeOf<AsyncIterable<containerd.services.content.v1.WriteContentRequest>>();
    expectTypeOf<Parameters<H['Info']>[1]>().toEqualTypeOf<RpcContext>();
    const handlers: Pick<containerd.services.content.v1.ContentHandlers, 'Delete' | 'Info'> = {
      async Delete() {},
      async Info(req) {
        return { info: { digest: req.digest, size: 1 } };
      },
    };
    expect(typeof handlers.Delete).toBe('function');
  });
});
