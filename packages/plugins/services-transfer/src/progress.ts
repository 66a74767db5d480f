import { packAny, toAnyValue, type containerd } from '@berth/api';
import type { AnyValue, Logger, Stream } from '@berth/core';
import type { LayerState, PullProgress } from '@berth/images';
import { refKeyFor } from '@berth/registry';

/**
 * containerd 2's event words for a blob's state (core/transfer/local/progress.go), so that `ctr` 2.x draws its bars;
 * `unpacking` is berth's own (containerd unpacks after downloading and reports nothing for it).
 */
export const PROGRESS_EVENTS: Readonly<Record<LayerState, string>> = {
  waiting: 'waiting',
  downloading: 'downloading',
  unpacking: 'unpacking',
  done: 'complete',
  exists: 'already exists',
};

/** A pull's progress event as containerd's Progress message: the blob's ingest ref as its name (`layer-sha256:…`). */
export function progressMessage(event: PullProgress): containerd.types.transfer.ProgressInput {
  const { descriptor: d } = event;
  return {
    event: PROGRESS_EVENTS[event.state],
    name: refKeyFor(d.digest, d.mediaType),
    progress: event.offset,
    total: d.size,
    desc: { media_type: d.mediaType, digest: d.digest, size: d.size, annotations: { ...(d.annotations ?? {}) } },
  };
}

/**
 * Sends progress on the client's stream without ever holding the pull up: events queue here, one send is in flight
 * at a time, and a newer event of a blob replaces its older one still waiting (a slow reader sees fewer
 * intermediate byte counts, never a stale final state). A failed send stops progress and is logged; the transfer
 * goes on, as in containerd.
 */
export class ProgressSender {
  private readonly pending = new Map<string, AnyValue>();
  private pump: Promise<void> = Promise.resolve();
  /** Set and cleared inside run(), synchronously with its loop's last check of `pending`. */
  private running = false;
  private failed = false;
  private statusLines = 0;

  constructor(
    private readonly stream: Stream,
    private readonly log: Logger,
  ) {}

  /** A blob's event (coalesced by name). */
  blob(event: PullProgress): void {
    const message = progressMessage(event);
    this.queue(`blob:${message.name}`, message);
  }

  /** A line about the whole transfer (an event without a blob: `Pulling from …`) or a named one (`saved`). */
  status(event: string, name = ''): void {
    this.queue(`status:${this.statusLines++}`, { event, name });
  }

  /** Resolves once everything queued so far was handed to the stream (or sending failed). */
  async flush(): Promise<void> {
    while (this.running) await this.pump;
  }

  private queue(key: string, message: containerd.types.transfer.ProgressInput): void {
    if (this.failed) return;
    this.pending.delete(key);
    this.pending.set(key, toAnyValue(packAny('containerd.types.transfer.Progress', message)));
    if (!this.running) {
      this.running = true;
      this.pump = this.run();
    }
  }

  private async run(): Promise<void> {
    try {
      for (;;) {
        const first = this.pending.entries().next();
        if (first.done) return;
        const [key, message] = first.value;
        this.pending.delete(key);
        await this.stream.send(message);
      }
    } catch (err) {
      this.failed = true;
      this.pending.clear();
      this.log.warn('progress not sent; the transfer goes on without it', { error: err });
    } finally {
      this.running = false;
    }
  }
}
