import { describe, expect, it } from 'vitest';
import { isInvalidArgument } from '@berth/core';
import { labelUpdate, parseDigest, parseDuration, parseLabels, parseSize, parseTimeout } from './args.js';

const thrown = (fn: () => unknown): unknown => {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
};

describe('parseLabels', () => {
  it('splits at the first = and gives bare keys the default value', () => {
    expect(parseLabels(['a=b', 'url=http://x/?q=1', 'flag', 'gone='])).toEqual({ a: 'b', url: 'http://x/?q=1', flag: 'true', gone: '' });
    expect(parseLabels(['flag'], '')).toEqual({ flag: '' });
    expect(parseLabels(['k=1', 'k=2'])).toEqual({ k: '2' });
  });

  it('refuses an empty key', () => {
    expect(isInvalidArgument(thrown(() => parseLabels(['=v'])))).toBe(true);
  });
});

describe('labelUpdate', () => {
  it('sends a path per key and leaves empty values out of the map (removal)', () => {
    expect(labelUpdate({ a: 'b', c: '' })).toEqual({ labels: { a: 'b' }, paths: ['labels.a', 'labels.c'] });
    expect(labelUpdate({})).toEqual({ labels: {}, paths: [] });
  });
});

describe('parseDuration', () => {
  it('reads Go durations into milliseconds', () => {
    expect(parseDuration('0')).toBe(0);
    expect(parseDuration('24h')).toBe(86_400_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('300ms')).toBe(300);
    expect(parseDuration('-2m')).toBe(-120_000);
    expect(parseDuration('1500us')).toBeCloseTo(1.5);
    expect(parseDuration('2000000ns')).toBeCloseTo(2);
    expect(parseDuration('.5h')).toBe(1_800_000);
  });

  it('refuses what Go refuses', () => {
    for (const bad of ['', '10', '1d', 'h', '1h 2m', '--1s', '1.2.3s']) {
      expect(isInvalidArgument(thrown(() => parseDuration(bad))), bad).toBe(true);
    }
  });
});

describe('parseTimeout', () => {
  it('takes durations and bare seconds', () => {
    expect(parseTimeout('10s')).toBe(10_000);
    expect(parseTimeout('2.5')).toBe(2500);
    expect(parseTimeout('0')).toBe(0);
    expect(isInvalidArgument(thrown(() => parseTimeout('-1s')))).toBe(true);
  });
});

describe('parseDigest', () => {
  const hex = 'a'.repeat(64);
  it('accepts the digests go-digest knows, as ctr does', () => {
    expect(parseDigest(`sha256:${hex}`)).toBe(`sha256:${hex}`);
    expect(parseDigest(`sha512:${'0'.repeat(128)}`)).toBe(`sha512:${'0'.repeat(128)}`);
  });

  it('refuses a well-formed digest of an algorithm go-digest does not register, with its message', () => {
    const err = thrown(() => parseDigest('multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8'));
    expect(isInvalidArgument(err)).toBe(true);
    expect((err as Error).message).toContain('unsupported digest algorithm');
  });

  it('refuses malformed ones', () => {
    for (const bad of [hex, `sha256:${hex.slice(1)}`, `sha256:${'A'.repeat(64)}`, 'sha256:', ':abc', `SHA256:${hex}`]) {
      expect(isInvalidArgument(thrown(() => parseDigest(bad))), bad).toBe(true);
    }
  });
});

describe('parseSize', () => {
  it('takes non-negative integers only', () => {
    expect(parseSize('0')).toBe(0);
    expect(parseSize('1048576')).toBe(1_048_576);
    for (const bad of ['-1', '1.5', '1e3', '', '99999999999999999999']) expect(isInvalidArgument(thrown(() => parseSize(bad))), bad).toBe(true);
  });
});
