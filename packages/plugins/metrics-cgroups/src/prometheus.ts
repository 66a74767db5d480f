// Per-container Prometheus series under containerd's names (its metrics/cgroups v1 and v2 packages: namespace
// `container`, then the metric, then the unit), all gauges as containerd has them, labelled `container_id`,
// `namespace` and `runtime`, plus the per-metric labels (cpu; op, device, major, minor; page). Built from the
// statistics read at scrape time, so a deleted task's series are simply not there at the next scrape.
import type { MetricFamily, MetricLabels, MetricSample } from '@berth/core';
import type { CgroupStats } from './encode.js';
import { V1_MEMORY_STAT_FIELDS, type V1BlkIOEntry, type V1BlkIOStat, type V1MemoryEntry, type V1Metrics } from './v1-stats.js';
import { V2_MEMORY_STAT_FIELDS, type V2Metrics } from './v2-stats.js';

export interface TaskStats {
  readonly id: string;
  readonly namespace: string;
  readonly runtime: string;
  readonly stats: CgroupStats;
}

interface Value {
  readonly v: bigint;
  readonly labels?: MetricLabels;
}

interface Def<M> {
  readonly name: string;
  readonly help: string;
  readonly values: (m: M) => readonly Value[];
  /** containerd's v1 OOM counter is its own collector: a counter without the runtime label. */
  readonly counter?: boolean;
}

const one = (v: bigint | undefined): Value[] => (v === undefined ? [] : [{ v }]);

// --- cgroup v1 -----------------------------------------------------------------------------------------------

const blkio = (field: keyof V1BlkIOStat, name: string, help: string): Def<V1Metrics> => ({
  name,
  help,
  values: (m) =>
    (m.blkio?.[field] ?? []).map((e: V1BlkIOEntry) => ({
      v: e.value,
      labels: { op: e.op, device: e.device, major: String(e.major), minor: String(e.minor) },
    })),
});

const memoryEntry = (entry: 'usage' | 'swap' | 'kernel' | 'kernel_tcp', prefix: string, what: string): Def<V1Metrics>[] =>
  ([
    ['failcnt', 'total', 'times the limit was hit'],
    ['limit', 'bytes', 'limit'],
    ['max', 'bytes', 'highest usage recorded'],
    ['usage', 'bytes', 'current usage'],
  ] as const).map(([field, unit, text]) => ({
    name: `container_memory_${prefix}_${field}_${unit}`,
    help: `${what}: ${text} (memory.${entry === 'usage' ? '' : `${entry === 'swap' ? 'memsw' : entry === 'kernel' ? 'kmem' : 'kmem.tcp'}.`}*).`,
    values: (m: V1Metrics) => one(m.memory?.[entry][field as keyof V1MemoryEntry]),
  }));

