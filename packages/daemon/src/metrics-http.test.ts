import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, type MetricFamily, type MetricsCollector } from '@berth/core';
import { parseExposition, sampleValue } from './testing-fixtures/prometheus.js';
import { GrpcMetrics } from './grpc-metrics.js';
import { Scraper, serveMetrics } from './metrics-http.js';
import { ProcessMetrics } from './process-metrics.js';

const log = createLogger({ level: 'fatal', write: () => {} });
const family = (name: string, value = 1): MetricFamily => ({ name, help: `${name} help`, type: 'gauge', samples: [{ value }] });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function scraperOf(collectors: Record<string, MetricsCollector>, timeoutMs = 150) {
  return new Scraper(() => new Map(Object.entries(collectors)), { timeoutMs, log });
}

const skipped = (text: string, collector: string, reason: string) =>
  sampleValue(parseExposition(text), 'berth_metrics_collector_skipped_total', { collector, reason }) ?? 0;

describe('Scraper', () => {
  const timers: NodeJS.Timeout[] = [];
  afterEach(() => timers.splice(0).forEach(clearTimeout));

  it('leaves out a collector that never answers, within the budget, and does not call it again while it hangs', async () => {
    let calls = 0;
    const scraper = scraperOf({
      good: { collect: () => [family('good_value', 7)] },
      hanging: { collect: () => (calls++, new Promise<never>(() => {})) },
    });
    const t0 = performance.now();
    const first = await scraper.scrape();
    const ms = performance.now() - t0;
    expect(ms).toBeLessThan(2000); // the budget is 150 ms: far below, even on a loaded machine
    expect(sampleValue(parseExposition(first), 'good_value')).toBe(7);
    expect(skipped(first, 'hanging', 'timeout')).toBe(1);
    const second = await scraper.scrape();
    expect(skipped(second, 'hanging', 'busy')).toBe(1);
    expect(calls).toBe(1);
  });

  it('calls a slow collector again once its late answer has come in, and serves what it answers in time', async () => {
    let delay = 400;
    let calls = 0;
    const scraper = scraperOf({ slow: { collect: () => (calls++, new Promise((r) => timers.push(setTimeout(() => r([family('slow_value', calls)]), delay)))) } });
    expect(skipped(await scraper.scrape(), 'slow', 'timeout')).toBe(1);
    await sleep(500);
    delay = 0;
    const text = await scraper.scrape();
    expect(sampleValue(parseExposition(text), 'slow_value')).toBe(2);
    expect(calls).toBe(2);
  });

  it('leaves out a collector that throws or rejects, counting each', async () => {
    const scraper = scraperOf({
      throws: { collect: () => { throw new Error('boom'); } },
      rejects: { collect: async () => { throw new Error('boom'); } },
      good: { collect: () => [family('good_value')] },
    });
    await scraper.scrape();
    const text = await scraper.scrape();
    expect(skipped(text, 'throws', 'error')).toBe(2);
    expect(skipped(text, 'rejects', 'error')).toBe(2);
    expect(sampleValue(parseExposition(text), 'good_value')).toBe(1);
  });

  it('leaves out a collector that answers with something other than families, serving the rest', async () => {
    const scraper = scraperOf({
      nothing: { collect: () => undefined as never },
      strings: { collect: async () => ['x'] as never },
      badLabel: { collect: () => [{ name: 'bad_label', help: 'h', type: 'gauge', samples: [{ value: 1, labels: { a: 1 as never } }] }] },
      good: { collect: () => [family('good_value')] },
    });
    const text = await scraper.scrape();
    for (const c of ['nothing', 'strings', 'badLabel']) expect(skipped(text, c, 'error')).toBe(1);
    expect(sampleValue(parseExposition(text), 'good_value')).toBe(1);
  });

  it('makes a collector that held the event loop past the budget sit out the next scrapes, longer each time', async () => {
    let calls = 0;
    const scraper = scraperOf({
      blocking: {
        collect: () => {
          calls++;
          const until = performance.now() + 200;
          while (performance.now() < until) { /* holds the loop */ }
          return [family('blocking_value')];
        },
      },
    }, 50);
    const texts: string[] = [];
    for (let i = 0; i < 6; i++) texts.push(await scraper.scrape());
    // blocked, sits out 1; blocked, sits out 2; blocked
    expect(calls).toBe(3);
    const last = texts.at(-1)!;
    expect(skipped(last, 'blocking', 'blocked')).toBe(3);
    expect(skipped(last, 'blocking', 'backoff')).toBe(3);
    expect(parseExposition(last).has('blocking_value')).toBe(false);
  });

  it('runs collectors once for concurrent scrapes', async () => {
    let calls = 0;
    const scraper = scraperOf({ counted: { collect: async () => (calls++, await sleep(50), [family('counted_value', calls)]) } });
    const [a, b] = await Promise.all([scraper.scrape(), scraper.scrape()]);
    expect(a).toBe(b);
    expect(calls).toBe(1);
    await scraper.scrape();
    expect(calls).toBe(2);
  });
});

