import { readdirSync, readFileSync } from 'node:fs';
import { performance, PerformanceObserver, type EventLoopUtilization } from 'node:perf_hooks';
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import { MetricsRegistry, type MetricFamily, type MetricsCollector } from '@berth/core';

const gauge = (name: string, help: string, value: number): MetricFamily => ({ name, help, type: 'gauge', samples: [{ value }] });
const counter = (name: string, help: string, value: number): MetricFamily => ({ name, help, type: 'counter', samples: [{ value }] });

/** Node's GC kinds (perf_hooks `NODE_PERFORMANCE_GC_*` flags). */
const GC_KINDS: Record<number, string> = { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weakcb' };

/** /proc/self/stat fields after the command (field 3 on): vsize is field 23. */
function virtualMemoryBytes(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[20]);
}

function maxFds(): number {
  const line = /^Max open files\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1];
  return line === undefined || line === 'unlimited' ? Infinity : Number(line);
}

/**
 * How late a repeating timer fires, since the last reading. perf_hooks' monitorEventLoopDelay is not used: measured
 * on Node 20, a 400 ms synchronous block showed up in it as a 21 ms maximum (it reads the loop's cached clock).
 */
class LoopDelay {
  private last = performance.now();
  max = 0;
  sum = 0;
  count = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly intervalMs: number) {
    this.timer = setInterval(() => {
      const now = performance.now();
      const late = Math.max(0, now - this.last - this.intervalMs);
      this.last = now;
      this.max = Math.max(this.max, late);
      this.sum += late;
      this.count++;
    }, intervalMs);
    this.timer.unref();
  }

  reset(): void {
    this.max = this.sum = this.count = 0;
  }

  close(): void {
    clearInterval(this.timer);
  }
}

/**
 * berthd's process metrics with the names Prometheus' client libraries use (`process_*`), and Node's own: heap, the
 * event loop's delay and utilisation since the previous scrape, GC pauses by kind. Everything here is read from
 * the process or from /proc in microseconds; the delay timer and the GC observer run only while this exists
 * (only with a `[metrics] address`), and `close()` stops them.
 */
export class ProcessMetrics implements MetricsCollector {
  private readonly startTime = Math.round((Date.now() / 1000 - process.uptime()) * 1000) / 1000;
  private readonly delay = new LoopDelay(50);
  private elu: EventLoopUtilization = performance.eventLoopUtilization();
  private readonly registry = new MetricsRegistry();
  private readonly gc = this.registry.histogram('nodejs_gc_duration_seconds', 'Garbage collection pauses of the V8 heap, by kind.', [0.001, 0.01, 0.1, 1, 2, 5], ['kind']);
  private readonly observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = GC_KINDS[(entry as { detail?: { kind?: number } }).detail?.kind ?? 0] ?? 'other';
      this.gc.observe(entry.duration / 1000, { kind });
    }
  });

  constructor() {
    this.observer.observe({ entryTypes: ['gc'] });
  }

  collect(): MetricFamily[] {
    const cpu = process.cpuUsage();
    const heap = getHeapStatistics();
    const memory = process.memoryUsage();
    const elu = performance.eventLoopUtilization(this.elu);
    this.elu = performance.eventLoopUtilization();
    // The delay starts afresh each scrape, so it describes the interval since the previous one (ms here).
    const lag = (ms: number) => ms / 1000;
    const families: MetricFamily[] = [
      counter('process_cpu_user_seconds_total', 'User CPU time spent in seconds.', cpu.user / 1e6),
      counter('process_cpu_system_seconds_total', 'System CPU time spent in seconds.', cpu.system / 1e6),
      counter('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', (cpu.user + cpu.system) / 1e6),
      gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', memory.rss),
      gauge('process_virtual_memory_bytes', 'Virtual memory size in bytes.', virtualMemoryBytes()),
      // The listing's own descriptor is one of the entries.
      gauge('process_open_fds', 'Number of open file descriptors.', readdirSync('/proc/self/fd').length - 1),
      gauge('process_max_fds', 'Maximum number of open file descriptors (the soft limit).', maxFds()),
      gauge('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', this.startTime),
      gauge('nodejs_heap_size_total_bytes', 'V8 heap size in bytes.', heap.total_heap_size),
      gauge('nodejs_heap_size_used_bytes', 'V8 heap in use in bytes.', heap.used_heap_size),
      gauge('nodejs_heap_size_limit_bytes', 'V8 heap size limit in bytes.', heap.heap_size_limit),
      gauge('nodejs_external_memory_bytes', 'Memory of C++ objects bound to JavaScript objects, in bytes.', memory.external),
      gauge('nodejs_array_buffers_bytes', 'Memory of ArrayBuffers and Buffers, in bytes.', memory.arrayBuffers),
      {
        name: 'nodejs_heap_space_size_used_bytes',
        help: 'V8 heap in use per space, in bytes.',
        type: 'gauge',
        samples: getHeapSpaceStatistics().map((s) => ({ labels: { space: s.space_name }, value: s.space_used_size })),
      },
      gauge('nodejs_eventloop_lag_max_seconds', 'Longest event loop delay since the previous scrape (a 50 ms timer firing late).', lag(this.delay.max)),
      gauge('nodejs_eventloop_lag_mean_seconds', 'Mean event loop delay since the previous scrape.', lag(this.delay.count ? this.delay.sum / this.delay.count : 0)),
      gauge('nodejs_eventloop_utilization_ratio', 'Share of time the event loop was busy since the previous scrape (0 to 1).', elu.utilization),
      ...this.registry.collect(),
    ];
    this.delay.reset();
    return families;
  }

  close(): void {
    this.delay.close();
    this.observer.disconnect();
  }
}
