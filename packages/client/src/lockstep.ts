import { UnavailableError } from '@berth/core';
import { AsyncQueue } from './async-queue.js';

/**
 * One request, one response, in turn, over a bidirectional method (how containerd's clients drive Content.Write):
 * `const w = new Lockstep((reqs) => client.content.Write(reqs, opts)); await w.send({ action: 'STAT', ref })`.
 */
export class Lockstep<Req, Res> {
  private readonly requests = new AsyncQueue<Req>();
  private readonly responses: AsyncIterator<Res>;

  constructor(open: (requests: AsyncIterable<Req>) => AsyncIterable<Res>) {
    this.responses = open(this.requests)[Symbol.asyncIterator]();
  }

  /** Sends a request and waits for its response; a call failure rejects with the mapped errdef. */
  async send(request: Req): Promise<Res> {
    this.requests.push(request);
    const next = await this.responses.next();
    if (next.done) throw new UnavailableError('stream closed before responding');
    return next.value;
  }

  /** Half-closes the request side and waits for the server to end the call (its error, if any, rejects). */
  async close(): Promise<void> {
    this.requests.end();
    for (;;) {
      const next = await this.responses.next();
      if (next.done) return;
    }
  }

  /** Abandons the call (cancelling it if still open). */
  async cancel(): Promise<void> {
    this.requests.end();
    await this.responses.return?.();
  }
}
