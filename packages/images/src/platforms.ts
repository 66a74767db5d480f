// containerd's platforms package: normalizing os/architecture/variant, parsing `os[/arch[/variant]]`, matching, and
// the ranking of platforms a host can run (amd64 also runs 386; arm64 runs arm v8..v5; arm v7 runs v6 and v5).
import { hostPlatform, InvalidArgumentError } from '@berth/core';
import type { Platform } from './types.js';

const KNOWN_OS = new Set([
  'aix', 'android', 'darwin', 'dragonfly', 'freebsd', 'hurd', 'illumos', 'ios', 'js', 'linux', 'nacl', 'netbsd', 'openbsd', 'plan9', 'solaris', 'windows', 'zos',
]);
const KNOWN_ARCH = new Set([
  '386', 'amd64', 'amd64p32', 'arm', 'armbe', 'arm64', 'arm64be', 'ppc64', 'ppc64le', 'loong64', 'mips', 'mipsle', 'mips64', 'mips64le',
  'mips64p32', 'mips64p32le', 'ppc', 'riscv', 'riscv64', 's390', 's390x', 'sparc', 'sparc64', 'wasm',
]);
const COMPONENT = /^[A-Za-z0-9_-]+$/;

function normalizeOs(os: string): string {
  if (os === '') return 'linux';
  const lower = os.toLowerCase();
  return lower === 'macos' ? 'darwin' : lower;
}

function normalizeArch(architecture: string, variant: string): { architecture: string; variant: string } {
  let arch = architecture.toLowerCase();
  let v = variant.toLowerCase();
  switch (arch) {
    case 'i386':
      arch = '386';
      v = '';
      break;
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      arch = 'amd64';
      if (v === 'v1') v = '';
      break;
    case 'aarch64':
    case 'arm64':
      arch = 'arm64';
      if (v === '8' || v === 'v8') v = '';
      break;
    case 'armhf':
      arch = 'arm';
      v = 'v7';
      break;
    case 'armel':
      arch = 'arm';
      v = 'v6';
      break;
    case 'arm':
      if (v === '' || v === '7') v = 'v7';
      else if (v === '5' || v === '6' || v === '8') v = `v${v}`;
      break;
  }
  return { architecture: arch, variant: v };
}

function make(os: string, architecture: string, variant: string, rest?: Platform): Platform {
  return {
    os,
    architecture,
    ...(variant !== '' ? { variant } : {}),
    ...(rest?.osVersion ? { osVersion: rest.osVersion } : {}),
    ...(rest?.osFeatures && rest.osFeatures.length > 0 ? { osFeatures: rest.osFeatures } : {}),
  };
}

/** containerd's platforms.Normalize: `x86_64` is amd64, `aarch64` arm64 (v8 is its default, so no variant), arm is v7 unless told. */
export function normalizePlatform(p: Platform): Platform {
  const { architecture, variant } = normalizeArch(p.architecture, p.variant ?? '');
  return make(normalizeOs(p.os), architecture, variant, p);
}

/** The host's platform (GOOS/GOARCH as containerd's platforms.DefaultSpec gives them). */
export function defaultPlatform(): Platform {
  const host = hostPlatform();
  return normalizePlatform({ os: host.os, architecture: host.architecture, ...(host.variant ? { variant: host.variant } : {}) });
}

/**
 * containerd's platforms.Parse: `linux`, `amd64`, `linux/arm64`, `linux/arm/v7`. One component is an OS (the
 * host's architecture then) or an architecture (the host's OS then). Wildcards and other characters are refused.
 */
