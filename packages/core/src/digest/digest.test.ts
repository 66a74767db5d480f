import { isInvalidArgument } from '../errdefs/index.js';
import { describe, expect, it } from 'vitest';
import { digestHex, digestProblem, validateDigest } from './digest.js';

const hex = (n: number) => 'ab'.repeat(n / 2);

describe('digestProblem', () => {
  it.each([`sha256:${hex(64)}`, `sha384:${hex(96)}`, `sha512:${hex(128)}`])('accepts %s', (digest) => {
    expect(digestProblem(digest)).toBeUndefined();
  });

  it.each([
    ['', 'invalid checksum digest format'],
    ['sha256', 'invalid checksum digest format'],
    ['sha256:', 'invalid checksum digest format'],
    [`:${hex(64)}`, 'invalid checksum digest format'],
    ['sha256:../../x', 'invalid checksum digest length'],
    [`sha256:${hex(62)}`, 'invalid checksum digest length'],
    [`sha256:${'G'.repeat(64)}`, 'invalid checksum digest format'],
    [`sha256:${hex(62)}/.`, 'invalid checksum digest format'],
    [`md5:${hex(32)}`, 'unsupported digest algorithm'],
    [`../x:${hex(64)}`, 'invalid checksum digest format'],
  ])('refuses %j: %s', (digest, problem) => {
    expect(digestProblem(digest)).toBe(problem);
  });
});

describe('validateDigest and digestHex', () => {
  it('returns a valid digest and throws InvalidArgument naming the value otherwise', () => {
    expect(validateDigest(`sha256:${hex(64)}`)).toBe(`sha256:${hex(64)}`);
    let caught: unknown;
    try {
      validateDigest('sha256:../../x', 'expected digest');
    } catch (err) {
      caught = err;
    }
    expect(isInvalidArgument(caught)).toBe(true);
    expect((caught as Error).message).toBe('expected digest "sha256:../../x" failed validation: invalid checksum digest length');
  });

  it('keeps stores to sha256 and hands them the hex part', () => {
    expect(digestHex(`sha256:${hex(64)}`)).toBe(hex(64));
    expect(() => digestHex(`sha512:${hex(128)}`)).toThrow('unsupported digest algorithm (only sha256 is stored)');
  });
});
