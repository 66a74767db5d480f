import { describe, expect, it } from 'vitest';
import { familiarizeReference, normalizeReference, ociReferenceName, refTranslator } from './reference.js';

describe('image references as containerd archive code treats them', () => {
  it('normalizes Docker names', () => {
    expect(normalizeReference('busybox')).toBe('docker.io/library/busybox:latest');
    expect(normalizeReference('me/app:1')).toBe('docker.io/me/app:1');
    expect(normalizeReference('index.docker.io/library/alpine:3')).toBe('docker.io/library/alpine:3');
    expect(normalizeReference('127.0.0.1:5000/test/busybox:latest')).toBe('127.0.0.1:5000/test/busybox:latest');
    expect(normalizeReference('localhost/x')).toBe('localhost/x:latest');
    const d = `sha256:${'a'.repeat(64)}`;
    expect(normalizeReference(`x.test/y:tag@${d}`)).toBe(`x.test/y@${d}`);
    expect(() => normalizeReference('Upper/Case')).toThrow(/normalize image ref/);
    expect(() => normalizeReference('a b')).toThrow();
  });

  it('familiarizes names for manifest.json', () => {
    expect(familiarizeReference('docker.io/library/busybox:latest')).toBe('busybox:latest');
    expect(familiarizeReference('docker.io/me/app')).toBe('me/app:latest');
    expect(familiarizeReference('127.0.0.1:5000/test/busybox:1')).toBe('127.0.0.1:5000/test/busybox:1');
  });

  it('takes the OCI ref name after the repository', () => {
    expect(ociReferenceName('127.0.0.1:5000/test/busybox:latest')).toBe('latest');
    expect(ociReferenceName('docker.io/library/a@sha256:abc')).toBe('@sha256:abc');
    expect(ociReferenceName('x.test/y')).toBe('');
    expect(ociReferenceName('alpine:latest')).toBe('alpine:latest');
  });

  it("applies ctr's --base-name translators", () => {
    expect(refTranslator('foo/bar', false)('latest')).toBe('foo/bar:latest');
    expect(refTranslator('foo/bar', false)('x.test/other:1')).toBe('x.test/other:1');
    expect(refTranslator('foo/bar', true)('x.test/other:1')).toBe('');
    expect(refTranslator('foo/bar', true)('foo/bar:2')).toBe('foo/bar:2');
    expect(refTranslator('foo/bar', true)('foo/barn:2')).toBe('');
  });
});