describe('GrpcMetrics', () => {
  it('counts by method, code and type, with a cumulative histogram', () => {
    const grpc = new GrpcMetrics(true);
    const version = grpc.meter('containerd.services.version.v1.Version', 'Version', 'unary');
    const read = grpc.meter('containerd.services.content.v1.Content', 'Read', 'server_stream');
    for (let i = 0; i < 3; i++) {
      version.started();
      version.received();
      version.sent();
      version.handled(0, 0.002);
    }
    version.started();
    version.received();
    version.handled(5, 0.3);
    read.started();
    read.received();
    for (let i = 0; i < 4; i++) read.sent();
    read.handled(0, 20);
    const text = (() => {
      const scraper = new Scraper(() => new Map([['grpc', grpc]]), { timeoutMs: 1000, log });
      return scraper.scrape();
    })();
    return text.then((t) => {
      const f = parseExposition(t);
      const v = { grpc_service: 'containerd.services.version.v1.Version', grpc_method: 'Version', grpc_type: 'unary' };
      const r = { grpc_service: 'containerd.services.content.v1.Content', grpc_method: 'Read', grpc_type: 'server_stream' };
      expect(f.get('grpc_server_started_total')?.type).toBe('COUNTER');
      expect(sampleValue(f, 'grpc_server_started_total', v)).toBe(4);
      expect(sampleValue(f, 'grpc_server_handled_total', { ...v, grpc_code: 'OK' })).toBe(3);
      expect(sampleValue(f, 'grpc_server_handled_total', { ...v, grpc_code: 'NotFound' })).toBe(1);
      expect(sampleValue(f, 'grpc_server_handled_total', { ...v, grpc_code: 'Internal' })).toBe(0);
      expect(sampleValue(f, 'grpc_server_msg_received_total', v)).toBe(4);
      expect(sampleValue(f, 'grpc_server_msg_sent_total', v)).toBe(3);
      expect(sampleValue(f, 'grpc_server_msg_sent_total', r)).toBe(4);
      expect(f.get('grpc_server_handling_seconds')?.type).toBe('HISTOGRAM');
      // parse-prometheus-text-format folds the series of a labelled histogram into one: read those lines directly.
      const line = (suffix: string, method: string, le?: string) => {
        const re = new RegExp(`^grpc_server_handling_seconds${suffix}\\{[^}]*grpc_method="${method}"[^}]*${le ? `le="${le.replace('+', '\\+')}"` : ''}[^}]*\\} (\\S+)$`, 'm');
        return Number(re.exec(t)?.[1]);
      };
      expect(line('_bucket', 'Version', '0.005')).toBe(3);
      expect(line('_bucket', 'Version', '0.25')).toBe(3);
      expect(line('_bucket', 'Version', '0.5')).toBe(4);
      expect(line('_bucket', 'Version', '+Inf')).toBe(4);
      expect(line('_count', 'Version')).toBe(4);
      expect(line('_sum', 'Version')).toBeCloseTo(0.306);
      expect(line('_bucket', 'Read', '10')).toBe(0);
      expect(line('_bucket', 'Read', '+Inf')).toBe(1);
    });
  });

  it('leaves the histogram out when grpc_histogram is off', () => {
    const grpc = new GrpcMetrics(false);
    grpc.meter('s', 'M', 'unary').handled(0, 1);
    expect(grpc.collect().map((f) => f.name)).not.toContain('grpc_server_handling_seconds');
  });
});

describe('ProcessMetrics', () => {
  it('reports the process families with plausible values', () => {
    const p = new ProcessMetrics();
    try {
      const families = new Map(p.collect().map((f) => [f.name, f]));
      const value = (name: string) => families.get(name)?.samples[0]?.value ?? NaN;
      expect(value('process_resident_memory_bytes')).toBeGreaterThan(1 << 20);
      expect(value('process_virtual_memory_bytes')).toBeGreaterThanOrEqual(value('process_resident_memory_bytes'));
      expect(value('process_open_fds')).toBeGreaterThan(2);
      expect(value('process_max_fds')).toBeGreaterThanOrEqual(value('process_open_fds'));
      expect(Math.abs(value('process_start_time_seconds') - (Date.now() / 1000 - process.uptime()))).toBeLessThan(2);
      expect(value('process_cpu_seconds_total')).toBeGreaterThan(0);
      expect(value('nodejs_eventloop_utilization_ratio')).toBeGreaterThanOrEqual(0);
      expect(value('nodejs_eventloop_utilization_ratio')).toBeLessThanOrEqual(1);
    } finally {
      p.close();
    }
  });

  it('reports a synchronous block of the event loop as its delay since the previous scrape', async () => {
    const p = new ProcessMetrics();
    const lagOf = () => p.collect().find((f) => f.name === 'nodejs_eventloop_lag_max_seconds')!.samples[0]!.value;
    try {
      await sleep(120);
      lagOf();
      const until = performance.now() + 300;
      while (performance.now() < until) { /* holds the loop */ }
      await sleep(120);
      expect(lagOf()).toBeGreaterThan(0.25);
      await sleep(120);
      expect(lagOf()).toBeLessThan(0.25);
    } finally {
      p.close();
    }
  });
});

describe('serveMetrics', () => {
  it('serves the text on /v1/metrics and 404 elsewhere', async () => {
    const { server, port } = await serveMetrics('127.0.0.1:0', () => 'x_total 1\n');
    try {
      const ok = await fetch(`http://127.0.0.1:${port}/v1/metrics`);
      expect(ok.status).toBe(200);
      expect(ok.headers.get('content-type')).toContain('text/plain; version=0.0.4');
      expect(await ok.text()).toBe('x_total 1\n');
      for (const path of ['/', '/metrics', '/v1/metrics/x', '/v1/metricsx']) expect((await fetch(`http://127.0.0.1:${port}${path}`)).status).toBe(404);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
