import { renderPrometheus } from '@berth/core';
import { describe, expect, it } from 'vitest';
import { U64_MAX } from './files.js';
import { containerFamilies } from './prometheus.js';
import { V1_MEMORY_STAT_FIELDS, type V1Metrics } from './v1-stats.js';
import { V2_MEMORY_STAT_FIELDS, type V2Metrics } from './v2-stats.js';

const entry = (usage: bigint) => ({ usage, limit: 1n << 30n, max: usage * 2n, failcnt: 0n });
const v1: V1Metrics = {
  hugetlb: [{ pagesize: '2MB', usage: 0n, max: 0n, failcnt: 0n }],
  pids: { current: 2n, limit: 0n },
  cpu: { usage: { total: 5000n, kernel: 1000n, user: 4000n, per_cpu: [3000n, 2000n] }, throttling: { periods: 0n, throttled_periods: 0n, throttled_time: 0n } },
  memory: {
    ...(Object.fromEntries(Object.keys(V1_MEMORY_STAT_FIELDS).map((k) => [k, 1n])) as Record<keyof typeof V1_MEMORY_STAT_FIELDS, bigint>),
    usage: entry(4096n),
    swap: entry(0n),
    kernel: entry(0n),
    kernel_tcp: entry(0n),
  },
  blkio: {
    io_service_bytes_recursive: [{ op: 'Read', device: '/dev/vda', major: 254n, minor: 0n, value: 512n }],
    io_serviced_recursive: [], io_queued_recursive: [], io_service_time_recursive: [], io_wait_time_recursive: [],
    io_merged_recursive: [], io_time_recursive: [], sectors_recursive: [],
  },
  memory_oom_control: { oom_kill_disable: 0n, under_oom: 0n, oom_kill: 1n },
};

// The families containerd 1.6's metrics/cgroups/v1 package exports (name = container_<metric>_<unit>).
const CONTAINERD_V1 = [
  'container_pids_limit', 'container_pids_current',
  'container_cpu_total_nanoseconds', 'container_cpu_kernel_nanoseconds', 'container_cpu_user_nanoseconds', 'container_per_cpu_nanoseconds',
  'container_cpu_throttle_periods_total', 'container_cpu_throttled_periods_total', 'container_cpu_throttled_time_nanoseconds',
  ...['cache', 'rss', 'rss_huge', 'mapped_file', 'dirty', 'writeback', 'pgpgin', 'pgpgout', 'pgfault', 'pgmajfault', 'inactive_anon',
    'active_anon', 'inactive_file', 'active_file', 'unevictable'].flatMap((k) => [`container_memory_${k}_bytes`, `container_memory_total_${k}_bytes`]),
  'container_memory_hierarchical_memory_limit_bytes', 'container_memory_hierarchical_memsw_limit_bytes',
  ...['usage', 'swap', 'kernel', 'kerneltcp'].flatMap((e) => [`container_memory_${e}_failcnt_total`, `container_memory_${e}_limit_bytes`, `container_memory_${e}_max_bytes`, `container_memory_${e}_usage_bytes`]),
  'container_hugetlb_usage_bytes', 'container_hugetlb_failcnt_total', 'container_hugetlb_max_bytes',
  'container_blkio_io_service_bytes_recursive_bytes',
  'container_memory_oom_total',
];

describe('per-container series', () => {
  it("uses containerd's v1 names, labels and gauge type", () => {
    const families = containerFamilies([{ id: 'web', namespace: 'default', runtime: 'io.containerd.runc.v2', stats: { version: 1, metrics: v1 } }]);
    expect(families.map((f) => f.name).sort()).toEqual([...CONTAINERD_V1].sort());
    const text = renderPrometheus(families);
    expect(text).toContain('# TYPE container_cpu_total_nanoseconds gauge');
    expect(text).toContain('container_cpu_total_nanoseconds{container_id="web",namespace="default",runtime="io.containerd.runc.v2"} 5000');
    expect(text).toContain('container_per_cpu_nanoseconds{container_id="web",cpu="1",namespace="default",runtime="io.containerd.runc.v2"} 2000');
    expect(text).toContain('container_memory_usage_usage_bytes{container_id="web",namespace="default",runtime="io.containerd.runc.v2"} 4096');
    expect(text).toContain(
      'container_blkio_io_service_bytes_recursive_bytes{container_id="web",device="/dev/vda",major="254",minor="0",namespace="default",op="Read",runtime="io.containerd.runc.v2"} 512',
    );
    // containerd's OOM counter is a collector of its own, without the runtime label.
    expect(text).toContain('# TYPE container_memory_oom_total counter');
    expect(text).toContain('container_memory_oom_total{container_id="web",namespace="default"} 1');
  });

  it("uses containerd's v2 names and reports several tasks in one family each", () => {
    const memory = Object.fromEntries(V2_MEMORY_STAT_FIELDS.map((k) => [k, 0n])) as V2Metrics['memory'];
    const v2 = (usec: bigint): V2Metrics => ({
      pids: { current: 1n, limit: U64_MAX },
      cpu: { usage_usec: usec, user_usec: usec, system_usec: 0n, nr_periods: 0n, nr_throttled: 0n, throttled_usec: 0n },
      memory: { ...memory, usage: 100n, usage_limit: U64_MAX, swap_usage: 0n, swap_limit: 0n },
      io: { usage: [{ major: 8n, minor: 0n, rbytes: 1n, wbytes: 2n, rios: 3n, wios: 4n }] },
      hugetlb: [],
      memory_events: { low: 0n, high: 0n, max: 0n, oom: 0n, oom_kill: 0n },
    });
    const families = containerFamilies([
      { id: 'a', namespace: 'n1', runtime: 'r', stats: { version: 2, metrics: v2(10n) } },
      { id: 'b', namespace: 'n2', runtime: 'r', stats: { version: 2, metrics: v2(20n) } },
    ]);
    const names = families.map((f) => f.name);
    for (const n of [
      'container_pids_current', 'container_pids_limit', 'container_cpu_usage_usec_microseconds', 'container_cpu_user_usec_microseconds',
      'container_cpu_system_usec_microseconds', 'container_cpu_nr_periods_total', 'container_cpu_nr_throttled_total',
      'container_cpu_throttled_usec_microseconds', 'container_memory_usage_bytes', 'container_memory_usage_limit_bytes',
      'container_memory_swap_usage_bytes', 'container_memory_swap_limit_bytes', 'container_memory_file_mapped_bytes',
      'container_memory_workingset_nodereclaim_bytes', 'container_memory_oom_total', 'container_io_rbytes_bytes',
      'container_io_wbytes_bytes', 'container_io_rios_total', 'container_io_wios_total',
    ]) expect(names).toContain(n);
    expect(new Set(names).size).toBe(names.length);
    const cpu = families.find((f) => f.name === 'container_cpu_usage_usec_microseconds')!;
    expect(cpu.samples.map((s) => [s.labels?.container_id, s.labels?.namespace, s.value])).toEqual([['a', 'n1', 10], ['b', 'n2', 20]]);
    expect(families.find((f) => f.name === 'container_memory_oom_total')!.type).toBe('gauge');
    expect(renderPrometheus(families)).toContain('container_io_rbytes_bytes{container_id="a",major="8",minor="0",namespace="n1",runtime="r"} 1');
  });

  it('has no families without tasks', () => {
    expect(containerFamilies([])).toEqual([]);
  });
});
