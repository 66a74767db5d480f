import { sha256Digest } from '@berth/core';
import { describe, expect, it } from 'vitest';
import { chainIds } from './identity.js';
import { childGcLabel, childrenLabels, childrenOf, parseImageConfig, parseIndex, parseManifest } from './manifests.js';
import { isLayerType, MediaType } from './media-types.js';

const d = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;
const enc = (doc: unknown) => Buffer.from(JSON.stringify(doc));

describe('manifests and indexes', () => {
  const manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: d(1), size: 10 },
    layers: [
      { mediaType: MediaType.OciLayerGzip, digest: d(2), size: 20 },
      { mediaType: MediaType.DockerLayerGzip, digest: d(3), size: 30, annotations: { a: 'b' } },
    ],
  };
  const mdesc = { mediaType: MediaType.OciManifest, digest: sha256Digest(enc(manifest)), size: enc(manifest).length };

  it('gives a manifest config then layers as children, and labels them as containerd does', () => {
    const children = childrenOf(mdesc, enc(manifest));
    expect(children.map((c) => c.digest)).toEqual([d(1), d(2), d(3)]);
    expect(children[2]!.annotations).toEqual({ a: 'b' });
    expect(childrenLabels(children)).toEqual({
      'containerd.io/gc.ref.content.config': d(1),
      'containerd.io/gc.ref.content.l.0': d(2),
      'containerd.io/gc.ref.content.l.1': d(3),
    });
  });

  it('labels an index with m.<i> for manifests and a bare number for anything else', () => {
    const index = {
      schemaVersion: 2,
      manifests: [
        { mediaType: MediaType.OciManifest, digest: d(4), size: 1, platform: { os: 'linux', architecture: 'amd64' } },
        { mediaType: MediaType.DockerManifest, digest: d(5), size: 1, platform: { os: 'linux', architecture: 'arm', variant: 'v7', 'os.features': ['x'] } },
        { mediaType: MediaType.OciIndex, digest: d(6), size: 1 },
        { mediaType: 'application/x-unknown', digest: d(7), size: 1 },
      ],
    };
    const children = childrenOf({ mediaType: MediaType.OciIndex, digest: d(9), size: 1 }, enc(index));
    expect(children[1]!.platform).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7', osFeatures: ['x'] });
    expect(childrenLabels(children)).toEqual({
      'containerd.io/gc.ref.content.m.0': d(4),
      'containerd.io/gc.ref.content.m.1': d(5),
      'containerd.io/gc.ref.content.0': d(6),
      'containerd.io/gc.ref.content.1': d(7),
    });
    // a second config under one parent gets a number (images.SetChildrenMappedLabels)
    expect(childrenLabels([{ mediaType: MediaType.OciConfig, digest: d(1), size: 1 }, { mediaType: MediaType.DockerConfig, digest: d(2), size: 1 }])).toEqual({
      'containerd.io/gc.ref.content.config': d(1),
      'containerd.io/gc.ref.content.config1': d(2),
    });
    expect(childGcLabel({ mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', digest: d(1), size: 1 })).toBe('containerd.io/gc.ref.content.l.');
  });

  it('has no children for layers, configs and unknown types', () => {
    expect(childrenOf({ mediaType: MediaType.OciLayerGzip, digest: d(1), size: 1 }, Buffer.from('not json'))).toEqual([]);
    expect(childrenOf({ mediaType: MediaType.OciConfig, digest: d(1), size: 1 }, Buffer.from('{}'))).toEqual([]);
    expect(isLayerType(MediaType.DockerForeignLayerGzip)).toBe(true);
    expect(isLayerType(MediaType.OciConfig)).toBe(false);
  });

  it('refuses a document that is not what its media type says, bad JSON and bad descriptors', () => {
    const index = { manifests: [{ mediaType: MediaType.OciManifest, digest: d(4), size: 1 }] };
    expect(() => parseManifest(enc(index), mdesc)).toThrow('expected manifest but found index');
    expect(() => parseIndex(enc(manifest), { ...mdesc, mediaType: MediaType.OciIndex })).toThrow('expected index but found manifest');
    expect(() => parseManifest(enc({ fsLayers: [{ blobSum: d(1) }] }), mdesc)).toThrow('schema 1 not supported');
    expect(() => parseManifest(Buffer.from('{"config":'), mdesc)).toThrow(expect.objectContaining({ errdef: 'data-loss' }));
    expect(() => parseManifest(enc({ ...manifest, config: { mediaType: MediaType.OciConfig, digest: 'sha256:xyz', size: 1 } }), mdesc)).toThrow(expect.objectContaining({ errdef: 'invalid-argument' }));
    expect(() => parseManifest(enc({ ...manifest, layers: [{ mediaType: MediaType.OciLayer, digest: d(2), size: -1 }] }), mdesc)).toThrow('size must be');
    expect(() => parseImageConfig(enc({ rootfs: { diff_ids: ['nope'] } }), mdesc)).toThrow(expect.objectContaining({ errdef: 'invalid-argument' }));
  });

  it('computes chain IDs as sha256 of "<parent> <diffID>"', () => {
    expect(chainIds([])).toEqual([]);
    expect(chainIds([d(1)])).toEqual([d(1)]);
    const two = chainIds([d(1), d(2), d(3)]);
    expect(two[1]).toBe(sha256Digest(`${d(1)} ${d(2)}`));
    expect(two[2]).toBe(sha256Digest(`${two[1]} ${d(3)}`));
  });
});
