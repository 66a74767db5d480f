import { describe, expect, it } from 'vitest';
import { parseFilters } from '../filters/filter.js';
import type { SnapshotInfo } from '../kinds/snapshots.js';
import { adaptSnapshot } from './adaptor.js';

const info = (over: Partial<SnapshotInfo>): SnapshotInfo => ({
  kind: 'active',
  name: 'n',
  parent: '',
  labels: {},
  createdAt: new Date(0),
  updatedAt: new Date(0),
  ...over,
});

const matches = (filter: string, i: SnapshotInfo) => parseFilters([filter]).match(adaptSnapshot(i));

describe('adaptSnapshot', () => {
  it('exposes kind, name, parent and labels with dotted keys', () => {
    const i = info({ kind: 'committed', name: 'c', parent: 'p', labels: { 'containerd.io/gc.root': 'x', l: '2' } });
    expect(matches('kind==committed', i)).toBe(true);
    expect(matches('kind==active', i)).toBe(false);
    expect(matches('name==c,parent==p', i)).toBe(true);
    expect(matches('labels."containerd.io/gc.root"==x', i)).toBe(true);
    expect(matches('labels.l', i)).toBe(true);
    expect(matches('labels.m', i)).toBe(false);
    expect(matches('labels', i)).toBe(false);
    expect(matches('created', i)).toBe(false);
  });

  it('keeps an empty parent present, as containerd does', () => {
    expect(matches('parent==""', info({}))).toBe(true);
    expect(matches('parent!=""', info({}))).toBe(false);
    expect(matches('parent!=""', info({ parent: 'p' }))).toBe(true);
  });

  it('does not read inherited properties as labels', () => {
    expect(matches('labels.toString', info({}))).toBe(false);
    expect(matches('labels.__proto__', info({ labels: JSON.parse('{"__proto__":"v"}') as Record<string, string> }))).toBe(true);
  });
});
