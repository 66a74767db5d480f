import { describe, expect, it } from 'vitest';
import { hasOption, snapshotMounts, type SnapshotPaths } from './mounts.js';

const paths: SnapshotPaths = { upperPath: (id) => `/r/snapshots/${id}/fs`, workPath: (id) => `/r/snapshots/${id}/work` };
const opts = ['index=off', 'metacopy=off'];

describe('snapshotMounts (containerd overlay.go mounts())', () => {
  it('binds a snapshot without parents: rw when active, ro as a view, without overlay options', () => {
    expect(snapshotMounts('active', 1, [], paths, opts)).toEqual([{ type: 'bind', source: '/r/snapshots/1/fs', options: ['rw', 'rbind'] }]);
    expect(snapshotMounts('view', 1, [], paths, opts)).toEqual([{ type: 'bind', source: '/r/snapshots/1/fs', options: ['ro', 'rbind'] }]);
  });

  it('binds a view of one layer read-only to that layer', () => {
    expect(snapshotMounts('view', 9, [4], paths, opts)).toEqual([{ type: 'bind', source: '/r/snapshots/4/fs', options: ['ro', 'rbind'] }]);
  });

  it('overlays an active snapshot: options, workdir, upperdir, lowerdir nearest first', () => {
    expect(snapshotMounts('active', 7, [5, 3, 1], paths, opts)).toEqual([
      {
        type: 'overlay',
        source: 'overlay',
        options: ['index=off', 'metacopy=off', 'workdir=/r/snapshots/7/work', 'upperdir=/r/snapshots/7/fs', 'lowerdir=/r/snapshots/5/fs:/r/snapshots/3/fs:/r/snapshots/1/fs'],
      },
    ]);
    expect(snapshotMounts('active', 2, [1], paths, [])[0]!.options).toEqual(['workdir=/r/snapshots/2/work', 'upperdir=/r/snapshots/2/fs', 'lowerdir=/r/snapshots/1/fs']);
  });

  it('overlays a view of several layers with lowerdirs only (read-only by construction)', () => {
    expect(snapshotMounts('view', 7, [5, 3], paths, opts)).toEqual([
      { type: 'overlay', source: 'overlay', options: ['index=off', 'metacopy=off', 'lowerdir=/r/snapshots/5/fs:/r/snapshots/3/fs'] },
    ]);
  });

  it('hasOption matches a name alone or with a value', () => {
    expect(hasOption(['index=on'], 'index')).toBe(true);
    expect(hasOption(['userxattr'], 'userxattr')).toBe(true);
    expect(hasOption(['indexes=1'], 'index')).toBe(false);
  });
});
