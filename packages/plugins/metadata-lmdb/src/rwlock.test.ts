import { describe, expect, it } from 'vitest';
import { RWLock } from './rwlock.js';

const tick = () => new Promise((r) => setTimeout(r, 5));

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

describe('RWLock', () => {
  it('lets readers share and keeps a writer out until they are done', async () => {
    const lock = new RWLock();
    const log: string[] = [];
    const g = gate();
    const r1 = lock.shared(async () => {
      log.push('r1 in');
      await g.wait;
      log.push('r1 out');
    });
    const r2 = lock.shared(async () => {
      log.push('r2 in');
    });
    const w = lock.exclusive(async () => {
      log.push('w');
    });
    await tick();
    expect(log).toEqual(['r1 in', 'r2 in']);
    g.open();
    await Promise.all([r1, r2, w]);
    expect(log).toEqual(['r1 in', 'r2 in', 'r1 out', 'w']);
  });

  it('prefers a waiting writer over new readers, then lets the readers in', async () => {
    const lock = new RWLock();
    const log: string[] = [];
    const g = gate();
    const r1 = lock.shared(() => g.wait.then(() => void log.push('r1')));
    const w = lock.exclusive(async () => {
      log.push('w in');
      await tick();
      log.push('w out');
    });
    const r2 = lock.shared(async () => void log.push('r2'));
    await tick();
    expect(log).toEqual([]); // r2 queued behind the waiting writer
    expect(lock.state).toMatchObject({ readers: 1, waitingWriters: 1, waitingReaders: 1 });
    g.open();
    await Promise.all([r1, w, r2]);
    expect(log).toEqual(['r1', 'w in', 'w out', 'r2']);
    expect(lock.state).toEqual({ readers: 0, writer: false, waitingWriters: 0, waitingReaders: 0 });
  });

  it('runs writers one at a time and releases on errors', async () => {
    const lock = new RWLock();
    let inside = 0;
    let max = 0;
    const work = async () => {
      inside++;
      max = Math.max(max, inside);
      await tick();
      inside--;
    };
    await expect(lock.exclusive(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(lock.shared(async () => Promise.reject(new Error('bang')))).rejects.toThrow('bang');
    await Promise.all([lock.exclusive(work), lock.exclusive(work), lock.exclusive(work)]);
    expect(max).toBe(1);
    expect(lock.state).toEqual({ readers: 0, writer: false, waitingWriters: 0, waitingReaders: 0 });
  });
});
