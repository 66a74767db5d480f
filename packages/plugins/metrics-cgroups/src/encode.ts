// The wire form of the statistics: Any values under containerd's type URLs, encoded with the project's codec.
import { anyOf, type AnyMessage } from '@berth/api';
import type { AnyValue } from '@berth/core';
import type { V1Metrics } from './v1-stats.js';
import type { V2Metrics } from './v2-stats.js';

export const V1_METRICS_TYPE_URL = 'io.containerd.cgroups.v1.Metrics';
export const V2_METRICS_TYPE_URL = 'io.containerd.cgroups.v2.Metrics';

export type CgroupStats = { readonly version: 1; readonly metrics: V1Metrics } | { readonly version: 2; readonly metrics: V2Metrics };

/**
 * bigint figures as the codec takes uint64: a number while it is exact, a decimal string beyond 2^53 (protobufjs
 * converts strings through `long`, exactly; a number that large would lose its low bits, and 2^64 - 1 would wrap).
 */
function toWire(value: unknown): unknown {
  if (typeof value === 'bigint') return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
  if (Array.isArray(value)) return value.map(toWire);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toWire(v)]));
  return value;
}

export function encodeStats(stats: CgroupStats): AnyMessage {
  return stats.version === 1
    ? anyOf(V1_METRICS_TYPE_URL, V1_METRICS_TYPE_URL, toWire(stats.metrics))
    : anyOf(V2_METRICS_TYPE_URL, V2_METRICS_TYPE_URL, toWire(stats.metrics));
}

/** The same as core's AnyValue (what Task.stats and TaskMonitor.stats return). */
export function statsAnyValue(stats: CgroupStats): AnyValue {
  const any = encodeStats(stats);
  return { typeUrl: any.type_url, value: Buffer.from(any.value) };
}
