import { describe, expect, it } from 'vitest';
import { adaptObject } from './adaptor.js';

describe('adaptObject', () => {
  const record = {
    id: 'c1',
    empty: '',
    pid: 42,
    nan: Number.NaN,
    big: 7n,
    terminal: false,
    created: new Date('2024-01-02T03:04:05.678Z'),
    runtime: { name: 'io.containerd.runc.v2', options: { binary: 'runc' } },
    labels: { 'containerd.io/gc.root': 'yes', 'a.b': 'dotted', a: 'plain', empty: '' },
    rootfs: ['x'],
    bytes: new Uint8Array([1]),
    nothing: null,
  };
  const field = adaptObject(record);

  it.each([
    [['id'], 'c1'],
    [['pid'], '42'],
    [['big'], '7'],
    [['terminal'], 'false'],
    [['created'], '2024-01-02T03:04:05.678Z'],
    [['runtime', 'name'], 'io.containerd.runc.v2'],
    [['runtime', 'options', 'binary'], 'runc'],
    [['labels', 'containerd.io/gc.root'], 'yes'],
    [['labels', 'containerd', 'io/gc', 'root'], 'yes'],
    [['labels', 'a', 'b'], 'dotted'],
    [['labels', 'a'], 'plain'],
  ])('%j -> %s', (path, value) => {
    expect(field(path)).toBe(value);
  });

  it.each([[[]], [['missing']], [['empty']], [['nan']], [['runtime']], [['labels']], [['labels', 'empty']], [['rootfs']], [['bytes']], [['nothing']], [['id', 'x']], [['toString']], [['runtime', 'name', 'x']]])(
    '%j is absent',
    (path) => {
      expect(field(path)).toBeUndefined();
    },
  );
});
