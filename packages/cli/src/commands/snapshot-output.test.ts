import { describe, expect, it } from 'vitest';
import type { SnapshotInfo, SnapshotKind } from '@berth/core';
import { formatTree, goMountsJson, kindName, mountCommands, snapshotJson, snapshotTree } from './snapshot-output.js';

const at = new Date(Date.UTC(2026, 11, 1, 12, 0, 0, 250));
function info(name: string, parent: string, kind: SnapshotKind = 'committed'): SnapshotInfo {
  return { name, parent, kind, labels: {}, createdAt: at, updatedAt: at };
}

describe('snapshot output', () => {
  it('names kinds as ctr does', () => {
    expect(['active', 'view', 'committed'].map((k) => kindName(k as SnapshotKind))).toEqual(['Active', 'View', 'Committed']);
  });

  it('prints JSON with RFC 3339 dates, empty for the epoch (absent)', () => {
    expect(snapshotJson({ ...info('c1', '', 'committed'), labels: { a: 'b' } })).toEqual({
      name: 'c1',
      parent: '',
      kind: 'committed',
      labels: { a: 'b' },
      created_at: '2026-12-01T12:00:00.25Z',
      updated_at: '2026-12-01T12:00:00.25Z',
    });
    expect(snapshotJson({ ...info('x', ''), createdAt: new Date(0) }).created_at).toBe('');
  });

  it('prints one mount command per mount, and the mounts in ctr\'s JSON', () => {
    const mounts = [
      { type: 'overlay', source: 'overlay', options: ['workdir=/w', 'upperdir=/u', 'lowerdir=/l'] },
      { type: 'bind', source: '/src', options: [] },
    ];
    expect(mountCommands('/mnt/x', mounts)).toBe(
      'mount -t overlay overlay /mnt/x -o workdir=/w,upperdir=/u,lowerdir=/l\nmount -t bind /src /mnt/x -o \n',
    );
    expect(JSON.parse(goMountsJson(mounts))).toEqual([
      { Type: 'overlay', Source: 'overlay', Options: ['workdir=/w', 'upperdir=/u', 'lowerdir=/l'] },
      { Type: 'bind', Source: '/src', Options: [] },
    ]);
    expect(goMountsJson(mounts)).toContain('\n    {\n        "Type": "overlay",');
  });

  it('builds the tree in listing order and prints it as ctr does', () => {
    const roots = snapshotTree([info('c1', ''), info('k2', 'c1', 'active'), info('c2', 'c1'), info('v1', 'c2', 'view'), info('other', '')]);
    expect(formatTree(roots)).toBe([' c1', '  \\_ k2', '  \\_ c2', '    \\_ v1', ' other', ''].join('\n'));
    expect(roots[0]).toEqual({
      name: 'c1',
      kind: 'committed',
      children: [
        { name: 'k2', kind: 'active', children: [] },
        { name: 'c2', kind: 'committed', children: [{ name: 'v1', kind: 'view', children: [] }] },
      ],
    });
  });

  it('shows a parent the listing lacks (a filter left it out) as a root without kind', () => {
    const roots = snapshotTree([info('k2', 'c1', 'active'), info('k3', 'c1', 'active')]);
    expect(roots).toEqual([{ name: 'c1', children: [{ name: 'k2', kind: 'active', children: [] }, { name: 'k3', kind: 'active', children: [] }] }]);
    // A child listed before its parent still ends up under it.
    expect(formatTree(snapshotTree([info('k2', 'c1', 'active'), info('c1', '')]))).toBe(' c1\n  \\_ k2\n');
  });

  it('ends on parent links that form a cycle instead of hanging (nothing in it is a root)', () => {
    expect(snapshotTree([info('a', 'b'), info('b', 'a'), info('r', '')])).toEqual([{ name: 'r', kind: 'committed', children: [] }]);
  });
});
