import { isInvalidArgument } from '@berth/core';
import { describe, expect, it } from 'vitest';
import { pushPlatforms } from './push.js';

describe('berth push platforms', () => {
  it('is the image as it is by default, all with --all-platforms, and the parsed platforms otherwise', () => {
    expect(pushPlatforms({})).toBeUndefined();
    expect(pushPlatforms({ allPlatforms: true })).toBe('all');
    expect(pushPlatforms({ platform: ['linux/arm64', 'linux/amd64'] })).toEqual([
      { os: 'linux', architecture: 'arm64' },
      { os: 'linux', architecture: 'amd64' },
    ]);
  });

  it('refuses --platform with --all-platforms', () => {
    let caught: unknown;
    try {
      pushPlatforms({ allPlatforms: true, platform: ['linux/amd64'] });
    } catch (err) {
      caught = err;
    }
    expect(isInvalidArgument(caught)).toBe(true);
    expect((caught as Error).message).toMatch(/exclude each other/);
  });
});
