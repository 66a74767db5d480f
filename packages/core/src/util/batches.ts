// Streamed List responses (content, snapshots, …) carry their items in batches: at most `count` items, as
// containerd sends them, and a message stops growing past roughly `bytes`, so that many large label sets stay far
// below the 16 MiB message limit.

export interface BatchLimits {
  readonly count: number;
  readonly bytes: number;
}

export const LIST_BATCH_LIMITS: BatchLimits = { count: 100, bytes: 1 << 20 };

/** Roughly what a set of labels costs on the wire (key, value and the map entry's framing). */
export function labelsWireSize(labels: Readonly<Record<string, string>>): number {
  let size = 0;
  for (const [key, value] of Object.entries(labels)) size += 8 + key.length + value.length;
  return size;
}

/** `items` mapped by `toWire`, grouped into arrays within `limits`, `sizeOf` estimating each item's bytes. */
export async function* batches<T, W>(
  items: AsyncIterable<T>,
  toWire: (item: T) => W,
  sizeOf: (item: T) => number,
  limits: BatchLimits = LIST_BATCH_LIMITS,
): AsyncGenerator<W[]> {
  let batch: W[] = [];
  let bytes = 0;
  for await (const item of items) {
    batch.push(toWire(item));
    bytes += sizeOf(item);
    if (batch.length >= limits.count || bytes >= limits.bytes) {
      yield batch;
      batch = [];
      bytes = 0;
    }
  }
  if (batch.length > 0) yield batch;
}
