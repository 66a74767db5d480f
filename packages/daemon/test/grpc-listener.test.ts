// berthd owns its gRPC listener (for the listen backlog) and hands sockets to grpc-js through its connection
// injector. What a bound port gave must still hold: widened HTTP/2 windows, message size limits, graceful shutdown.
import { spawn } from 'node:child_process';
import { connect, type Settings } from 'node:http2';
import { afterEach, describe, expect, it } from 'vitest';
import { CONNECTION_WINDOW_BYTES, STREAM_WINDOW_BYTES } from '../src/grpc/flow-control.js';
import { unaryCall } from './grpc-raw.js';
import { hasCtr, hasRoot, startBerthd, type Berthd } from './harness.js';

describe.skipIf(!hasRoot() || !hasCtr())('the gRPC listener', () => {
  const started: Berthd[] = [];
  afterEach(async () => {
    await Promise.all(started.splice(0).map((d) => d.stop()));
  });
  const start = async (grpcConfig?: string) => {
    const d = await startBerthd({ grpcConfig });
    started.push(d);
    return d;
  };

  it('advertises the widened HTTP/2 windows on accepted connections', async () => {
    const d = await start();
    const client = connect('http://localhost', { path: d.address } as never);
    try {
      const settings = await new Promise<Settings>((resolve) => {
        client.on('remoteSettings', (s: Settings) => {
          if (s.initialWindowSize === STREAM_WINDOW_BYTES) resolve(s);
        });
      });
      expect(settings.initialWindowSize).toBe(STREAM_WINDOW_BYTES);
      await new Promise((r) => setTimeout(r, 50));
      expect(client.state.remoteWindowSize).toBe(CONNECTION_WINDOW_BYTES);
    } finally {
      client.destroy();
    }
  });

  it('applies [grpc] max_recv_message_size', async () => {
    const d = await start('max_recv_message_size = 4096');
    const big = await unaryCall(d.address, 'containerd.services.namespaces.v1.Namespaces', 'Create', {
      namespace: { name: 'big', labels: { k: 'x'.repeat(8192) } },
    });
    expect(big.error?.code).toBe(8); // RESOURCE_EXHAUSTED
    const small = await unaryCall(d.address, 'containerd.services.namespaces.v1.Namespaces', 'Create', { namespace: { name: 'small' } });
    expect(small.error).toBeUndefined();
  });

  it('shuts down gracefully on SIGTERM with a subscriber and an idle connection open', async () => {
    const d = await start();
    const events = spawn('/usr/bin/ctr', ['--address', d.address, 'events'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const idle = connect('http://localhost', { path: d.address } as never);
    idle.on('error', () => undefined);
    const goaway = new Promise<void>((r) => idle.once('goaway', () => r()));
    try {
      await new Promise((r) => setTimeout(r, 500));
      const t = Date.now();
      const exit = await d.kill('SIGTERM');
      expect(exit.code).toBe(0);
      // tryShutdown waits up to 2 s for sessions, then forces them: well inside this bound.
      expect(Date.now() - t).toBeLessThan(8000);
      await goaway;
      expect(d.logs).toContain('berthd stopped');
    } finally {
      idle.destroy();
      events.kill('SIGKILL');
    }
  });
});
