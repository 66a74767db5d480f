import type { MetricFamily, MetricSample, MetricsCollector } from '@berth/core';

/** grpc-go's code names, as go-grpc-prometheus labels `grpc_code` (index = the numeric code). */
const CODE_NAMES = [
  'OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists', 'PermissionDenied',
  'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange', 'Unimplemented', 'Internal', 'Unavailable',
  'DataLoss', 'Unauthenticated',
] as const;

/** Prometheus' default buckets (prometheus.DefBuckets), which go-grpc-prometheus's handling histogram uses. */
export const GRPC_HANDLING_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

/** What one method's calls report; bind.ts holds one per method, so a call only bumps numbers. */
export interface MethodMeter {
  started(): void;
  received(): void;
  sent(): void;
  /** The call ended with `code` after `seconds`. */
  handled(code: number, seconds: number): void;
}

/** Makes the meter of a method at bind time. */
export type MethodMeterFactory = (service: string, method: string, type: string) => MethodMeter;

class MethodSeries implements MethodMeter {
  startedCount = 0;
  receivedCount = 0;
  sentCount = 0;
  readonly codes = new Array<number>(CODE_NAMES.length).fill(0);
  /** Per bucket, not cumulative (summed when rendered), so an observation touches one slot. */
  readonly buckets: number[];
  sum = 0;
  count = 0;

  constructor(readonly labels: { grpc_method: string; grpc_service: string; grpc_type: string }, private readonly histogram: boolean) {
    this.buckets = new Array<number>(histogram ? GRPC_HANDLING_BUCKETS.length : 0).fill(0);
  }

  started(): void {
    this.startedCount++;
  }

  received(): void {
    this.receivedCount++;
  }

  sent(): void {
    this.sentCount++;
  }

  handled(code: number, seconds: number): void {
    this.codes[code >= 0 && code < CODE_NAMES.length ? code : 2]!++;
    if (!this.histogram) return;
    let i = 0;
    while (i < GRPC_HANDLING_BUCKETS.length && seconds > GRPC_HANDLING_BUCKETS[i]!) i++;
    if (i < GRPC_HANDLING_BUCKETS.length) this.buckets[i]!++;
    this.sum += seconds;
    this.count++;
  }
}

/**
 * The server's gRPC metrics with go-grpc-prometheus's names and labels, as containerd serves them: every method is
 * there from the start (containerd's `grpc_prometheus.Register` initialises them), each code of `handled` too.
 * The handling-time histogram is `[metrics] grpc_histogram`, as in containerd.
 */
export class GrpcMetrics implements MetricsCollector {
  private readonly methods: MethodSeries[] = [];

  constructor(private readonly histogram: boolean) {}

  meter: MethodMeterFactory = (service, method, type) => {
    const series = new MethodSeries({ grpc_method: method, grpc_service: service, grpc_type: type }, this.histogram);
    this.methods.push(series);
    return series;
  };

  collect(): MetricFamily[] {
    const started: MetricSample[] = [];
    const handled: MetricSample[] = [];
    const received: MetricSample[] = [];
    const sent: MetricSample[] = [];
    const seconds: MetricSample[] = [];
    for (const m of this.methods) {
      started.push({ labels: m.labels, value: m.startedCount });
      received.push({ labels: m.labels, value: m.receivedCount });
      sent.push({ labels: m.labels, value: m.sentCount });
      m.codes.forEach((value, code) => handled.push({ labels: { grpc_code: CODE_NAMES[code]!, ...m.labels }, value }));
      if (!this.histogram) continue;
      let cumulative = 0;
      GRPC_HANDLING_BUCKETS.forEach((le, i) => {
        cumulative += m.buckets[i]!;
        seconds.push({ suffix: '_bucket', labels: { ...m.labels, le: String(le) }, value: cumulative });
      });
      seconds.push({ suffix: '_bucket', labels: { ...m.labels, le: '+Inf' }, value: m.count });
      seconds.push({ suffix: '_sum', labels: m.labels, value: m.sum });
      seconds.push({ suffix: '_count', labels: m.labels, value: m.count });
    }
    const families: MetricFamily[] = [
      { name: 'grpc_server_started_total', help: 'gRPC calls the server has begun, by method.', type: 'counter', samples: started },
      { name: 'grpc_server_handled_total', help: 'gRPC calls the server has finished, by method and status code.', type: 'counter', samples: handled },
      { name: 'grpc_server_msg_received_total', help: 'Request messages the server has read (one per unary call, each message of a client stream).', type: 'counter', samples: received },
      { name: 'grpc_server_msg_sent_total', help: 'Response messages the server has written (one per successful unary call, each message of a server stream).', type: 'counter', samples: sent },
    ];
    if (this.histogram) {
      families.push({ name: 'grpc_server_handling_seconds', help: 'Seconds from the start of a gRPC call to its status, by method.', type: 'histogram', samples: seconds });
    }
    return families;
  }
}
