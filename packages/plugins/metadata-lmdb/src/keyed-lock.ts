/**
 * Mutual exclusion per name: `run(['a', 'b'], fn)` runs `fn` once no other holder has `a` or `b`, in arrival order
 * per name. Names are taken in sorted order, so two holders of overlapping sets never wait for each other in a
 * cycle. Nothing is kept for a name nobody holds or waits for.
 *
 * The namespaced snapshotter needs it because a commit cannot be one transaction: the backend commit sits between
 * the check of the names and the write of the records (LMDB transaction callbacks are synchronous), and two
 * commits to one name must not both reach the backend.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(names: readonly string[], fn: () => Promise<T>): Promise<T> {
    const releases: Array<() => void> = [];
    try {
      for (const name of [...new Set(names)].sort()) releases.push(await this.acquire(name));
      return await fn();
    } finally {
      for (const release of releases.reverse()) release();
    }
  }

  /** How many names are held or waited for (tests). */
  get size(): number {
    return this.tails.size;
  }

  private async acquire(name: string): Promise<() => void> {
    const previous = this.tails.get(name) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.tails.set(name, tail);
    await previous;
    return () => {
      release();
      if (this.tails.get(name) === tail) this.tails.delete(name);
    };
  }
}
