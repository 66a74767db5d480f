import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { systemListenBacklog } from './listen.js';

const CODE_NAMES = [
  'OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists', 'PermissionDenied',
  'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange', 'Unimplemented', 'Internal', 'Unavailable',
  'DataLoss', 'Unauthenticated',
];

const escape = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const labels = (l: Record<string, string>) => `{${Object.entries(l).map(([k, v]) => `${k}="${escape(v)}"`).join(',')}}`;

/** Daemon-level metrics in the Prometheus text format: build info and per-method gRPC counters. */
export class DaemonMetrics {
  private readonly handled = new Map<string, number>();
  private readonly startedAt = Date.now() / 1000;

  constructor(private readonly version: string, private readonly revision: string) {}

  observe = (service: string, method: string, type: string, code: number): void => {
    const key = JSON.stringify([service, method, type, CODE_NAMES[code] ?? String(code)]);
    this.handled.set(key, (this.handled.get(key) ?? 0) + 1);
  };

  render(): string {
    const out = [
      '# HELP berth_build_info Build information of berthd.',
      '# TYPE berth_build_info gauge',
      `berth_build_info${labels({ version: this.version, revision: this.revision })} 1`,
      '# HELP grpc_server_handled_total Total number of RPCs completed on the server, regardless of success or failure.',
      '# TYPE grpc_server_handled_total counter',
    ];
    for (const [key, count] of this.handled) {
      const [service, method, type, code] = JSON.parse(key) as string[];
      out.push(`grpc_server_handled_total${labels({ grpc_code: code!, grpc_method: method!, grpc_service: service!, grpc_type: type! })} ${count}`);
    }
    const mem = process.memoryUsage();
    out.push(
      '# HELP process_resident_memory_bytes Resident memory size in bytes.',
      '# TYPE process_resident_memory_bytes gauge',
      `process_resident_memory_bytes ${mem.rss}`,
      '# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.',
      '# TYPE process_start_time_seconds gauge',
      `process_start_time_seconds ${this.startedAt}`,
    );
    return out.join('\n') + '\n';
  }
}

/** Serves `GET /v1/metrics` on `host:port` (containerd's `[metrics] address`); every other path is 404. */
export async function serveMetrics(address: string, render: () => string | Promise<string>): Promise<{ server: Server; port: number }> {
  const at = address.lastIndexOf(':');
  const host = at > 0 ? address.slice(0, at).replace(/^\[|\]$/g, '') : '127.0.0.1';
  const port = Number(at >= 0 ? address.slice(at + 1) : address);
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/v1/metrics') {
      res.writeHead(404).end('404 page not found\n');
      return;
    }
    Promise.resolve(render()).then(
      (text) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(text),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog: systemListenBacklog() }, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}
