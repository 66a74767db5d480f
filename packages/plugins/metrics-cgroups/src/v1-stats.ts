// cgroup v1 statistics of one cgroup, field for field as containerd's cgroups v1 package fills
// io.containerd.cgroups.v1.Metrics: raw figures (nanoseconds, bytes, counts) kept exact as bigint. A controller whose
// files are missing (not mounted, or not enabled for this cgroup) leaves its section out, as containerd's shim does
// with IgnoreNotExist; a value that is not a number reads as 0.
import { join } from 'node:path';
import { listOptional, parseKeyValues, parseU64, readOptional, readU64 } from './files.js';

export interface V1MemoryEntry {
  limit: bigint;
  usage: bigint;
  max: bigint;
  failcnt: bigint;
}

export interface V1BlkIOEntry {
  op: string;
  device: string;
  major: bigint;
  minor: bigint;
  value: bigint;
}

/** The v1 memory.stat figures, by proto field name. */
export const V1_MEMORY_STAT_FIELDS = {
  cache: 'cache', rss: 'rss', rss_huge: 'rss_huge', mapped_file: 'mapped_file', dirty: 'dirty', writeback: 'writeback',
  pg_pg_in: 'pgpgin', pg_pg_out: 'pgpgout', pg_fault: 'pgfault', pg_maj_fault: 'pgmajfault',
  inactive_anon: 'inactive_anon', active_anon: 'active_anon', inactive_file: 'inactive_file', active_file: 'active_file',
  unevictable: 'unevictable', hierarchical_memory_limit: 'hierarchical_memory_limit',
  hierarchical_swap_limit: 'hierarchical_memsw_limit',
  total_cache: 'total_cache', total_rss: 'total_rss', total_rss_huge: 'total_rss_huge', total_mapped_file: 'total_mapped_file',
  total_dirty: 'total_dirty', total_writeback: 'total_writeback', total_pg_pg_in: 'total_pgpgin', total_pg_pg_out: 'total_pgpgout',
  total_pg_fault: 'total_pgfault', total_pg_maj_fault: 'total_pgmajfault', total_inactive_anon: 'total_inactive_anon',
  total_active_anon: 'total_active_anon', total_inactive_file: 'total_inactive_file', total_active_file: 'total_active_file',
  total_unevictable: 'total_unevictable',
} as const;
export type V1MemoryStatField = keyof typeof V1_MEMORY_STAT_FIELDS;

export type V1MemoryStat = Record<V1MemoryStatField, bigint> & {
  usage: V1MemoryEntry;
  swap: V1MemoryEntry;
  kernel: V1MemoryEntry;
  kernel_tcp: V1MemoryEntry;
};

export interface V1BlkIOStat {
  io_service_bytes_recursive: V1BlkIOEntry[];
  io_serviced_recursive: V1BlkIOEntry[];
  io_queued_recursive: V1BlkIOEntry[];
  io_service_time_recursive: V1BlkIOEntry[];
  io_wait_time_recursive: V1BlkIOEntry[];
  io_merged_recursive: V1BlkIOEntry[];
  io_time_recursive: V1BlkIOEntry[];
  sectors_recursive: V1BlkIOEntry[];
}

export interface V1Metrics {
  hugetlb: { usage: bigint; max: bigint; failcnt: bigint; pagesize: string }[];
  pids?: { current: bigint; limit: bigint };
  cpu?: {
    usage: { total: bigint; kernel: bigint; user: bigint; per_cpu: bigint[] };
    throttling: { periods: bigint; throttled_periods: bigint; throttled_time: bigint };
  };
  memory?: V1MemoryStat;
  blkio?: V1BlkIOStat;
  memory_oom_control?: { oom_kill_disable: bigint; under_oom: bigint; oom_kill: bigint };
}

/** USER_HZ: cpuacct.stat counts in clock ticks, 100 a second on Linux (containerd assumes the same). */
const CLOCK_TICKS = 100n;
const NS_PER_SECOND = 1_000_000_000n;

export interface V1Sources {
  /** Controller name to this cgroup's directory under it (cpu, cpuacct, memory, pids, blkio, hugetlb). */
  readonly dirs: ReadonlyMap<string, string>;
  /** /proc/partitions' text, to name block devices (`/dev/vda`); devices stay unnamed without it. */
  readonly partitions?: string;
}

