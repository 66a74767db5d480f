import { describe, expect, it } from 'vitest';
import {
  binarySize,
  formatDate,
  formatLabels,
  formatPlatforms,
  formatRfc3339,
  formatTable,
  formatTimestamp,
  humanDuration,
  humanSize,
  timestampToDate,
  toJsonValue,
} from './format.js';

describe('formatTable', () => {
  it('aligns columns to the widest cell plus padding, without trailing blanks', () => {
    const out = formatTable([
      ['NAME', 'LABELS'],
      ['default', ''],
      ['a-much-longer-name', 'k=v'],
    ]);
    expect(out).toBe(['NAME                 LABELS', 'default', 'a-much-longer-name   k=v', ''].join('\n'));
  });

  it('honours padding and counts characters, not bytes', () => {
    expect(formatTable([['é', 'x'], ['ab', 'y']], { padding: 1 })).toBe('é  x\nab y\n');
    expect(formatTable([])).toBe('');
  });
});

describe('binarySize', () => {
  it("prints what ctr's usage prints (values from Go's %02.1f with containerd's units)", () => {
    const go: [number, string][] = [
      [0, '0.0 B'],
      [7, '7.0 B'],
      [1023, '1023.0 B'],
      [1024, '1.0 KiB'],
      [1280, '1.2 KiB'],
      [1331, '1.3 KiB'],
      [1587, '1.5 KiB'],
      [1664, '1.6 KiB'],
      [4096, '4.0 KiB'],
      [1048575, '1024.0 KiB'],
      [1048576, '1.0 MiB'],
      [157286, '153.6 KiB'],
      [2684354560, '2.5 GiB'],
      [3221225472, '3.0 GiB'],
    ];
    expect(go.map(([n]) => [n, binarySize(n)])).toEqual(go);
  });

  it('rounds an exact tie to even, as Go does', () => {
    expect(binarySize(1.25 * 1024)).toBe('1.2 KiB');
    expect(binarySize(1.75 * 1024)).toBe('1.8 KiB');
    expect(binarySize(0.25 * 1024 * 1024)).toBe('256.0 KiB');
  });
});

describe('formatDate', () => {
  it('prints RFC 3339 with milliseconds, and nothing for the epoch', () => {
    expect(formatDate(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 60)))).toBe('2026-01-02T03:04:05.06Z');
    expect(formatDate(new Date(Date.UTC(2026, 0, 2, 3, 4, 5)))).toBe('2026-01-02T03:04:05Z');
    expect(formatDate(new Date(0))).toBe('');
  });
});

describe('humanSize', () => {
  it('uses decimal units and 4 significant digits', () => {
    expect(humanSize(0)).toBe('0B');
    expect(humanSize(512)).toBe('512B');
    expect(humanSize(1234)).toBe('1.234kB');
    expect(humanSize(1_000_000)).toBe('1MB');
    expect(humanSize(16_777_216)).toBe('16.78MB');
    expect(humanSize(999_999)).toBe('1000kB');
  });
});

describe('humanDuration', () => {
  const s = 1000;
  const h = 3600 * s;
  it('reads like docker ages', () => {
    expect(humanDuration(400)).toBe('Less than a second');
    expect(humanDuration(1 * s)).toBe('1 second');
    expect(humanDuration(42 * s)).toBe('42 seconds');
    expect(humanDuration(90 * s)).toBe('About a minute');
    expect(humanDuration(59 * 60 * s)).toBe('59 minutes');
    expect(humanDuration(1.2 * h)).toBe('About an hour');
    expect(humanDuration(47 * h)).toBe('47 hours');
    expect(humanDuration(3 * 24 * h)).toBe('3 days');
    expect(humanDuration(20 * 24 * h)).toBe('2 weeks');
    expect(humanDuration(100 * 24 * h)).toBe('3 months');
    expect(humanDuration(1000 * 24 * h)).toBe('2 years');
  });
});

describe('timestamps', () => {
  it('formats RFC 3339 with the nanoseconds that are set', () => {
    expect(formatTimestamp({ seconds: 1_700_000_000, nanos: 0 })).toBe('2023-11-14T22:13:20Z');
    expect(formatTimestamp({ seconds: 1_700_000_000, nanos: 120_000_000 })).toBe('2023-11-14T22:13:20.12Z');
    expect(formatTimestamp({ seconds: 1_700_000_000, nanos: 5 })).toBe('2023-11-14T22:13:20.000000005Z');
  });

  it('treats null and Go zero time as unset', () => {
    expect(formatTimestamp(null)).toBe('');
    expect(formatTimestamp({ seconds: -62135596800, nanos: 0 })).toBe('');
    expect(timestampToDate({ seconds: -62135596800, nanos: 0 })).toBeUndefined();
    expect(timestampToDate({ seconds: 10, nanos: 500_000_000 })?.getTime()).toBe(10_500);
  });

  it('writes RFC 3339 to the second', () => {
    expect(formatRfc3339(new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678)))).toBe('2024-01-02T03:04:05Z');
  });
});

describe('labels and platforms', () => {
  it('sorts k=v pairs', () => {
    expect(formatLabels({ b: '2', a: '1' })).toBe('a=1,b=2');
    expect(formatLabels({})).toBe('-');
    expect(formatLabels(null, '')).toBe('');
  });

  it('formats, deduplicates and sorts platforms', () => {
    expect(
      formatPlatforms([
        { os: 'linux', architecture: 'arm', variant: 'v7', os_version: '' },
        { os: 'linux', architecture: 'amd64', variant: '', os_version: '' },
        { os: 'linux', architecture: 'amd64', variant: '', os_version: '' },
      ]),
    ).toBe('linux/amd64,linux/arm/v7');
    expect(formatPlatforms([])).toBe('-');
  });
});

describe('toJsonValue', () => {
  it('turns bytes into base64 and, on request, timestamps into RFC 3339', () => {
    const value = { data: Buffer.from('hi'), at: { seconds: 0, nanos: 0 }, list: [{ seconds: 1, nanos: 0, extra: 1 }] };
    expect(toJsonValue(value)).toEqual({ data: 'aGk=', at: { seconds: 0, nanos: 0 }, list: [{ seconds: 1, nanos: 0, extra: 1 }] });
    expect(toJsonValue(value, { timestamps: true })).toEqual({ data: 'aGk=', at: '1970-01-01T00:00:00Z', list: [{ seconds: 1, nanos: 0, extra: 1 }] });
  });
});
