/**
 * Metrics in the Prometheus data model, without a client library: plugins describe families, the daemon renders
 * them on `/v1/metrics`. A plugin reaches this two ways: its own `MetricsRegistry` (`coreTokens.metrics`, counters,
 * gauges and histograms it updates as it works), and collectors contributed to `metricsCollectorsPoint` (values
 * read at scrape time, e.g. cgroup statistics). Names are checked when a metric is created, so a bad one fails the
 * plugin's init, not a scrape.
 */
import { InvalidArgumentError } from '../errdefs/index.js';

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'untyped';
export type MetricLabels = Readonly<Record<string, string>>;

export interface MetricSample {
  /** Appended to the family name (`_bucket`, `_sum`, `_count` for histograms); '' otherwise. */
  readonly suffix?: string;
  readonly labels?: MetricLabels;
  readonly value: number;
}

export interface MetricFamily {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  readonly samples: readonly MetricSample[];
}

/** Something that reports families at scrape time. */
export interface MetricsCollector {
  collect(): readonly MetricFamily[] | Promise<readonly MetricFamily[]>;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function validateMetricName(name: string): void {
  if (!METRIC_NAME.test(name)) throw new InvalidArgumentError(`metric name ${JSON.stringify(name)}: must match ${METRIC_NAME.source}`);
}

function validateLabelNames(metric: string, names: readonly string[]): void {
  for (const name of names) {
    if (!LABEL_NAME.test(name) || name.startsWith('__')) {
      throw new InvalidArgumentError(`metric ${metric}: label name ${JSON.stringify(name)} is invalid`);
    }
  }
}

interface Series<V> {
  readonly labels: MetricLabels;
  value: V;
}

/** Label values in declared order, as one map key. */
function seriesKey(names: readonly string[], labels: MetricLabels | undefined, metric: string): string {
  const given = Object.keys(labels ?? {});
  if (given.length !== names.length || names.some((n) => typeof labels?.[n] !== 'string')) {
    throw new InvalidArgumentError(`metric ${metric}: labels must be exactly ${names.join(', ') || '(none)'}`);
  }
  return JSON.stringify(names.map((n) => labels![n]));
}

abstract class Metric<V> {
  protected readonly series = new Map<string, Series<V>>();
  constructor(
    readonly name: string,
    readonly help: string,
    protected readonly labelNames: readonly string[],
  ) {
    validateMetricName(name);
    validateLabelNames(name, labelNames);
  }

  protected at(labels: MetricLabels | undefined, initial: () => V): Series<V> {
    const key = seriesKey(this.labelNames, labels, this.name);
    let s = this.series.get(key);
    if (!s) {
      s = { labels: { ...labels }, value: initial() };
      this.series.set(key, s);
    }
    return s;
  }

  /** Forgets one series (a task that went away). */
  remove(labels?: MetricLabels): void {
    this.series.delete(seriesKey(this.labelNames, labels, this.name));
  }

  abstract family(): MetricFamily;
}

export class Counter extends Metric<number> {
  inc(labels?: MetricLabels, by = 1): void {
    if (!(by >= 0)) throw new InvalidArgumentError(`counter ${this.name}: cannot decrease (${by})`);
    this.at(labels, () => 0).value += by;
  }

  family(): MetricFamily {
    return { name: this.name, help: this.help, type: 'counter', samples: [...this.series.values()].map((s) => ({ labels: s.labels, value: s.value })) };
  }
}

export class Gauge extends Metric<number> {
  set(value: number, labels?: MetricLabels): void {
    this.at(labels, () => 0).value = value;
  }

  add(by: number, labels?: MetricLabels): void {
    this.at(labels, () => 0).value += by;
  }

  family(): MetricFamily {
    return { name: this.name, help: this.help, type: 'gauge', samples: [...this.series.values()].map((s) => ({ labels: s.labels, value: s.value })) };
  }
}

interface HistogramState {
  readonly counts: number[];
  sum: number;
  count: number;
}

export class Histogram extends Metric<HistogramState> {
  constructor(name: string, help: string, labelNames: readonly string[], private readonly buckets: readonly number[]) {
    super(name, help, labelNames);
    if (labelNames.includes('le')) throw new InvalidArgumentError(`histogram ${name}: "le" is reserved`);
    if (buckets.some((b, i) => i > 0 && b <= buckets[i - 1]!)) throw new InvalidArgumentError(`histogram ${name}: buckets must increase`);
  }