export async function readV1Stats({ dirs, partitions }: V1Sources): Promise<V1Metrics> {
  const at = (controller: string) => dirs.get(controller);
  const [pids, cpu, memory, memoryOom, blkio, hugetlb] = await Promise.all([
    at('pids') ? readPids(at('pids')!) : undefined,
    readCpu(at('cpuacct'), at('cpu')),
    at('memory') ? readMemory(at('memory')!) : undefined,
    at('memory') ? readOomControl(at('memory')!) : undefined,
    at('blkio') ? readBlkio(at('blkio')!, devicesOf(partitions)) : undefined,
    at('hugetlb') ? readHugetlb(at('hugetlb')!) : [],
  ]);
  return {
    hugetlb,
    ...(pids ? { pids } : {}),
    ...(cpu ? { cpu } : {}),
    ...(memory ? { memory } : {}),
    ...(blkio ? { blkio } : {}),
    ...(memoryOom ? { memory_oom_control: memoryOom } : {}),
  };
}

async function readPids(dir: string): Promise<V1Metrics['pids']> {
  const [current, max] = await Promise.all([readOptional(join(dir, 'pids.current')), readOptional(join(dir, 'pids.max'))]);
  if (current === undefined || max === undefined) return undefined;
  // `max` (no limit) is 0 in containerd's v1 stats.
  return { current: parseU64(current) ?? 0n, limit: max.trim() === 'max' ? 0n : (parseU64(max) ?? 0n) };
}

async function readCpu(cpuacct: string | undefined, cpu: string | undefined): Promise<V1Metrics['cpu']> {
  const [usage, percpu, stat, cpuStat] = await Promise.all([
    cpuacct ? readOptional(join(cpuacct, 'cpuacct.usage')) : undefined,
    cpuacct ? readOptional(join(cpuacct, 'cpuacct.usage_percpu')) : undefined,
    cpuacct ? readOptional(join(cpuacct, 'cpuacct.stat')) : undefined,
    cpu ? readOptional(join(cpu, 'cpu.stat')) : undefined,
  ]);
  if (usage === undefined && cpuStat === undefined) return undefined;
  const ticks = parseKeyValues(stat);
  const throttle = parseKeyValues(cpuStat);
  return {
    usage: {
      total: parseU64(usage) ?? 0n,
      user: ((ticks.get('user') ?? 0n) * NS_PER_SECOND) / CLOCK_TICKS,
      kernel: ((ticks.get('system') ?? 0n) * NS_PER_SECOND) / CLOCK_TICKS,
      per_cpu: (percpu ?? '').split(/\s+/).filter(Boolean).map((v) => parseU64(v) ?? 0n),
    },
    throttling: {
      periods: throttle.get('nr_periods') ?? 0n,
      throttled_periods: throttle.get('nr_throttled') ?? 0n,
      throttled_time: throttle.get('throttled_time') ?? 0n,
    },
  };
}

async function readMemoryEntry(dir: string, module: string): Promise<V1MemoryEntry> {
  const file = (name: string) => (module ? `memory.${module}.${name}` : `memory.${name}`);
  const [usage, max, failcnt, limit] = await Promise.all(
    ['usage_in_bytes', 'max_usage_in_bytes', 'failcnt', 'limit_in_bytes'].map((n) => readU64(dir, file(n))),
  );
  // A kernel without swap (or kmem) accounting has no memsw (kmem) files: that entry stays zero, as in containerd.
  return { usage: usage ?? 0n, max: max ?? 0n, failcnt: failcnt ?? 0n, limit: limit ?? 0n };
}

async function readMemory(dir: string): Promise<V1MemoryStat | undefined> {
  const text = await readOptional(join(dir, 'memory.stat'));
  if (text === undefined) return undefined;
  const raw = parseKeyValues(text);
  const [usage, swap, kernel, kernelTcp] = await Promise.all(['', 'memsw', 'kmem', 'kmem.tcp'].map((m) => readMemoryEntry(dir, m)));
  const stat = {} as Record<V1MemoryStatField, bigint>;
  for (const [field, key] of Object.entries(V1_MEMORY_STAT_FIELDS) as [V1MemoryStatField, string][]) stat[field] = raw.get(key) ?? 0n;
  return { ...stat, usage: usage!, swap: swap!, kernel: kernel!, kernel_tcp: kernelTcp! };
}

async function readOomControl(dir: string): Promise<V1Metrics['memory_oom_control']> {
  const text = await readOptional(join(dir, 'memory.oom_control'));
  if (text === undefined) return undefined;
  const kv = parseKeyValues(text);
  return { oom_kill_disable: kv.get('oom_kill_disable') ?? 0n, under_oom: kv.get('under_oom') ?? 0n, oom_kill: kv.get('oom_kill') ?? 0n };
}

