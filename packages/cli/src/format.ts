// Human output: aligned tables (like ctr's tabwriter), sizes and ages (like docker's go-units), timestamps.
import type { containerd, google } from '@berth/api';

export interface TableOptions {
  /** Spaces between columns. */
  readonly padding?: number;
}

function width(text: string): number {
  return [...text].length;
}

/** Rows of cells as aligned columns; the first row is usually the header. Lines end without trailing blanks. */
export function formatTable(rows: readonly (readonly string[])[], options: TableOptions = {}): string {
  const padding = options.padding ?? 3;
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, width(cell))));
  const lines = rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - width(cell) + padding)))
      .join('')
      .trimEnd(),
  );
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}

const SIZE_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];

/** Decimal size with 4 significant digits: 512B, 1.234kB, 16.78MB. */
export function humanSize(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < SIZE_UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${Number(value.toPrecision(4))}${SIZE_UNITS[unit]}`;
}

const BINARY_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB', 'YiB'];

/**
 * Binary size with one decimal, as ctr prints snapshot usage (containerd's progress.Bytes: `4.0 KiB`, `0.0 B`).
 * Go's `%.1f` rounds an exact tie to even (1280 B is `1.2 KiB`), where toFixed would round it up.
 */
export function binarySize(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < BINARY_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  let tenths = Math.round(value * 10);
  const tie = Number.isInteger(value * 20) && !Number.isInteger(value * 10);
  if (tie && tenths % 2 === 1) tenths--;
  return `${(tenths / 10).toFixed(1)} ${BINARY_UNITS[unit]}`;
}

/** An age in words: "Less than a second", "5 seconds", "About a minute", "3 hours", "2 weeks"... */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3_600_000);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 14) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 60) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(ms / 3_600_000 / 24 / 365)} years`;
}

/** Go's zero time.Time, which Go clients send for "unset". */
const GO_ZERO_SECONDS = -62135596800;

/** A protobuf Timestamp as a Date; undefined when absent or Go's zero time. */
export function timestampToDate(ts: google.protobuf.Timestamp | null | undefined): Date | undefined {
  if (!ts || ts.seconds <= GO_ZERO_SECONDS) return undefined;
  return new Date(ts.seconds * 1000 + Math.floor(ts.nanos / 1e6));
}

/** RFC 3339 in UTC with the nanoseconds that are set (Go's RFC3339Nano); '' when absent or zero time. */
export function formatTimestamp(ts: google.protobuf.Timestamp | null | undefined): string {
  if (!ts || ts.seconds <= GO_ZERO_SECONDS) return '';
  const base = new Date(ts.seconds * 1000).toISOString().slice(0, 19);
  const nanos = ts.nanos > 0 ? `.${String(ts.nanos).padStart(9, '0').replace(/0+$/, '')}` : '';
  return `${base}${nanos}Z`;
}

/** A Date of a kind interface as formatTimestamp prints it ('' for the epoch, which stands for absent on the wire). */
export function formatDate(date: Date): string {
  if (date.getTime() === 0) return '';
  const ms = date.getTime();
  const seconds = Math.floor(ms / 1000);
  return formatTimestamp({ seconds, nanos: (ms - seconds * 1000) * 1_000_000 });
}

/** RFC 3339 in UTC to the second, as Go's time.RFC3339 writes it. */
export function formatRfc3339(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

/** Labels as sorted `k=v` joined by commas; `empty` when there are none. */
export function formatLabels(labels: Readonly<Record<string, string>> | null | undefined, empty = '-'): string {
  const pairs = Object.entries(labels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .sort();
  return pairs.length > 0 ? pairs.join(',') : empty;
}

/** `os/arch[/variant]` of each platform, deduplicated and sorted, joined by commas; '-' when none. */
export function formatPlatforms(platforms: readonly containerd.types.Platform[]): string {
  const names = new Set(platforms.map((p) => [p.os, p.architecture, p.variant].filter((s) => s !== '').join('/')));
  return names.size > 0 ? [...names].sort().join(',') : '-';
}

/**
 * A decoded protobuf value made fit for JSON: bytes as base64, and (with `timestamps`) `{seconds, nanos}` objects as
 * RFC 3339 strings. Use `timestamps` only where the message holds no Duration, which has the same shape.
 */
export function toJsonValue(value: unknown, options: { timestamps?: boolean } = {}): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  if (Array.isArray(value)) return value.map((v) => toJsonValue(v, options));
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value);
    if (options.timestamps && entries.length === 2 && 'seconds' in value && 'nanos' in value) {
      return formatTimestamp(value as google.protobuf.Timestamp) || null;
    }
    return Object.fromEntries(entries.map(([k, v]) => [k, toJsonValue(v, options)]));
  }
  return value;
}
