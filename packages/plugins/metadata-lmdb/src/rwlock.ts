/**
 * An async readers-writer lock that prefers writers (as Go's sync.RWMutex): once a writer waits, new readers queue
 * behind it, so garbage collection cannot be starved by a steady stream of mutations. Not reentrant: a holder must
 * never acquire it again (a nested shared acquisition behind a waiting writer would deadlock).
 */
export class RWLock {
  private readers = 0;
  private writer = false;
  private readonly waitingWriters: Array<() => void> = [];
  private waitingReaders: Array<() => void> = [];

  /** Runs `fn` holding the lock shared. */
  async shared<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquireShared();
    try {
      return await fn();
    } finally {
      this.releaseShared();
    }
  }

  /** Runs `fn` holding the lock exclusively. */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquireExclusive();
    try {
      return await fn();
    } finally {
      this.releaseExclusive();
    }
  }

  get state(): { readers: number; writer: boolean; waitingWriters: number; waitingReaders: number } {
    return {
      readers: this.readers,
      writer: this.writer,
      waitingWriters: this.waitingWriters.length,
      waitingReaders: this.waitingReaders.length,
    };
  }

  private acquireShared(): Promise<void> {
    if (!this.writer && this.waitingWriters.length === 0) {
      this.readers++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waitingReaders.push(() => {
      this.readers++;
      resolve();
    }));
  }

  private releaseShared(): void {
    this.readers--;
    if (this.readers === 0) this.wakeWriter();
  }

  private acquireExclusive(): Promise<void> {
    if (!this.writer && this.readers === 0) {
      this.writer = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waitingWriters.push(() => {
      this.writer = true;
      resolve();
    }));
  }

  private releaseExclusive(): void {
    this.writer = false;
    if (this.waitingReaders.length > 0) {
      const readers = this.waitingReaders;
      this.waitingReaders = [];
      for (const wake of readers) wake();
    } else {
      this.wakeWriter();
    }
  }

  private wakeWriter(): void {
    if (this.writer || this.readers > 0) return;
    const next = this.waitingWriters.shift();
    next?.();
  }
}