export function parsePlatform(specifier: string): Platform {
  if (specifier.includes('*')) throw new InvalidArgumentError(`${JSON.stringify(specifier)}: wildcards not yet supported`);
  const parts = specifier.split('/');
  for (const part of parts) {
    if (!COMPONENT.test(part)) {
      throw new InvalidArgumentError(
        `${JSON.stringify(part)} is an invalid component of ${JSON.stringify(specifier)}: platform specifier component must match "${COMPONENT.source}"`,
      );
    }
  }
  const host = defaultPlatform();
  switch (parts.length) {
    case 1: {
      const os = normalizeOs(parts[0]!);
      if (KNOWN_OS.has(os)) return make(os, host.architecture, host.architecture === 'arm' && host.variant !== 'v7' ? (host.variant ?? '') : '');
      const { architecture, variant } = normalizeArch(parts[0]!, '');
      if (KNOWN_ARCH.has(architecture)) return make(host.os, architecture, architecture === 'arm' && variant === 'v7' ? '' : variant);
      throw new InvalidArgumentError(`${JSON.stringify(specifier)}: unknown operating system or architecture`);
    }
    case 2: {
      const { architecture, variant } = normalizeArch(parts[1]!, '');
      return make(normalizeOs(parts[0]!), architecture, architecture === 'arm' && variant === 'v7' ? '' : variant);
    }
    case 3: {
      const { architecture, variant } = normalizeArch(parts[1]!, parts[2]!);
      return make(normalizeOs(parts[0]!), architecture, architecture === 'arm64' && variant === '' ? 'v8' : variant);
    }
    default:
      throw new InvalidArgumentError(`${JSON.stringify(specifier)}: cannot parse platform specifier`);
  }
}

/** containerd's platforms.Format: `os/arch[/variant]`, `unknown` without an OS. */
export function formatPlatform(p: Platform): string {
  if (p.os === '') return 'unknown';
  return [p.os, p.architecture, p.variant].filter((s) => s !== undefined && s !== '').join('/');
}

/** Whether two platforms are the same after normalizing (os, architecture and variant; containerd's matcher). */
export function samePlatform(a: Platform, b: Platform): boolean {
  const x = normalizePlatform(a);
  const y = normalizePlatform(b);
  return x.os === y.os && x.architecture === y.architecture && (x.variant ?? '') === (y.variant ?? '');
}

/** What a platform can run, best first (containerd's platformVector). */
export function platformVector(p: Platform): Platform[] {
  const rest = { ...(p.osVersion ? { osVersion: p.osVersion } : {}), ...(p.osFeatures ? { osFeatures: p.osFeatures } : {}) };
  const vector: Platform[] = [p];
  const version = (v: string | undefined) => (v && /^v?\d+$/.test(v) ? Number(v.replace(/^v/, '')) : NaN);
  switch (p.architecture) {
    case 'amd64': {
      const n = version(p.variant);
      if (n > 1) for (let i = n - 1; i >= 1; i--) vector.push({ os: p.os, architecture: 'amd64', variant: `v${i}`, ...rest });
      vector.push({ os: p.os, architecture: '386', ...rest });
      break;
    }
    case 'arm': {
      const n = version(p.variant);
      if (n > 5) for (let i = n - 1; i >= 5; i--) vector.push({ os: p.os, architecture: 'arm', variant: `v${i}`, ...rest });
      break;
    }
    case 'arm64':
      vector.push(...platformVector({ os: p.os, architecture: 'arm', variant: p.variant || 'v8', ...rest }));
      break;
  }
  return vector;
}

/** A platform matcher that ranks what it matches (containerd's MatchComparer). */
export interface PlatformMatcher {
  match(p: Platform): boolean;
  /** Negative when `a` ranks before `b`, positive when after, 0 when equal: a sort comparator. */
  compare(a: Platform, b: Platform): number;
}

/** containerd's platforms.Ordered: matches any of `platforms`, ranked in their order. */
export function orderedMatcher(platforms: readonly Platform[]): PlatformMatcher {
  const rank = (p: Platform) => {
    const i = platforms.findIndex((q) => samePlatform(q, p));
    return i < 0 ? platforms.length : i;
  };
  return { match: (p) => rank(p) < platforms.length, compare: (a, b) => rank(a) - rank(b) };
}

/** containerd's platforms.Only: the platform and what it can also run (ranked), e.g. the host's default matcher. */
export function onlyPlatform(p: Platform): PlatformMatcher {
  return orderedMatcher(platformVector(normalizePlatform(p)));
}

/** containerd's platforms.Any: matches any of them, all ranked equal before what does not match. */
export function anyPlatform(platforms: readonly Platform[]): PlatformMatcher {
  const m = (p: Platform) => platforms.some((q) => samePlatform(q, p));
  return { match: m, compare: (a, b) => Number(!m(a)) - Number(!m(b)) };
}

/** Every platform matches, none ranks before another (`--all-platforms`). */
export const allPlatforms: PlatformMatcher = { match: () => true, compare: () => 0 };

/** The host's default matcher (containerd's platforms.Default()). */
export function defaultMatcher(): PlatformMatcher {
  return onlyPlatform(defaultPlatform());
}
