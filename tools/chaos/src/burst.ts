// A connection burst: `total` connects to a unix socket, `concurrency` at a time, each closed once connected.
// A listener whose backlog is too short refuses the overflow at once (EAGAIN on a unix socket); containerd's
// listeners use the system's somaxconn and refuse none.
import { connect } from 'node:net';

export interface BurstResult {
  readonly connected: number;
  /** Failures by errno code (EAGAIN, ECONNREFUSED, ...). */
  readonly refused: Readonly<Record<string, number>>;
  readonly ms: number;
}

function once(path: string, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect(path);
    const timer = setTimeout(() => finish('ETIMEDOUT'), timeoutMs);
    function finish(code: string | undefined) {
      clearTimeout(timer);
      socket.destroy();
      resolve(code);
    }
    socket.once('connect', () => finish(undefined));
    socket.once('error', (err: NodeJS.ErrnoException) => finish(err.code ?? err.message));
  });
}

export async function burst(path: string, total: number, concurrency: number, timeoutMs = 10_000): Promise<BurstResult> {
  const started = performance.now();
  const refused: Record<string, number> = {};
  let connected = 0;
  for (let done = 0; done < total; done += concurrency) {
    const batch = Math.min(concurrency, total - done);
    const codes = await Promise.all(Array.from({ length: batch }, () => once(path, timeoutMs)));
    for (const code of codes) {
      if (code === undefined) connected++;
      else refused[code] = (refused[code] ?? 0) + 1;
    }
  }
  return { connected, refused, ms: Math.round(performance.now() - started) };
}
