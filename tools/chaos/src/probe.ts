// Measures event-loop stalls of the daemon from outside: a steady stream of cheap Version calls on their own
// channel, one every `intervalMs` whether or not the previous one came back. A call's latency is how long the
// daemon kept it waiting; a call still outstanding counts with the time it has waited so far, so a daemon that never
// answers shows the whole window as its stall.
import { Client, credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { ServiceNames } from '@berth/api';

const VERSION_PATH = `/${ServiceNames.Version}/Version`;
const identity = (b: Buffer): Buffer => b;

export class StallProbe {
  private readonly client: Client;
  private timer: NodeJS.Timeout | undefined;
  private readonly outstanding = new Map<number, number>();
  private nextId = 0;
  private worstMs = 0;
  private calls = 0;
  private failures = 0;

  constructor(address: string, private readonly intervalMs = 20) {
    this.client = new Client(`unix://${address}`, credentials.createInsecure());
  }

  /** Waits for the channel to be ready, then starts the stream of calls. */
  async start(): Promise<this> {
    await new Promise<void>((resolve, reject) => this.client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())));
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    return this;
  }

  private tick(): void {
    const started = performance.now();
    const id = this.nextId++;
    this.outstanding.set(id, started);
    this.calls++;
    // The deadline only bounds the bookkeeping: the stall itself is measured, not cut, by outstanding().
    this.client.makeUnaryRequest(VERSION_PATH, identity, identity, Buffer.alloc(0), new Metadata(), { deadline: Date.now() + 60_000 }, (err: ServiceError | null) => {
      this.outstanding.delete(id);
      if (err && err.code !== status.CANCELLED) this.failures++;
      this.worstMs = Math.max(this.worstMs, performance.now() - started);
    });
  }

  /** Starts a fresh measurement window. */
  reset(): void {
    this.worstMs = 0;
    this.calls = 0;
    this.failures = 0;
  }

  /** The worst latency of the window so far, outstanding calls included. */
  worst(): number {
    const now = performance.now();
    let worst = this.worstMs;
    for (const started of this.outstanding.values()) worst = Math.max(worst, now - started);
    return Math.round(worst);
  }

  get stats(): { calls: number; failures: number; worstMs: number } {
    return { calls: this.calls, failures: this.failures, worstMs: this.worst() };
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.client.close();
  }
}
