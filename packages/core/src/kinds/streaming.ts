import type { AnyValue } from './events.js';

/**
 * One open stream of Any messages between berthd and a client (containerd 2's streaming.Stream): a client opens it
 * with Streaming.Stream and names it; another call (Transfer) then sends progress on it or asks it for credentials.
 */
export interface Stream {
  /** Resolves once the message is handed to the transport; rejects with UnavailableError when the stream is gone. */
  send(message: AnyValue): Promise<void>;
  /** The client's next message; undefined once the client has half-closed or gone. One reader at a time. */
  recv(options?: { readonly signal?: AbortSignal }): Promise<AnyValue | undefined>;
  /** Ends the stream: what was sent is still delivered, then the client sees the end. Idempotent. */
  close(): void;
}

/** The open streams by namespace and id (containerd 2's io.containerd.streaming.v1 manager). */
export interface StreamManager {
  /**
   * Makes `stream` findable as (namespace, id) until the returned function is called. AlreadyExistsError when
   * the id is taken in that namespace.
   */
  register(namespace: string, id: string, stream: Stream): () => void;
  /** NotFoundError when no stream of that id is open in the namespace. */
  get(namespace: string, id: string): Stream;
}
