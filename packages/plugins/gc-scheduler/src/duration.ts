/**
 * Go duration strings (`time.ParseDuration` / `Duration.String`), the format of containerd's `*_delay` keys:
 * a sequence of decimal numbers with units `ns`, `us` (`µs`), `ms`, `s`, `m`, `h` (`1m30s`, `1.5s`, `100ms`),
 * optionally signed; a bare `0` needs no unit. Values are milliseconds here, fractions allowed.
 */
import { InvalidArgumentError } from '@berth/core';

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3, // U+00B5 micro sign
  'μs': 1e-3, // U+03BC Greek mu
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** The pattern of a valid duration, for JSON Schemas. */
export const DURATION_PATTERN = '^[-+]?(0|((\\d+(\\.\\d*)?|\\.\\d+)(ns|us|µs|μs|ms|s|m|h))+)$';

/** Parses a Go duration string into milliseconds; InvalidArgumentError with Go's messages otherwise. */
export function parseDuration(text: string): number {
  const quoted = JSON.stringify(text);
  let rest = text;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    sign = rest.startsWith('-') ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') throw new InvalidArgumentError(`time: invalid duration ${quoted}`);
  let total = 0;
  while (rest !== '') {
    const number = /^(\d*)(?:\.(\d*))?/.exec(rest)!;
    const [matched, whole = '', fraction] = number;
    if (whole === '' && !fraction) throw new InvalidArgumentError(`time: invalid duration ${quoted}`);
    rest = rest.slice(matched.length);
    const unit = /^[^\d.]*/.exec(rest)![0];
    if (unit === '') throw new InvalidArgumentError(`time: missing unit in duration ${quoted}`);
    const scale = UNIT_MS[unit];
    if (scale === undefined) throw new InvalidArgumentError(`time: unknown unit ${JSON.stringify(unit)} in duration ${quoted}`);
    rest = rest.slice(unit.length);
    total += Number(`${whole || '0'}.${fraction || '0'}`) * scale;
  }
  return sign * total;
}

function withFraction(value: number, digits: number): string {
  const scale = 10 ** digits;
  const whole = Math.floor(value / scale);
  const fraction = String(value % scale).padStart(digits, '0').replace(/0+$/, '');
  return fraction ? `${whole}.${fraction}` : String(whole);
}

/** Formats milliseconds the way Go prints a time.Duration: `0s`, `100ms`, `1.5s`, `1m30s`, `2h0m0s`. */
export function formatDuration(ms: number): string {
  let ns = Math.round(Math.abs(ms) * 1e6);
  const sign = ms < 0 && ns > 0 ? '-' : '';
  if (ns === 0) return '0s';
  if (ns < 1e3) return `${sign}${ns}ns`;
  if (ns < 1e6) return `${sign}${withFraction(ns, 3)}µs`;
  if (ns < 1e9) return `${sign}${withFraction(ns, 6)}ms`;
  const seconds = withFraction(ns % 60e9, 9);
  ns = Math.floor(ns / 60e9); // whole minutes
  if (ns === 0) return `${sign}${seconds}s`;
  const minutes = ns % 60;
  const hours = Math.floor(ns / 60);
  return `${sign}${hours > 0 ? `${hours}h` : ''}${minutes}m${seconds}s`;
}
