import { open, rename } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { errdefOf, NotFoundError, wireMessageOf } from './errdefs.js';
import { describeSystemError, fromSystemError, isNoSpace, isSystemError } from './system.js';

/** A real system error from Node, so the test follows Node's own wording. */
async function failure(fn: () => Promise<unknown>): Promise<Error> {
  try {
    await fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a failure');
}

/** What Node builds for a failed write through a file handle (no path). */
function enospc(): Error {
  return Object.assign(new Error('ENOSPC: no space left on device, write'), { errno: -28, code: 'ENOSPC', syscall: 'write' });
}

describe('system errors', () => {
  it('words them as Go does', async () => {
    const missing = await failure(() => open('/nonexistent-berth-dir/x'));
    expect(isSystemError(missing)).toBe(true);
    expect(describeSystemError(missing as never)).toBe('open /nonexistent-berth-dir/x: no such file or directory');
    const renamed = await failure(() => rename('/nonexistent-berth-dir/a', '/nonexistent-berth-dir/b'));
    expect(wireMessageOf(renamed)).toBe('rename /nonexistent-berth-dir/a /nonexistent-berth-dir/b: no such file or directory');
    expect(wireMessageOf(enospc())).toBe('write: no space left on device');
  });

  it('wraps them as Unknown, filling in the path, and leaves other errors alone', () => {
    const wrapped = fromSystemError(enospc(), 'write', '/root/ingest/abc/data');
    expect(errdefOf(wrapped)).toBe('unknown');
    expect(wireMessageOf(wrapped)).toBe('write /root/ingest/abc/data: no space left on device');
    expect(isNoSpace(wrapped)).toBe(true);
    const notFound = new NotFoundError('x');
    expect(fromSystemError(notFound)).toBe(notFound);
    expect(isSystemError(new Error('ENOSPC: lookalike'))).toBe(false);
    expect(isNoSpace(new Error('no space'))).toBe(false);
  });
});