const V1_DEFS: readonly Def<V1Metrics>[] = [
  { name: 'container_pids_limit', help: 'Maximum number of processes of the container (0: no limit).', values: (m) => one(m.pids?.limit) },
  { name: 'container_pids_current', help: 'Number of processes in the container.', values: (m) => one(m.pids?.current) },
  { name: 'container_cpu_total_nanoseconds', help: 'CPU time the container used (cpuacct.usage).', values: (m) => one(m.cpu?.usage.total) },
  { name: 'container_cpu_kernel_nanoseconds', help: 'CPU time the container spent in the kernel.', values: (m) => one(m.cpu?.usage.kernel) },
  { name: 'container_cpu_user_nanoseconds', help: 'CPU time the container spent in user space.', values: (m) => one(m.cpu?.usage.user) },
  {
    name: 'container_per_cpu_nanoseconds',
    help: 'CPU time the container used on each CPU.',
    values: (m) => (m.cpu?.usage.per_cpu ?? []).map((v, i) => ({ v, labels: { cpu: String(i) } })),
  },
  { name: 'container_cpu_throttle_periods_total', help: 'CFS enforcement periods that elapsed.', values: (m) => one(m.cpu?.throttling.periods) },
  { name: 'container_cpu_throttled_periods_total', help: 'CFS periods in which the container was throttled.', values: (m) => one(m.cpu?.throttling.throttled_periods) },
  { name: 'container_cpu_throttled_time_nanoseconds', help: 'Time the container was throttled for.', values: (m) => one(m.cpu?.throttling.throttled_time) },
  ...Object.entries(V1_MEMORY_STAT_FIELDS).map(([field, key]): Def<V1Metrics> => ({
    name: `container_memory_${key}_bytes`,
    help: `The ${key} figure of the container's memory.stat.`,
    values: (m) => one(m.memory?.[field as keyof typeof V1_MEMORY_STAT_FIELDS]),
  })),
  ...memoryEntry('usage', 'usage', 'Memory'),
  ...memoryEntry('swap', 'swap', 'Memory and swap'),
  ...memoryEntry('kernel', 'kernel', 'Kernel memory'),
  ...memoryEntry('kernel_tcp', 'kerneltcp', 'Kernel TCP buffer memory'),
  { name: 'container_hugetlb_usage_bytes', help: 'Huge pages in use, per page size.', values: (m) => m.hugetlb.map((h) => ({ v: h.usage, labels: { page: h.pagesize } })) },
  { name: 'container_hugetlb_failcnt_total', help: 'Times the huge page limit was hit, per page size.', values: (m) => m.hugetlb.map((h) => ({ v: h.failcnt, labels: { page: h.pagesize } })) },
  { name: 'container_hugetlb_max_bytes', help: 'Highest huge page usage recorded, per page size.', values: (m) => m.hugetlb.map((h) => ({ v: h.max, labels: { page: h.pagesize } })) },
  blkio('io_merged_recursive', 'container_blkio_io_merged_recursive_total', 'Block I/O requests merged, per device and operation.'),
  blkio('io_queued_recursive', 'container_blkio_io_queued_recursive_total', 'Block I/O requests queued, per device and operation.'),
  blkio('io_service_bytes_recursive', 'container_blkio_io_service_bytes_recursive_bytes', 'Bytes transferred to or from block devices, per device and operation.'),
  blkio('io_service_time_recursive', 'container_blkio_io_service_time_recursive_total', 'Time spent servicing block I/O, per device and operation.'),
  blkio('io_serviced_recursive', 'container_blkio_io_serviced_recursive_total', 'Block I/O operations issued, per device and operation.'),
  blkio('io_time_recursive', 'container_blkio_io_time_recursive_total', 'Disk time allocated to the container, per device.'),
  blkio('sectors_recursive', 'container_blkio_sectors_recursive_total', 'Sectors transferred, per device.'),
  {
    name: 'container_memory_oom_total',
    help: 'Processes of the container the kernel killed for lack of memory (memory.oom_control oom_kill).',
    values: (m) => one(m.memory_oom_control?.oom_kill),
    counter: true,
  },
];

// --- cgroup v2 -----------------------------------------------------------------------------------------------

const io = (field: 'rbytes' | 'wbytes' | 'rios' | 'wios', unit: string, help: string): Def<V2Metrics> => ({
  name: `container_io_${field}_${unit}`,
  help,
  values: (m) => m.io.usage.map((e) => ({ v: e[field], labels: { major: String(e.major), minor: String(e.minor) } })),
});

