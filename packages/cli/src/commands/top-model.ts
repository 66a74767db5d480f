// What `berth top` shows, without the terminal: per-task figures from one Tasks.Metrics sample, and the rates
// between two samples (CPU % of one CPU's time, as docker stats and top show it; I/O bytes per second).
import type { DecodedStats } from './metrics.js';

/** One task's figures at one instant. */
export interface TaskSample {
  readonly id: string;
  /** ms since the epoch, from the metric's timestamp. */
  readonly at: number;
  /** CPU time used so far, nanoseconds. */
  readonly cpuNs: number;
  /** Memory in use without the inactive page cache (the working set), bytes. */
  readonly memory: number;
  /** The memory limit in bytes; undefined when there is none. */
  readonly limit?: number;
  readonly pids: number;
  readonly readBytes: number;
  readonly writeBytes: number;
}

/** Above this a limit means "none" (v1 writes 2^63 rounded down to a page, v2 `max` is 2^64 - 1). */
const NO_LIMIT = 2 ** 62;

export function sampleOf(id: string, at: number, stats: DecodedStats): TaskSample {
  if (stats.version === 1) {
    const m = stats.metrics;
    const usage = m.memory?.usage?.usage ?? 0;
    const limit = m.memory?.usage?.limit ?? 0;
    let read = 0;
    let write = 0;
    for (const e of m.blkio?.io_service_bytes_recursive ?? []) {
      if (e.op.toLowerCase() === 'read') read += e.value;
      else if (e.op.toLowerCase() === 'write') write += e.value;
    }
    return {
      id,
      at,
      cpuNs: m.cpu?.usage?.total ?? 0,
      memory: Math.max(0, usage - (m.memory?.total_inactive_file ?? 0)),
      ...(limit > 0 && limit < NO_LIMIT ? { limit } : {}),
      pids: m.pids?.current ?? 0,
      readBytes: read,
      writeBytes: write,
    };
  }
  const m = stats.metrics;
  const limit = m.memory?.usage_limit ?? 0;
  return {
    id,
    at,
    cpuNs: (m.cpu?.usage_usec ?? 0) * 1000,
    memory: Math.max(0, (m.memory?.usage ?? 0) - (m.memory?.inactive_file ?? 0)),
    ...(limit > 0 && limit < NO_LIMIT ? { limit } : {}),
    pids: m.pids?.current ?? 0,
    readBytes: (m.io?.usage ?? []).reduce((a, e) => a + e.rbytes, 0),
    writeBytes: (m.io?.usage ?? []).reduce((a, e) => a + e.wbytes, 0),
  };
}

export interface TopRow {
  readonly id: string;
  /** Undefined until there are two samples. */
  readonly cpuPercent?: number;
  readonly memory: number;
  readonly limit?: number;
  readonly pids: number;
  readonly readRate?: number;
  readonly writeRate?: number;
}

export function rowsOf(previous: ReadonlyMap<string, TaskSample>, current: readonly TaskSample[]): TopRow[] {
  return current.map((s) => {
    const p = previous.get(s.id);
    const dt = p ? (s.at - p.at) / 1000 : 0;
    const base = { id: s.id, memory: s.memory, pids: s.pids, ...(s.limit !== undefined ? { limit: s.limit } : {}) };
    if (!p || !(dt > 0)) return base;
    return {
      ...base,
      cpuPercent: Math.max(0, ((s.cpuNs - p.cpuNs) / (dt * 1e9)) * 100),
      readRate: Math.max(0, (s.readBytes - p.readBytes) / dt),
      writeRate: Math.max(0, (s.writeBytes - p.writeBytes) / dt),
    };
  });
}

export const SORT_KEYS = ['cpu', 'mem', 'pids', 'io', 'id'] as const;
export type SortKey = (typeof SORT_KEYS)[number];

/** Highest first for the figures, alphabetical for the id; ties by id so the order is stable between refreshes. */
export function sortRows(rows: readonly TopRow[], key: SortKey, reverse = false): TopRow[] {
  const value = (r: TopRow): number =>
    key === 'cpu' ? (r.cpuPercent ?? -1) : key === 'mem' ? r.memory : key === 'pids' ? r.pids : (r.readRate ?? -1) + (r.writeRate ?? 0);
  const sorted = [...rows].sort((a, b) => {
    const byId = a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
    if (key === 'id') return byId;
    return value(b) - value(a) || byId;
  });
  return reverse ? sorted.reverse() : sorted;
}
