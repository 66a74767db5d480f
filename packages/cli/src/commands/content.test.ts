import { describe, expect, it } from 'vitest';
import { isInvalidArgument } from '@berth/core';
import { rechunk } from './content.js';

async function* pieces(...parts: string[]) {
  for (const p of parts) yield Buffer.from(p);
}

async function collect(source: AsyncIterable<Buffer>): Promise<string[]> {
  const out: string[] = [];
  for await (const b of source) out.push(b.toString());
  return out;
}

describe('rechunk', () => {
  it('cuts the stream into fixed-size chunks with a short tail', async () => {
    expect(await collect(rechunk(pieces('ab', 'cdefg', '', 'h'), 3))).toEqual(['abc', 'def', 'gh']);
    expect(await collect(rechunk(pieces('abcdef'), 3))).toEqual(['abc', 'def']);
    expect(await collect(rechunk(pieces(), 3))).toEqual([]);
  });

  it('drops the bytes before a resume offset', async () => {
    expect(await collect(rechunk(pieces('ab', 'cdefg'), 2, 3))).toEqual(['de', 'fg']);
  });

  it('fails when the input is shorter than the resume offset', async () => {
    const err = await collect(rechunk(pieces('ab'), 2, 5)).catch((e: unknown) => e);
    expect(isInvalidArgument(err)).toBe(true);
  });
});