const V2_DEFS: readonly Def<V2Metrics>[] = [
  { name: 'container_pids_limit', help: 'Maximum number of processes of the container (2^64-1: no limit).', values: (m) => one(m.pids.limit) },
  { name: 'container_pids_current', help: 'Number of processes in the container.', values: (m) => one(m.pids.current) },
  { name: 'container_cpu_usage_usec_microseconds', help: 'CPU time the container used.', values: (m) => one(m.cpu.usage_usec) },
  { name: 'container_cpu_user_usec_microseconds', help: 'CPU time the container spent in user space.', values: (m) => one(m.cpu.user_usec) },
  { name: 'container_cpu_system_usec_microseconds', help: 'CPU time the container spent in the kernel.', values: (m) => one(m.cpu.system_usec) },
  { name: 'container_cpu_nr_periods_total', help: 'CPU bandwidth enforcement periods that elapsed.', values: (m) => one(m.cpu.nr_periods) },
  { name: 'container_cpu_nr_throttled_total', help: 'Periods in which the container was throttled.', values: (m) => one(m.cpu.nr_throttled) },
  { name: 'container_cpu_throttled_usec_microseconds', help: 'Time the container was throttled for.', values: (m) => one(m.cpu.throttled_usec) },
  io('rbytes', 'bytes', 'Bytes read from each block device.'),
  io('wbytes', 'bytes', 'Bytes written to each block device.'),
  io('rios', 'total', 'Read operations on each block device.'),
  io('wios', 'total', 'Write operations on each block device.'),
  { name: 'container_memory_usage_bytes', help: 'Memory the container uses (memory.current).', values: (m) => one(m.memory.usage) },
  { name: 'container_memory_usage_limit_bytes', help: 'Memory limit of the container (memory.max; 2^64-1: none).', values: (m) => one(m.memory.usage_limit) },
  { name: 'container_memory_swap_usage_bytes', help: 'Swap the container uses.', values: (m) => one(m.memory.swap_usage) },
  { name: 'container_memory_swap_limit_bytes', help: 'Swap limit of the container.', values: (m) => one(m.memory.swap_limit) },
  ...V2_MEMORY_STAT_FIELDS.map((field): Def<V2Metrics> => ({
    name: `container_memory_${field}_bytes`,
    help: `The ${field} figure of the container's memory.stat.`,
    values: (m) => one(m.memory[field]),
  })),
  { name: 'container_memory_oom_total', help: 'OOM events of the container (memory.events oom).', values: (m) => one(m.memory_events?.oom) },
];

/**
 * Builds the families task by task (a scrape adds its tasks in slices and yields between them). Label objects are
 * built once per task and shared by its samples; per-metric labels are merged into them in name order, as
 * Prometheus's Go client writes labels.
 */
export class FamilyBuilder {
  private readonly byName = new Map<string, { help: string; type: 'gauge' | 'counter'; samples: MetricSample[] }>();

  add(task: TaskStats): void {
    const oomBase: MetricLabels = { container_id: task.id, namespace: task.namespace };
    const base: MetricLabels = { container_id: task.id, namespace: task.namespace, runtime: task.runtime };
    if (task.stats.version === 1) this.addDefs(V1_DEFS, task.stats.metrics, base, oomBase);
    else this.addDefs(V2_DEFS, task.stats.metrics, base, oomBase);
  }

  families(): MetricFamily[] {
    return [...this.byName].map(([name, f]) => ({ name, help: f.help, type: f.type, samples: f.samples }));
  }

  private addDefs<M>(defs: readonly Def<M>[], metrics: M, base: MetricLabels, oomBase: MetricLabels): void {
    for (const def of defs) {
      const values = def.values(metrics);
      if (values.length === 0) continue;
      let family = this.byName.get(def.name);
      if (!family) this.byName.set(def.name, (family = { help: def.help, type: def.counter ? 'counter' : 'gauge', samples: [] }));
      const own = def.counter ? oomBase : base;
      for (const { v, labels } of values) family.samples.push({ labels: labels ? mergeSorted(own, labels) : own, value: Number(v) });
    }
  }
}

/** The families of every task's statistics, one family per name, samples in task order. */
export function containerFamilies(tasks: readonly TaskStats[]): MetricFamily[] {
  const builder = new FamilyBuilder();
  for (const task of tasks) builder.add(task);
  return builder.families();
}

/** Two label sets whose keys are each in name order, merged in name order. */
function mergeSorted(a: MetricLabels, b: MetricLabels): MetricLabels {
  const ak = Object.keys(a);
  const bk = Object.keys(b).sort();
  const out: Record<string, string> = {};
  let i = 0;
  let j = 0;
  while (i < ak.length || j < bk.length) {
    if (j >= bk.length || (i < ak.length && ak[i]! < bk[j]!)) {
      out[ak[i]!] = a[ak[i]!]!;
      i++;
    } else {
      out[bk[j]!] = b[bk[j]!]!;
      j++;
    }
  }
  return out;
}
