import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MetricsRegistry, renderPrometheus, type Logger, type MetricFamily, type MetricSample, type MetricsCollector } from '@berth/core';
import { systemListenBacklog } from './listen.js';

/** Why a collector is missing from a scrape (`berth_metrics_collector_skipped_total{reason}`). */
export type SkipReason = 'timeout' | 'error' | 'busy' | 'blocked' | 'backoff';

export interface ScraperOptions {
  /** How long a collector may take (ms) before the scrape goes on without it. */
  readonly timeoutMs: number;
  readonly log: Logger;
  /** How many scrapes a collector that held the event loop past the budget sits out (doubling each time, up to 64). */
  readonly backoffScrapes?: number;
}

interface CollectorState {
  /** A call that has not settled yet (timed out in an earlier scrape): it is not called again until it does. */
  pending?: Promise<unknown>;
  /** Scrapes left to sit out, and the length of the next sentence. */
  sitOut: number;
  penalty: number;
}

/**
 * Runs scrapes of a set of collectors, each bounded in time. Collectors run concurrently; one that throws or has
 * not answered within the budget is left out of that scrape and counted. A collector still running from an
 * earlier scrape is not started again (reason `busy`): a hanging one costs one pending promise, not one per
 * scrape. Scrapes that arrive while one runs share its result, so collectors never run twice at once.
 *
 * JavaScript cannot interrupt synchronous code: a collector that computes for longer than the budget holds the
 * event loop that long once. It is then counted as `blocked` and sits out the following scrapes (1, 2, 4, … up
 * to 64), so it cannot stall every scrape and the API with it.
 */
export class Scraper {
  private readonly registry = new MetricsRegistry();
  private readonly skipped = this.registry.counter(
    'berth_metrics_collector_skipped_total',
    'Collectors left out of a scrape, by collector and reason (timeout, error, busy, blocked, backoff).',
    ['collector', 'reason'],
  );
  private readonly duration = this.registry.gauge('berth_metrics_collector_duration_seconds', 'How long each collector took in the last scrape it answered.', ['collector']);
  private readonly scrapes = this.registry.counter('berth_metrics_scrapes_total', 'Scrapes of /v1/metrics served (concurrent requests sharing one scrape count once).');
  private readonly states = new Map<string, CollectorState>();
  private inFlight?: Promise<string>;

  constructor(private readonly collectors: () => ReadonlyMap<string, MetricsCollector>, private readonly options: ScraperOptions) {}

  /** The exposition text; concurrent callers share one scrape. */
  scrape(): Promise<string> {
    this.inFlight ??= this.run().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async run(): Promise<string> {
    const collectors = this.collectors();
    const results = await Promise.all([...collectors].map(([name, c]) => this.runOne(name, c)));
    this.scrapes.inc();
    const problems: { family: string; reason: string }[] = [];
    const text = renderPrometheus([...results.flat(), ...this.registry.collect()], problems);
    for (const p of problems) this.options.log.warn('metric family left out', p);
    return text;
  }

  private async runOne(name: string, collector: MetricsCollector): Promise<readonly MetricFamily[]> {
    const state = this.states.get(name) ?? { sitOut: 0, penalty: 0 };
    this.states.set(name, state);
    const skip = (reason: SkipReason, error?: unknown): readonly MetricFamily[] => {
      this.skipped.inc({ collector: name, reason });
      if (reason !== 'busy' && reason !== 'backoff') this.options.log.warn('metrics collector left out of the scrape', { collector: name, reason, error });
      return [];
    };
    if (state.pending) return skip('busy');
    if (state.sitOut > 0) {
      state.sitOut--;
      return skip('backoff');
    }
    const { timeoutMs } = this.options;
    const started = performance.now();
    let result: readonly MetricFamily[] | Promise<readonly MetricFamily[]>;
    try {
      result = collector.collect();
    } catch (err) {
      return skip('error', err);
    }
    const syncMs = performance.now() - started;
    if (syncMs > timeoutMs) {
      // It already held the loop: whatever it returned is late. Let it sit out the next scrapes.
      state.penalty = Math.min(Math.max(state.penalty * 2, this.options.backoffScrapes ?? 1), 64);
      state.sitOut = state.penalty;
      Promise.resolve(result).catch(() => {});
      return skip('blocked');
    }
    if (typeof (result as { then?: unknown } | undefined)?.then !== 'function') {
      result = result as readonly MetricFamily[];
      if (!wellFormed(result)) return skip('error', new Error('collect() returned something other than metric families'));
      state.penalty = 0;
      this.duration.set(syncMs / 1000, { collector: name });
      return result;
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = Symbol('timeout');
    const call = Promise.resolve(result).then(
      (families) => ({ families }),
      (error: unknown) => ({ error }),
    );
    const outcome = await Promise.race([call, new Promise<typeof timedOut>((resolve) => (timer = setTimeout(resolve, Math.max(0, timeoutMs - syncMs), timedOut)))]);
    clearTimeout(timer);
    if (outcome === timedOut) {
      state.pending = call.finally(() => {
        state.pending = undefined;
      });
      return skip('timeout');
    }
    if ('error' in outcome) return skip('error', outcome.error);
    if (!wellFormed(outcome.families)) return skip('error', new Error('collect() resolved to something other than metric families'));
    state.penalty = 0;
    this.duration.set((performance.now() - started) / 1000, { collector: name });
    return outcome.families;
  }
}

/** Families as renderPrometheus reads them: a collector's bad answer is its own failure, not the scrape's. */
function wellFormed(families: unknown): families is readonly MetricFamily[] {
  if (!Array.isArray(families)) return false;
  return families.every(
    (f: Partial<MetricFamily> | null) =>
      typeof f?.name === 'string' &&
      typeof f.help === 'string' &&
      ['counter', 'gauge', 'histogram', 'untyped'].includes(f.type as string) &&
      Array.isArray(f.samples) &&
      f.samples.every((x: Partial<MetricSample> | null) => typeof x?.value === 'number' && (x.labels === undefined || (typeof x.labels === 'object' && x.labels !== null && Object.values(x.labels).every((v) => typeof v === 'string')))),
  );
}

/** The daemon's build info (`berth_build_info`). */
export function buildInfo(version: string, revision: string): MetricsCollector {
  const registry = new MetricsRegistry();
  registry.gauge('berth_build_info', 'Build information of berthd (always 1).', ['version', 'revision']).set(1, { version, revision });
  return registry;
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