  observe(value: number, labels?: MetricLabels): void {
    const s = this.at(labels, () => ({ counts: this.buckets.map(() => 0), sum: 0, count: 0 })).value;
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  family(): MetricFamily {
    const samples: MetricSample[] = [];
    for (const { labels, value } of this.series.values()) {
      this.buckets.forEach((le, i) => samples.push({ suffix: '_bucket', labels: { ...labels, le: String(le) }, value: value.counts[i]! }));
      samples.push({ suffix: '_bucket', labels: { ...labels, le: '+Inf' }, value: value.count });
      samples.push({ suffix: '_sum', labels, value: value.sum });
      samples.push({ suffix: '_count', labels, value: value.count });
    }
    return { name: this.name, help: this.help, type: 'histogram', samples };
  }
}

/** A family whose samples are read at each scrape from state the plugin already keeps (`MetricsRegistry.computed`). */
class Computed {
  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly type: MetricType,
    private readonly read: () => readonly MetricSample[],
  ) {
    validateMetricName(name);
  }

  family(): MetricFamily {
    return { name: this.name, help: this.help, type: this.type, samples: this.read() };
  }
}

/** One plugin's metrics (`coreTokens.metrics`); the host hands every registry to the metrics endpoint. */
export class MetricsRegistry implements MetricsCollector {
  private readonly metrics = new Map<string, Metric<unknown> | Computed>();

  /**
   * A family read at each scrape: for figures the plugin holds anyway (a map's size), so nothing has to be kept in
   * step with them. `read` must be cheap and synchronous (it runs within the scrape's time budget, on the loop).
   */
  computed(name: string, help: string, type: MetricType, read: () => readonly MetricSample[]): void {
    this.add(new Computed(name, help, type, read));
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(new Counter(name, help, labelNames) as Counter);
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.add(new Gauge(name, help, labelNames));
  }

  histogram(name: string, help: string, buckets: readonly number[], labelNames: readonly string[] = []): Histogram {
    return this.add(new Histogram(name, help, labelNames, buckets));
  }

  get size(): number {
    return this.metrics.size;
  }

  collect(): MetricFamily[] {
    return [...this.metrics.values()].map((m) => m.family());
  }

  private add<M extends Metric<unknown> | Computed>(metric: M): M {
    if (this.metrics.has(metric.name)) throw new InvalidArgumentError(`metric ${metric.name} is registered twice`);
    this.metrics.set(metric.name, metric);
    return metric;
  }
}

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const escapeHelp = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');

function formatNumber(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

export interface RenderProblem {
  readonly family: string;
  readonly reason: string;
}

/**
 * The Prometheus text exposition (version 0.0.4) of the families. Families sharing a name and type are merged;
 * a family whose name was already rendered with another type, or that is malformed, is left out and reported.
 */
export function renderPrometheus(families: Iterable<MetricFamily>, problems: RenderProblem[] = []): string {
  const merged = new Map<string, { help: string; type: MetricType; samples: MetricSample[] }>();
  for (const family of families) {
    if (!METRIC_NAME.test(family.name)) {
      problems.push({ family: family.name, reason: 'invalid metric name' });
      continue;
    }
    const prev = merged.get(family.name);
    if (prev && prev.type !== family.type) {
      problems.push({ family: family.name, reason: `type ${family.type} conflicts with ${prev.type}` });
      continue;
    }
    if (prev) prev.samples.push(...family.samples);
    else merged.set(family.name, { help: family.help, type: family.type, samples: [...family.samples] });
  }
  const lines: string[] = [];
  for (const [name, family] of merged) {
    lines.push(`# HELP ${name} ${escapeHelp(family.help)}`, `# TYPE ${name} ${family.type}`);
    for (const sample of family.samples) {
      const labels = Object.entries(sample.labels ?? {});
      const text = labels.length ? `{${labels.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}` : '';
      lines.push(`${name}${sample.suffix ?? ''}${text} ${formatNumber(sample.value)}`);
    }
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}
