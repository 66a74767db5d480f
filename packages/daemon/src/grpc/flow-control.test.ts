import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type ClientHttp2Session, type Settings } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CONNECTION_WINDOW_BYTES, STREAM_WINDOW_BYTES, widenFlowControlWindows } from './flow-control.js';

describe('widenFlowControlWindows', () => {
  let dir: string;
  let server: Server;
  let client: ClientHttp2Session | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-flow-'));
    server = new Server();
  });

  afterEach(async () => {
    client?.destroy();
    server.forceShutdown();
    await rm(dir, { recursive: true, force: true });
  });

  it('advertises the wider stream window and opens the connection window on new connections', async () => {
    const socket = join(dir, 'grpc.sock');
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix://${socket}`, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
    );
    expect(widenFlowControlWindows(server)).toBe(true);

    client = connect('http://localhost', { path: socket } as never);
    const settings = await new Promise<Settings>((resolve) => {
      client!.on('remoteSettings', (s: Settings) => {
        if (s.initialWindowSize === STREAM_WINDOW_BYTES) resolve(s);
      });
    });
    expect(settings.initialWindowSize).toBe(STREAM_WINDOW_BYTES);
    // The connection window shows as what the client may still send before the server's next update.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(client.state.remoteWindowSize).toBe(CONNECTION_WINDOW_BYTES);
  });

  it('does nothing on a server that is not bound yet', () => {
    expect(widenFlowControlWindows(server)).toBe(false);
  });
});
