// `berth tasks metrics ID`: one data point of a task's cgroup statistics, as ctr prints it (the ID/TIMESTAMP
// header, then the METRIC/VALUE rows of its cgroup version), or the whole decoded statistics with --format json.
// The decoding is shared with `berth top`.
import { findMessageType, messageCodec, type io } from '@berth/api';
import type { TaskMetric } from '@berth/client';
import { InvalidArgumentError, type AnyValue } from '@berth/core';
import { formatDate } from '../format.js';

export const V1_TYPE_URL = 'io.containerd.cgroups.v1.Metrics';
export const V2_TYPE_URL = 'io.containerd.cgroups.v2.Metrics';

export type DecodedStats =
  | { readonly version: 1; readonly metrics: io.containerd.cgroups.v1.Metrics }
  | { readonly version: 2; readonly metrics: io.containerd.cgroups.v2.Metrics };

/** The statistics of a Tasks.Metrics entry; InvalidArgument for a type berth cannot read (ctr refuses the same). */
export function decodeStats(data: AnyValue): DecodedStats {
  const url = data.typeUrl.slice(data.typeUrl.lastIndexOf('/') + 1);
  if (url === V1_TYPE_URL) return { version: 1, metrics: messageCodec(V1_TYPE_URL).decode(data.value) };
  if (url === V2_TYPE_URL) return { version: 2, metrics: messageCodec(V2_TYPE_URL).decode(data.value) };
  throw new InvalidArgumentError(`cannot read metrics of type ${JSON.stringify(data.typeUrl)} (expected ${V1_TYPE_URL} or ${V2_TYPE_URL})`);
}

/** A decoded message with its 64-bit integers as exact bigints (what ctr prints is Go's uint64, every digit). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Exact = Record<string, any>;

export interface ExactStats {
  readonly version: 1 | 2;
  readonly metrics: Exact;
}

/** Walks the Number and the String decodings together: where one has a number and the other a string, it is a uint64. */
function toExact(asNumber: unknown, asString: unknown): unknown {
  if (typeof asNumber === 'number' && typeof asString === 'string') return BigInt(asString);
  if (Array.isArray(asNumber) && Array.isArray(asString)) return asNumber.map((v, i) => toExact(v, asString[i]));
  if (asNumber && typeof asNumber === 'object' && asString && typeof asString === 'object' && !Buffer.isBuffer(asNumber)) {
    const s = asString as Record<string, unknown>;
    return Object.fromEntries(Object.entries(asNumber).map(([k, v]) => [k, toExact(v, s[k])]));
  }
  return asNumber;
}

/** decodeStats with exact 64-bit figures (the strict decode runs first, so malformed input fails the same way). */
export function exactStats(data: AnyValue): ExactStats {
  const decoded = decodeStats(data);
  const type = findMessageType(decoded.version === 1 ? V1_TYPE_URL : V2_TYPE_URL)!;
  const strings = type.toObject(type.decode(data.value), { longs: String, enums: String, defaults: true, arrays: true, objects: true });
  return { version: decoded.version, metrics: toExact(decoded.metrics, strings) as Exact };
}

const str = (v: unknown) => String(v ?? 0);

/** ctr's METRIC/VALUE rows for the version (printCgroupMetricsTable / printCgroup2MetricsTable). */
export function metricRows(stats: ExactStats): string[][] {
  const rows: string[][] = [['METRIC', 'VALUE']];
  const m = stats.metrics;
  if (stats.version === 1) {
    if (m.memory) {
      rows.push(['memory.usage_in_bytes', str(m.memory.usage?.usage)]);
      rows.push(['memory.limit_in_bytes', str(m.memory.usage?.limit)]);
      rows.push(['memory.stat.cache', str(m.memory.total_cache)]);
    }
    if (m.cpu) {
      rows.push(['cpuacct.usage', str(m.cpu.usage?.total)]);
      rows.push(['cpuacct.usage_percpu', `[${((m.cpu.usage?.per_cpu ?? []) as unknown[]).map(str).join(' ')}]`]);
    }
    if (m.pids) rows.push(['pids.current', str(m.pids.current)], ['pids.limit', str(m.pids.limit)]);
    return rows;
  }
  if (m.pids) rows.push(['pids.current', str(m.pids.current)], ['pids.limit', str(m.pids.limit)]);
  if (m.cpu) {
    for (const k of ['usage_usec', 'user_usec', 'system_usec', 'nr_periods', 'nr_throttled', 'throttled_usec']) rows.push([`cpu.${k}`, str(m.cpu[k])]);
  }
  if (m.memory) {
    for (const k of ['usage', 'usage_limit', 'swap_usage', 'swap_limit']) rows.push([`memory.${k}`, str(m.memory[k])]);
  }
  return rows;
}

/** JSON text with bigints written as plain numbers, every digit kept (as Go writes uint64). */
export function exactJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `\u0000${v}\u0000` : v), 2).replace(/"\\u0000(\d+)\\u0000"/g, '$1');
}

/** Like Go's encoding/json with omitempty: zero numbers, empty strings and lists and absent messages are left out. */
export function omitEmpty(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(omitEmpty);
  if (value && typeof value === 'object' && !Buffer.isBuffer(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (v === null || v === undefined || v === 0 || v === 0n || v === '' || v === false || (Array.isArray(v) && v.length === 0)) continue;
      out[k] = omitEmpty(v);
    }
    return out;
  }
  return value;
}

/** Go's time.Time String() of a UTC instant: `2026-12-01 22:53:16.123 +0000 UTC`. */
export function goTime(date: Date): string {
  const iso = formatDate(date);
  return iso ? `${iso.replace('T', ' ').replace(/Z$/, '')} +0000 UTC` : '0001-01-01 00:00:00 +0000 UTC';
}

export function headerRows(metric: TaskMetric): string[][] {
  return [['ID', 'TIMESTAMP'], [metric.id, goTime(metric.timestamp)]];
}
