import { EventEmitter } from 'node:events';
import type { Http2Server, ServerHttp2Session } from 'node:http2';
import type { Server } from '@grpc/grpc-js';

/**
 * HTTP/2 receive window of each stream. Clients send content in 1 MiB Write messages and wait for each answer;
 * with the default 64 KiB window a message crosses in 16 window round trips through the event loop. Two messages
 * fit, so that a message never waits for a window update.
 */
export const STREAM_WINDOW_BYTES = 2 << 20;
/** HTTP/2 receive window of each connection (all streams together): a few streams at full speed. */
export const CONNECTION_WINDOW_BYTES = 8 << 20;

/**
 * Widens the HTTP/2 receive windows of every connection a bound grpc-js server accepts from now on. grpc-js 1.14
 * has no server option for it (`grpc-node.flow_control_window` is client-only), so this reaches for the HTTP/2
 * servers grpc-js keeps internally; if that internal shape is missing (another grpc-js version), it does nothing
 * and returns false. Memory stays bounded: grpc-js consumes what arrives, and at most the windows are in flight.
 */
export function widenFlowControlWindows(server: Server): boolean {
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map)) return false;
  let found = false;
  for (const candidate of servers.keys() as Iterable<unknown>) {
    if (!isHttp2Server(candidate)) continue;
    found = true;
    candidate.on('session', (session: ServerHttp2Session) => {
      try {
        session.setLocalWindowSize(CONNECTION_WINDOW_BYTES);
        session.settings({ initialWindowSize: STREAM_WINDOW_BYTES });
      } catch {
        // The session is already closing: nothing to tune.
      }
    });
  }
  return found;
}

function isHttp2Server(value: unknown): value is Http2Server {
  return value instanceof EventEmitter && typeof (value as Partial<Http2Server>).address === 'function';
}