/** `major:minor` to `/dev/<name>` from /proc/partitions (two header lines, then `major minor #blocks name`). */
export function devicesOf(partitions: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of (partitions ?? '').split('\n').slice(2)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || !/^\d+$/.test(f[0]!) || !/^\d+$/.test(f[1]!)) continue;
    const key = `${f[0]}:${f[1]}`;
    if (!out.has(key)) out.set(key, `/dev/${f[3]}`);
  }
  return out;
}

/** One blkio file: `major:minor op value` or `major:minor value` lines; `Total n` and malformed lines are skipped. */
export function parseBlkioEntries(text: string | undefined, devices: ReadonlyMap<string, string>): V1BlkIOEntry[] {
  const out: V1BlkIOEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const f = line.trim().split(/[\s:]+/).filter(Boolean);
    if (f.length < 3 || !/^\d+$/.test(f[0]!) || !/^\d+$/.test(f[1]!)) continue;
    const op = f.length >= 4 ? f[2]! : '';
    const value = parseU64(f[f.length >= 4 ? 3 : 2]);
    if (value === undefined) continue;
    out.push({ op, device: devices.get(`${f[0]}:${f[1]}`) ?? '', major: BigInt(f[0]!), minor: BigInt(f[1]!), value });
  }
  return out;
}

const CFQ_FILES: readonly [keyof V1BlkIOStat, string][] = [
  ['sectors_recursive', 'blkio.sectors_recursive'],
  ['io_service_bytes_recursive', 'blkio.io_service_bytes_recursive'],
  ['io_serviced_recursive', 'blkio.io_serviced_recursive'],
  ['io_queued_recursive', 'blkio.io_queued_recursive'],
  ['io_service_time_recursive', 'blkio.io_service_time_recursive'],
  ['io_wait_time_recursive', 'blkio.io_wait_time_recursive'],
  ['io_merged_recursive', 'blkio.io_merged_recursive'],
  ['io_time_recursive', 'blkio.time_recursive'],
];
const THROTTLE_FILES: readonly [keyof V1BlkIOStat, string][] = [
  ['io_serviced_recursive', 'blkio.throttle.io_serviced'],
  ['io_service_bytes_recursive', 'blkio.throttle.io_service_bytes'],
];

async function readBlkioFiles(dir: string, files: readonly [keyof V1BlkIOStat, string][], devices: ReadonlyMap<string, string>): Promise<V1BlkIOStat> {
  const stat: V1BlkIOStat = {
    io_service_bytes_recursive: [], io_serviced_recursive: [], io_queued_recursive: [], io_service_time_recursive: [],
    io_wait_time_recursive: [], io_merged_recursive: [], io_time_recursive: [], sectors_recursive: [],
  };
  const texts = await Promise.all(files.map(([, file]) => readOptional(join(dir, file))));
  files.forEach(([field], i) => (stat[field] = parseBlkioEntries(texts[i], devices)));
  return stat;
}

/**
 * The CFQ (`*_recursive`) files where the kernel has them and they hold entries, else the throttle files, which
 * every blkio cgroup has (containerd's order).
 */
async function readBlkio(dir: string, devices: ReadonlyMap<string, string>): Promise<V1BlkIOStat | undefined> {
  if ((await readOptional(join(dir, 'blkio.throttle.io_serviced'))) === undefined && (await readOptional(join(dir, 'blkio.io_serviced_recursive'))) === undefined) {
    return undefined;
  }
  const cfq = await readBlkioFiles(dir, CFQ_FILES, devices);
  if (Object.values(cfq).some((entries: V1BlkIOEntry[]) => entries.length > 0)) return cfq;
  return readBlkioFiles(dir, THROTTLE_FILES, devices);
}

/** hugetlb.<size>.{usage_in_bytes,max_usage_in_bytes,failcnt} for each page size the cgroup has files for. */
async function readHugetlb(dir: string): Promise<V1Metrics['hugetlb']> {
  const sizes = [...new Set((await listOptional(dir)).map((f) => /^hugetlb\.([^.]+)\.usage_in_bytes$/.exec(f)?.[1]).filter((s): s is string => !!s))].sort();
  return Promise.all(
    sizes.map(async (pagesize) => {
      const [usage, max, failcnt] = await Promise.all(['usage_in_bytes', 'max_usage_in_bytes', 'failcnt'].map((n) => readU64(dir, `hugetlb.${pagesize}.${n}`)));
      return { pagesize, usage: usage ?? 0n, max: max ?? 0n, failcnt: failcnt ?? 0n };
    }),
  );
}
