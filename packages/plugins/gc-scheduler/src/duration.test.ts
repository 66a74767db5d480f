import { isInvalidArgument } from '@berth/core';
import { describe, expect, it } from 'vitest';
import { DURATION_PATTERN, formatDuration, parseDuration } from './duration.js';

describe('parseDuration', () => {
  it.each([
    ['0', 0],
    ['-0', 0],
    ['0s', 0],
    ['100ms', 100],
    ['1s', 1000],
    ['1m30s', 90_000],
    ['1h', 3_600_000],
    ['1.5s', 1500],
    ['.5s', 500],
    ['5.s', 5000],
    ['2h45m', 9_900_000],
    ['1us', 0.001],
    ['1µs', 0.001],
    ['1μs', 0.001],
    ['1500ns', 0.0015],
    ['-1.5m', -90_000],
    ['+3ms', 3],
    ['1h1m1s1ms', 3_661_001],
  ])('%s -> %s ms', (text, ms) => {
    expect(parseDuration(text)).toBeCloseTo(ms, 9);
    expect(new RegExp(DURATION_PATTERN, 'u').test(text)).toBe(true);
  });

  it.each([
    ['', 'time: invalid duration ""'],
    ['-', 'time: invalid duration "-"'],
    ['s', 'time: invalid duration "s"'],
    ['.s', 'time: invalid duration ".s"'],
    ['1', 'time: missing unit in duration "1"'],
    ['1s2', 'time: missing unit in duration "1s2"'],
    ['1d', 'time: unknown unit "d" in duration "1d"'],
    ['1 s', 'time: unknown unit " s" in duration "1 s"'],
    ['1sec', 'time: unknown unit "sec" in duration "1sec"'],
  ])('rejects %j', (text, message) => {
    let caught: unknown;
    try {
      parseDuration(text);
    } catch (err) {
      caught = err;
    }
    expect(isInvalidArgument(caught)).toBe(true);
    expect((caught as Error).message).toBe(message);
    expect(new RegExp(DURATION_PATTERN, 'u').test(text)).toBe(false);
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [100, '100ms'],
    [1.5, '1.5ms'],
    [0.001, '1µs'],
    [0.0000005, '1ns'],
    [1000, '1s'],
    [1500, '1.5s'],
    [90_000, '1m30s'],
    [60_000, '1m0s'],
    [3_600_000, '1h0m0s'],
    [3_661_001, '1h1m1.001s'],
    [-2000, '-2s'],
  ])('%s ms -> %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('round-trips', () => {
    for (const text of ['100ms', '1m30s', '2h0m0s', '1.25s', '750µs']) expect(formatDuration(parseDuration(text))).toBe(text);
  });
});
