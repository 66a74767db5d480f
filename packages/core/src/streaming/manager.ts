import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from '../errdefs/errdefs.js';
import type { Stream, StreamManager } from '../kinds/streaming.js';

/**
 * The open streams, in memory. Unlike containerd 2's manager, which forgets a stream only when the call using it
 * closes it, a stream leaves here as soon as its RPC ends (the Streaming service unregisters it), so a client that
 * opens streams and goes away leaks nothing.
 */
export class LocalStreamManager implements StreamManager {
  private readonly streams = new Map<string, Map<string, Stream>>();

  register(namespace: string, id: string, stream: Stream): () => void {
    if (!id) throw new InvalidArgumentError('stream id is required');
    let byId = this.streams.get(namespace);
    if (!byId) this.streams.set(namespace, (byId = new Map()));
    if (byId.has(id)) throw new AlreadyExistsError(`stream ${id}: already exists`);
    byId.set(id, stream);
    let registered = true;
    return () => {
      if (!registered) return;
      registered = false;
      const current = this.streams.get(namespace);
      if (current?.get(id) !== stream) return;
      current.delete(id);
      if (current.size === 0) this.streams.delete(namespace);
    };
  }

  get(namespace: string, id: string): Stream {
    const stream = this.streams.get(namespace)?.get(id);
    if (!stream) throw new NotFoundError(`stream ${id} in namespace ${namespace}: not found`);
    return stream;
  }

  /** How many streams are open (tests, introspection). */
  get size(): number {
    let n = 0;
    for (const byId of this.streams.values()) n += byId.size;
    return n;
  }
}
