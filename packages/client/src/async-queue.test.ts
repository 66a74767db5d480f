import { describe, expect, it } from 'vitest';
import { AsyncQueue } from './async-queue.js';

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of it) out.push(v);
  return out;
}

describe('AsyncQueue', () => {
  it('delivers buffered and later values in order, then ends', async () => {
    const q = new AsyncQueue<number>();
    q.push(1);
    const all = collect(q);
    q.push(2);
    q.push(3);
    q.end();
    q.push(4);
    expect(await all).toEqual([1, 2, 3]);
  });

  it('rejects waiting readers on fail, after buffered values', async () => {
    const q = new AsyncQueue<string>();
    q.push('a');
    q.fail(new Error('input broke'));
    expect(await q.next()).toEqual({ value: 'a', done: false });
    await expect(q.next()).rejects.toThrow('input broke');
    expect(await q.next()).toEqual({ value: undefined, done: true });
  });

  it('return() ends a pending read', async () => {
    const q = new AsyncQueue<string>();
    const pending = q.next();
    await q.return();
    expect(await pending).toEqual({ value: undefined, done: true });
    expect(q.isEnded).toBe(true);
  });
});
