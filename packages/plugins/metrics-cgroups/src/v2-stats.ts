// cgroup v2 statistics of one cgroup directory, as containerd's cgroups v2 manager fills
// io.containerd.cgroups.v2.Metrics: cpu.stat and memory.stat keys, single-value files (`max` is uint64's maximum),
// memory.events, io.stat and the hugetlb files. Missing files read as zero, as in containerd.
import { join } from 'node:path';
import { listOptional, parseKeyValues, parseU64OrMax, readOptional, U64_MAX } from './files.js';

export const V2_MEMORY_STAT_FIELDS = [
  'anon', 'file', 'kernel_stack', 'slab', 'sock', 'shmem', 'file_mapped', 'file_dirty', 'file_writeback', 'anon_thp',
  'inactive_anon', 'active_anon', 'inactive_file', 'active_file', 'unevictable', 'slab_reclaimable', 'slab_unreclaimable',
  'pgfault', 'pgmajfault', 'workingset_refault', 'workingset_activate', 'workingset_nodereclaim', 'pgrefill', 'pgscan',
  'pgsteal', 'pgactivate', 'pgdeactivate', 'pglazyfree', 'pglazyfreed', 'thp_fault_alloc', 'thp_collapse_alloc',
] as const;
export type V2MemoryStatField = (typeof V2_MEMORY_STAT_FIELDS)[number];

export interface V2IOEntry {
  major: bigint;
  minor: bigint;
  rbytes: bigint;
  wbytes: bigint;
  rios: bigint;
  wios: bigint;
}

export interface V2Metrics {
  pids: { current: bigint; limit: bigint };
  cpu: { usage_usec: bigint; user_usec: bigint; system_usec: bigint; nr_periods: bigint; nr_throttled: bigint; throttled_usec: bigint };
  memory: Record<V2MemoryStatField, bigint> & { usage: bigint; usage_limit: bigint; swap_usage: bigint; swap_limit: bigint };
  io: { usage: V2IOEntry[] };
  hugetlb: { current: bigint; max: bigint; pagesize: string }[];
  memory_events?: { low: bigint; high: bigint; max: bigint; oom: bigint; oom_kill: bigint };
}

/** io.stat: `major:minor rbytes=.. wbytes=.. rios=.. wios=.. dbytes=.. dios=..` per device. */
export function parseIoStat(text: string | undefined): V2IOEntry[] {
  const out: V2IOEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const [device, ...pairs] = line.trim().split(/\s+/);
    const m = /^(\d+):(\d+)$/.exec(device ?? '');
    if (!m) continue;
    const kv = new Map(pairs.map((p) => p.split('=') as [string, string]));
    const num = (k: string) => parseU64OrMax(kv.get(k)) ?? 0n;
    out.push({ major: BigInt(m[1]!), minor: BigInt(m[2]!), rbytes: num('rbytes'), wbytes: num('wbytes'), rios: num('rios'), wios: num('wios') });
  }
  return out;
}

export async function readV2Stats(dir: string): Promise<V2Metrics> {
  const read = (name: string) => readOptional(join(dir, name));
  const [cpuStat, memoryStat, pidsCurrent, pidsMax, current, max, swapCurrent, swapMax, events, io, entries] = await Promise.all([
    read('cpu.stat'), read('memory.stat'), read('pids.current'), read('pids.max'), read('memory.current'), read('memory.max'),
    read('memory.swap.current'), read('memory.swap.max'), read('memory.events'), read('io.stat'), listOptional(dir),
  ]);
  const cpu = parseKeyValues(cpuStat);
  const mem = parseKeyValues(memoryStat);
  const memory = {} as V2Metrics['memory'];
  for (const field of V2_MEMORY_STAT_FIELDS) memory[field] = mem.get(field) ?? 0n;
  memory.usage = parseU64OrMax(current) ?? 0n;
  memory.usage_limit = parseU64OrMax(max) ?? 0n;
  memory.swap_usage = parseU64OrMax(swapCurrent) ?? 0n;
  memory.swap_limit = parseU64OrMax(swapMax) ?? 0n;
  const ev = parseKeyValues(events);
  return {
    pids: { current: parseU64OrMax(pidsCurrent) ?? 0n, limit: parseU64OrMax(pidsMax) ?? 0n },
    cpu: {
      usage_usec: cpu.get('usage_usec') ?? 0n,
      user_usec: cpu.get('user_usec') ?? 0n,
      system_usec: cpu.get('system_usec') ?? 0n,
      nr_periods: cpu.get('nr_periods') ?? 0n,
      nr_throttled: cpu.get('nr_throttled') ?? 0n,
      throttled_usec: cpu.get('throttled_usec') ?? 0n,
    },
    memory,
    io: { usage: parseIoStat(io) },
    hugetlb: await readHugetlb(dir, entries),
    ...(events !== undefined && ev.size > 0
      ? { memory_events: { low: ev.get('low') ?? 0n, high: ev.get('high') ?? 0n, max: ev.get('max') ?? 0n, oom: ev.get('oom') ?? 0n, oom_kill: ev.get('oom_kill') ?? 0n } }
      : {}),
  };
}

async function readHugetlb(dir: string, entries: readonly string[]): Promise<V2Metrics['hugetlb']> {
  const sizes = [...new Set(entries.map((f) => /^hugetlb\.([^.]+)\.(?:current|max)$/.exec(f)?.[1]).filter((s): s is string => !!s))].sort();
  return Promise.all(
    sizes.map(async (pagesize) => {
      const [current, max] = await Promise.all(['current', 'max'].map((n) => readOptional(join(dir, `hugetlb.${pagesize}.${n}`))));
      return { pagesize, current: parseU64OrMax(current) ?? 0n, max: max?.trim() === 'max' ? U64_MAX : (parseU64OrMax(max) ?? 0n) };
    }),
  );
}
