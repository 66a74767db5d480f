/**
 * A push-fed AsyncIterable: the input of a bidirectional call when requests depend on earlier responses (the
 * STAT/WRITE/COMMIT exchange of Content.Write). Values pushed before anyone reads are buffered.
 */
export class AsyncQueue<T> implements AsyncIterableIterator<T> {
  private readonly buffered: T[] = [];
  private readonly waiting: { resolve: (r: IteratorResult<T>) => void; reject: (err: unknown) => void }[] = [];
  private ended = false;
  private failure: { error: unknown } | undefined;

  /** Queues a value; ignored once the queue has ended. */
  push(value: T): void {
    if (this.ended) return;
    const reader = this.waiting.shift();
    if (reader) reader.resolve({ value, done: false });
    else this.buffered.push(value);
  }

  /** Ends the iteration once the buffered values are consumed. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const reader of this.waiting.splice(0)) reader.resolve({ value: undefined, done: true });
  }

  /** Ends the iteration with an error, delivered after the buffered values. */
  fail(error: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.failure = { error };
    for (const reader of this.waiting.splice(0)) reader.reject(error);
  }

  get isEnded(): boolean {
    return this.ended;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.buffered.length > 0) return Promise.resolve({ value: this.buffered.shift() as T, done: false });
    if (this.failure) {
      const { error } = this.failure;
      this.failure = undefined;
      return Promise.reject(error);
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  /** Called when a consumer stops early: drops what is buffered and ends. */
  return(): Promise<IteratorResult<T>> {
    this.buffered.length = 0;
    this.failure = undefined;
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
