import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MetricsRegistry, renderPrometheus, type Logger, type MetricFamily, type MetricsCollector } from '@berth/core';
import { systemListenBacklog } from './listen.js';

const CODE_NAMES = [
  'OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists', 'PermissionDenied',
  'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange', 'Unimplemented', 'Internal', 'Unavailable',
  'DataLoss', 'Unauthenticated',
];

/** Daemon-level metrics: build info, per-method gRPC counters, process memory and start time. */
export class DaemonMetrics implements MetricsCollector {
  private readonly registry = new MetricsRegistry();
  private readonly handled = this.registry.counter(
    'grpc_server_handled_total',
    'Total number of RPCs completed on the server, regardless of success or failure.',
    ['grpc_code', 'grpc_method', 'grpc_service', 'grpc_type'],
  );
  private readonly startedAt = Date.now() / 1000;

  constructor(private readonly version: string, private readonly revision: string) {
    this.registry.gauge('berth_build_info', 'Build information of berthd.', ['version', 'revision']).set(1, { version, revision });
  }

  observe = (service: string, method: string, type: string, code: number): void => {
    this.handled.inc({ grpc_code: CODE_NAMES[code] ?? String(code), grpc_method: method, grpc_service: service, grpc_type: type });
  };

  collect(): MetricFamily[] {
    return [
      ...this.registry.collect(),
      { name: 'process_resident_memory_bytes', help: 'Resident memory size in bytes.', type: 'gauge', samples: [{ value: process.memoryUsage().rss }] },
      { name: 'process_start_time_seconds', help: 'Start time of the process since unix epoch in seconds.', type: 'gauge', samples: [{ value: this.startedAt }] },
    ];
  }
}

/**
 * One scrape: the daemon's own families, each plugin's registry and every contributed collector. A collector that
 * throws, or a family that clashes with another, is left out of this scrape and logged; the rest is served.
 */
export async function scrape(collectors: ReadonlyMap<string, MetricsCollector>, log: Logger): Promise<string> {
  const families: MetricFamily[] = [];
  for (const [source, collector] of collectors) {
    try {
      families.push(...(await collector.collect()));
    } catch (err) {
      log.warn('metrics collector failed', { source, error: err });
    }
  }
  const problems: { family: string; reason: string }[] = [];
  const text = renderPrometheus(families, problems);
  for (const p of problems) log.warn('metric family left out', p);
  return text;
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
