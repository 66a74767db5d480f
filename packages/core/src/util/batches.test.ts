import { describe, expect, it } from 'vitest';
import { batches, labelsWireSize } from './batches.js';

async function* from<T>(items: readonly T[]): AsyncIterable<T> {
  for (const item of items) yield item;
}

async function collect<T>(it: AsyncIterable<T[]>): Promise<T[][]> {
  const out: T[][] = [];
  for await (const batch of it) out.push(batch);
  return out;
}

describe('batches', () => {
  it('cuts at the count, maps each item, and sends the rest last', async () => {
    const got = await collect(batches(from([1, 2, 3, 4, 5]), (n) => `#${n}`, () => 1, { count: 2, bytes: 1000 }));
    expect(got).toEqual([['#1', '#2'], ['#3', '#4'], ['#5']]);
  });

  it('cuts when the estimated bytes reach the limit, whatever the count', async () => {
    const got = await collect(batches(from([10, 10, 30, 1]), (n) => n, (n) => n, { count: 100, bytes: 20 }));
    expect(got).toEqual([[10, 10], [30], [1]]);
  });

  it('sends nothing for nothing', async () => {
    expect(await collect(batches(from([]), (n) => n, () => 1))).toEqual([]);
  });

  it('estimates labels by their text', () => {
    expect(labelsWireSize({})).toBe(0);
    expect(labelsWireSize({ ab: 'cde' })).toBe(8 + 2 + 3);
  });
});
