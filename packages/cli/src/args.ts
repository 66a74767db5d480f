// Parsing of command-line values, with ctr's conventions: `k=v` labels, Go durations, OCI digests.
import { InvalidArgumentError, validateDigest } from '@berth/core';

/**
 * `k=v` arguments into a label map. A bare `k` gets `bareValue` (ctr: "true" for labels of objects, "" for lease
 * labels); `k=` is an empty value, which label updates treat as removal. Later duplicates win.
 */
export function parseLabels(args: readonly string[], bareValue = 'true'): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const arg of args) {
    const eq = arg.indexOf('=');
    const key = eq < 0 ? arg : arg.slice(0, eq);
    if (key === '') throw new InvalidArgumentError(`label ${JSON.stringify(arg)} has an empty key`);
    labels[key] = eq < 0 ? bareValue : arg.slice(eq + 1);
  }
  return labels;
}

/** The update of `labels.<k>` field paths for a label change: values to set (empty ones left out) and paths. */
export function labelUpdate(labels: Readonly<Record<string, string>>): { labels: Record<string, string>; paths: string[] } {
  const set: Record<string, string> = {};
  const paths: string[] = [];
  for (const [k, v] of Object.entries(labels)) {
    paths.push(`labels.${k}`);
    if (v !== '') set[k] = v;
  }
  return { labels: set, paths };
}

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3,
  'μs': 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** A Go duration (`1h30m`, `1.5s`, `300ms`, `-2m`, `0`) in milliseconds. */
export function parseDuration(text: string): number {
  const invalid = () => new InvalidArgumentError(`invalid duration ${JSON.stringify(text)}`);
  let rest = text;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest.startsWith('-')) sign = -1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') throw invalid();
  let total = 0;
  const part = /^(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/;
  while (rest !== '') {
    const match = part.exec(rest);
    if (!match) throw invalid();
    total += Number(match[1]) * (UNIT_MS[match[2] as string] as number);
    rest = rest.slice(match[0].length);
  }
  return sign * total;
}

/** `--timeout`: a Go duration, or a bare number of seconds. Negative values are refused. */
export function parseTimeout(text: string): number {
  const ms = /^\d+(\.\d+)?$/.test(text) ? Number(text) * 1000 : parseDuration(text);
  if (ms < 0) throw new InvalidArgumentError(`invalid timeout ${JSON.stringify(text)}: negative`);
  return ms;
}

/** Checks an OCI digest (go-digest's rules and messages, core's one check) and returns it unchanged. */
export function parseDigest(text: string): string {
  return validateDigest(text);
}

/** A non-negative integer byte count. */
export function parseSize(text: string): number {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) throw new InvalidArgumentError(`invalid size ${JSON.stringify(text)}`);
  return Number(text);
}
