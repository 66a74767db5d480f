// The daemon of a phase: the integration tests' harness (packages/daemon/test/harness.ts: the built berthd as a real
// process on temp dirs, Debian's ctr) plus what attacks need: liveness through ctr, restarts on the same dirs, a
// stall probe, memory readings, and a teardown that SIGKILLs a daemon too stuck to handle SIGTERM.
import { Berthd, type BerthdOptions } from '../../../packages/daemon/test/harness.js';
import { memoryOf, type Memory } from './memory.js';
import { StallProbe } from './probe.js';

export { Berthd, CTR, hasCtr, hasRoot, run } from '../../../packages/daemon/test/harness.js';

export class PhaseDaemon {
  private probe: StallProbe | undefined;
  private worstStall = 0;
  private peakMiB = 0;
  readonly firstMemory: Memory | undefined;

  private constructor(
    public daemon: Berthd,
    private readonly options: BerthdOptions,
    private readonly withProbe: boolean,
  ) {
    this.firstMemory = memoryOf(daemon.pid);
  }

  /** Starts berthd (log level warn unless told otherwise) and, unless `probe: false`, a stall probe on it. */
  static async start(options: BerthdOptions & { probe?: boolean } = {}): Promise<PhaseDaemon> {
    const { probe = true, ...rest } = options;
    const opts = { logLevel: 'warn', ...rest };
    const phase = new PhaseDaemon(await Berthd.start(opts), opts, probe);
    if (probe) await phase.startProbe();
    return phase;
  }

  get address(): string {
    return this.daemon.address;
  }

  get ttrpcAddress(): string {
    return `${this.daemon.address}.ttrpc`;
  }

  private async startProbe(): Promise<void> {
    this.probe = await new StallProbe(this.daemon.address).start();
  }

  private collect(): void {
    if (this.probe) this.worstStall = Math.max(this.worstStall, this.probe.worst());
    const m = memoryOf(this.daemon.pid);
    if (m) this.peakMiB = Math.max(this.peakMiB, m.hwmMiB);
  }

  /** The probe's window: worst latency since the last reset (every window also counts towards the phase's worst). */
  get stall(): { reset(): void; worst(): number } {
    return {
      reset: () => {
        this.collect();
        this.probe?.reset();
      },
      worst: () => this.probe?.worst() ?? 0,
    };
  }

  /** The phase's worst stall over every window and daemon so far. */
  worstStallMs(): number {
    this.collect();
    return this.worstStall;
  }

  peakRssMiB(): number {
    this.collect();
    return this.peakMiB;
  }

  memory(): Memory | undefined {
    return memoryOf(this.daemon.pid);
  }

  /** True when `ctr version` succeeds within the time given. */
  async responsive(timeoutMs = 5000): Promise<boolean> {
    if (!this.daemon.alive) return false;
    const r = await this.daemon.ctr(['version'], { timeoutMs });
    return r.code === 0;
  }

  /** SIGKILLs the daemon (by its PID) and waits until it is gone. */
  async kill(): Promise<void> {
    this.collect();
    this.probe?.stop();
    this.probe = undefined;
    await this.daemon.kill('SIGKILL');
  }

  /** Starts the daemon again on the same dirs; resolves with how long it took to accept connections. */
  async revive(): Promise<number> {
    const started = performance.now();
    this.daemon = await Berthd.start({ ...this.options, dir: this.daemon.dir });
    const ms = performance.now() - started;
    if (this.withProbe) await this.startProbe();
    return ms;
  }

  /** SIGKILLs the daemon and starts it again on the same dirs. */
  async restart(): Promise<void> {
    await this.kill();
    await this.revive();
  }

  /** Stops the probe and the daemon (SIGKILL when it is too stuck to answer) and removes its temp dir. */
  async dispose(options: { keepDir?: boolean } = {}): Promise<void> {
    this.collect();
    this.probe?.stop();
    this.probe = undefined;
    if (this.daemon.alive && !(await this.responsive(2000))) await this.daemon.kill('SIGKILL');
    await this.daemon.stop(options);
  }
}
