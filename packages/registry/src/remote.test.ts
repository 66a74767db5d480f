import { describe, expect, it } from 'vitest';
import { isInvalidArgument } from '@berth/core';
import { addDistributionSource, distributionSourceKey, parseRemoteRef, refKeyFor } from './remote.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;

function invalid(text: string): string {
  try {
    parseRemoteRef(text);
  } catch (err) {
    expect(isInvalidArgument(err), String(err)).toBe(true);
    return (err as Error).message;
  }
  throw new Error(`${text} was accepted`);
}

describe('parseRemoteRef', () => {
  it('splits host (before the first /), repository, tag and digest', () => {
    expect(parseRemoteRef('127.0.0.1:5000/library/busybox')).toEqual({ host: '127.0.0.1:5000', hostname: '127.0.0.1', repository: 'library/busybox' });
    expect(parseRemoteRef('registry.example/app:1.0')).toEqual({ host: 'registry.example', hostname: 'registry.example', repository: 'app', tag: '1.0' });
    expect(parseRemoteRef(`localhost:5000/a/b/c:v1@${DIGEST}`)).toEqual({
      host: 'localhost:5000',
      hostname: 'localhost',
      repository: 'a/b/c',
      tag: 'v1',
      digest: DIGEST,
    });
    expect(parseRemoteRef(`[::1]:5000/test/repo@${DIGEST}`)).toEqual({ host: '[::1]:5000', hostname: '::1', repository: 'test/repo', digest: DIGEST });
  });

  it('does not take a port for a tag', () => {
    const ref = parseRemoteRef('host:5000/repo');
    expect(ref.tag).toBeUndefined();
    expect(ref.repository).toBe('repo');
  });

  it('accepts the separators of the distribution grammar', () => {
    expect(parseRemoteRef('h/a.b_c__d---e/f-g').repository).toBe('a.b_c__d---e/f-g');
  });

  it('refuses what is not host/repository', () => {
    expect(invalid('busybox')).toMatch(/expected <host>\/<repository>/);
    expect(invalid('/repo')).toMatch(/bad registry host ""/);
    expect(invalid('http://host/repo')).toMatch(/bad registry host "http:"/);
    expect(invalid('host:99999/repo')).toMatch(/bad port/);
    expect(invalid('host/Upper')).toMatch(/bad repository "Upper"/);
    expect(invalid('host/a//b')).toMatch(/bad repository/);
    expect(invalid('host/a-')).toMatch(/bad repository/);
    expect(invalid('host/')).toMatch(/bad repository ""/);
    expect(invalid('host/repo:')).toMatch(/bad tag ""/);
    expect(invalid('host/repo:-x')).toMatch(/bad tag/);
    expect(invalid('host/repo@sha256:abc')).toMatch(/bad digest/);
    expect(invalid(`host/${'a'.repeat(260)}`)).toMatch(/longer than 255/);
  });
});

describe('refKeyFor', () => {
  it('names ingests like a pull does', () => {
    expect(refKeyFor(DIGEST)).toBe(`fetch-blob-${DIGEST}`);
    expect(refKeyFor(DIGEST, 'application/vnd.oci.image.layer.v1.tar+gzip')).toBe(`layer-${DIGEST}`);
    expect(refKeyFor(DIGEST, 'application/vnd.docker.image.rootfs.diff.tar.gzip')).toBe(`layer-${DIGEST}`);
    expect(refKeyFor(DIGEST, 'application/vnd.oci.image.manifest.v1+json')).toBe(`manifest-${DIGEST}`);
    expect(refKeyFor(DIGEST, 'application/vnd.docker.distribution.manifest.list.v2+json')).toBe(`index-${DIGEST}`);
    expect(refKeyFor(DIGEST, 'application/vnd.oci.image.config.v1+json')).toBe(`config-${DIGEST}`);
    expect(refKeyFor(DIGEST, 'text/plain')).toBe(`unknown-${DIGEST}`);
  });
});

describe('distribution source label', () => {
  it('is keyed by the host without its port', () => {
    expect(distributionSourceKey(parseRemoteRef('127.0.0.1:5000/x').hostname)).toBe('containerd.io/distribution.source.127.0.0.1');
  });

  it('keeps a sorted set of repositories', () => {
    expect(addDistributionSource(undefined, 'test/repo')).toBe('test/repo');
    expect(addDistributionSource('', 'b')).toBe('b');
    expect(addDistributionSource('c,a', 'b')).toBe('a,b,c');
    expect(addDistributionSource('a,b', 'a')).toBe('a,b');
  });
});
