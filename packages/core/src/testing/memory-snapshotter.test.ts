import { describe, expect, it } from 'vitest';
import { expectFailure } from './helpers.js';
import { createMemorySnapshotter } from './memory-snapshotter.js';

const ctx = { namespace: '' };

describe('memory snapshotter (a stand-in for tests above a raw snapshotter)', () => {
  it('keeps containerd storage rules', async () => {
    const sn = createMemorySnapshotter();
    await sn.prepare(ctx, 'a', '');
    await expectFailure(sn.prepare(ctx, 'a', ''), 'already-exists');
    await expectFailure(sn.prepare(ctx, 'b', 'a'), 'invalid-argument');
    await sn.commit(ctx, 'c', 'a', { labels: { x: 'y' } });
    await expectFailure(sn.mounts(ctx, 'c'), 'failed-precondition');
    await sn.view(ctx, 'v', 'c');
    await expectFailure(sn.commit(ctx, 'n', 'v'), 'failed-precondition');
    await expectFailure(sn.remove(ctx, 'c'), 'failed-precondition');
    const names: string[] = [];
    for await (const info of sn.walk(ctx, ['kind==view'])) names.push(info.name);
    expect(names).toEqual(['v']);
    expect((await sn.stat(ctx, 'c')).labels).toEqual({ x: 'y' });
    sn.fail('stat', new Error('boom'));
    await expect(sn.stat(ctx, 'c')).rejects.toThrow('boom');
    await sn.remove(ctx, 'v');
    await sn.remove(ctx, 'c');
    expect(sn.snapshots.size).toBe(0);
    expect(sn.keysOf('remove')).toEqual(['c', 'v', 'c']);
  });
});
