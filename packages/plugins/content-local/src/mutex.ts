/** A promise-chained mutex: `run` executes its callbacks one after another, in call order. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/** One mutex per key, dropped when no caller holds or waits for it. */
export class KeyedMutex {
  private readonly entries = new Map<string, { mutex: Mutex; users: number }>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { mutex: new Mutex(), users: 0 };
      this.entries.set(key, entry);
    }
    entry.users++;
    try {
      return await entry.mutex.run(fn);
    } finally {
      if (--entry.users === 0) this.entries.delete(key);
    }
  }
}

/** Non-blocking exclusive locks on ingest refs (containerd's tryLock/unlock, scoped to one store). */
export class RefLocks {
  private readonly held = new Map<string, Date>();

  /** Takes the lock or returns false when someone holds it. */
  tryLock(ref: string): boolean {
    if (this.held.has(ref)) return false;
    this.held.set(ref, new Date());
    return true;
  }

  /** When the current holder took the lock (undefined when free). */
  lockedSince(ref: string): Date | undefined {
    return this.held.get(ref);
  }

  unlock(ref: string): void {
    this.held.delete(ref);
  }
}
