import { describe, expect, it } from 'vitest';
import {
  allPlatforms,
  defaultMatcher,
  defaultPlatform,
  formatPlatform,
  normalizePlatform,
  onlyPlatform,
  orderedMatcher,
  parsePlatform,
  platformVector,
  samePlatform,
} from './platforms.js';

describe('platforms (containerd 1.6 platforms package behaviour)', () => {
  it('normalizes architecture names and variants', () => {
    expect(normalizePlatform({ os: 'Linux', architecture: 'x86_64' })).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(normalizePlatform({ os: 'linux', architecture: 'x86-64', variant: 'v1' })).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(normalizePlatform({ os: 'linux', architecture: 'amd64', variant: 'v3' })).toEqual({ os: 'linux', architecture: 'amd64', variant: 'v3' });
    expect(normalizePlatform({ os: 'linux', architecture: 'aarch64' })).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(normalizePlatform({ os: 'linux', architecture: 'arm64', variant: 'v8' })).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(normalizePlatform({ os: 'linux', architecture: 'arm64', variant: '8' })).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(normalizePlatform({ os: 'linux', architecture: 'armhf' })).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(normalizePlatform({ os: 'linux', architecture: 'armel' })).toEqual({ os: 'linux', architecture: 'arm', variant: 'v6' });
    expect(normalizePlatform({ os: 'linux', architecture: 'arm' })).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(normalizePlatform({ os: 'linux', architecture: 'arm', variant: '5' })).toEqual({ os: 'linux', architecture: 'arm', variant: 'v5' });
    expect(normalizePlatform({ os: 'linux', architecture: 'i386', variant: 'x' })).toEqual({ os: 'linux', architecture: '386' });
    expect(normalizePlatform({ os: 'macos', architecture: 'arm64' })).toEqual({ os: 'darwin', architecture: 'arm64' });
  });

  it('parses specifiers of one, two and three parts', () => {
    const host = defaultPlatform();
    expect(parsePlatform('linux/arm64/v8')).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(parsePlatform('linux/arm64')).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(parsePlatform('linux/aarch64')).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(parsePlatform('linux/arm')).toEqual({ os: 'linux', architecture: 'arm' });
    expect(parsePlatform('linux/arm/v6')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v6' });
    expect(parsePlatform('linux/x86_64')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(parsePlatform('linux')).toEqual({ os: 'linux', architecture: host.architecture });
    expect(parsePlatform('arm64')).toEqual({ os: host.os, architecture: 'arm64' });
    expect(parsePlatform('windows/amd64')).toEqual({ os: 'windows', architecture: 'amd64' });
  });

  it('refuses bad specifiers with an InvalidArgument naming them', () => {
    for (const bad of ['linux/*', 'linux/arm/v7/extra', 'linux//arm', 'linux/ar m', 'nosuchthing', '']) {
      expect(() => parsePlatform(bad), bad).toThrow(expect.objectContaining({ errdef: 'invalid-argument' }));
    }
    expect(() => parsePlatform('nosuchthing')).toThrow('unknown operating system or architecture');
  });

  it('formats as os/arch[/variant]', () => {
    expect(formatPlatform({ os: 'linux', architecture: 'arm', variant: 'v7' })).toBe('linux/arm/v7');
    expect(formatPlatform({ os: 'linux', architecture: 'amd64' })).toBe('linux/amd64');
    expect(formatPlatform({ os: '', architecture: 'amd64' })).toBe('unknown');
  });

  it('ranks what a platform can run: amd64 runs 386, arm64 runs arm v8 down to v5', () => {
    expect(platformVector({ os: 'linux', architecture: 'amd64', variant: 'v3' }).map(formatPlatform)).toEqual([
      'linux/amd64/v3', 'linux/amd64/v2', 'linux/amd64/v1', 'linux/386',
    ]);
    expect(platformVector({ os: 'linux', architecture: 'arm64' }).map(formatPlatform)).toEqual([
      'linux/arm64', 'linux/arm/v8', 'linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5',
    ]);
    expect(platformVector({ os: 'linux', architecture: 'arm', variant: 'v7' }).map(formatPlatform)).toEqual(['linux/arm/v7', 'linux/arm/v6', 'linux/arm/v5']);
  });

  it('matches after normalizing and orders the matches best first', () => {
    const m = onlyPlatform({ os: 'linux', architecture: 'arm64' });
    expect(m.match({ os: 'linux', architecture: 'aarch64', variant: 'v8' })).toBe(true);
    expect(m.match({ os: 'linux', architecture: 'arm', variant: 'v7' })).toBe(true);
    expect(m.match({ os: 'linux', architecture: 'amd64' })).toBe(false);
    const entries = [
      { os: 'linux', architecture: 'arm', variant: 'v6' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
      { os: 'linux', architecture: 'arm', variant: 'v7' },
    ];
    expect([...entries].sort((a, b) => m.compare(a, b)).map(formatPlatform)).toEqual(['linux/arm64/v8', 'linux/arm/v7', 'linux/arm/v6']);
    const ordered = orderedMatcher([{ os: 'linux', architecture: 'arm', variant: 'v6' }, { os: 'linux', architecture: 'amd64' }]);
    expect(ordered.compare({ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'armel' })).toBeGreaterThan(0);
    expect(allPlatforms.match({ os: 'plan9', architecture: 'mips' })).toBe(true);
    expect(defaultMatcher().match(defaultPlatform())).toBe(true);
    expect(samePlatform({ os: 'linux', architecture: 'x86_64' }, { os: 'linux', architecture: 'amd64' })).toBe(true);
  });
});
