// Integration-test harness: starts the built berthd (its launcher, as installed) as a real process on temp dirs and drives it
// with Debian's real `ctr`. Every daemon started here is stopped and its dirs removed by stop(), and as a last
// resort when the test process exits.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

export const DAEMON_MAIN = fileURLToPath(new URL('../dist/berthd-launch.cjs', import.meta.url));
export const CLI_MAIN = fileURLToPath(new URL('../../cli/dist/berth-launch.cjs', import.meta.url));
export const CTR = '/usr/bin/ctr';

/**
 * berthd config for tests that watch what GC keeps: a collection only when asked for (a sync lease delete) or
 * after a deletion; none at startup and none from writes, so an unrooted blob or snapshot a test just made does
 * not vanish in the middle of it.
 */
export const QUIET_GC = ['[plugins."io.containerd.gc.v1.scheduler"]', 'mutation_threshold = 0', 'startup_delay = "0s"'].join('\n');

/** berthd config with no collection at all while a suite runs (it leaves unreferenced items around on purpose). */
export const NO_GC = [
  '[plugins."io.containerd.gc.v1.scheduler"]',
  'startup_delay = "0s"',
  'schedule_delay = "1h"',
  'mutation_threshold = 1000000',
  'deletion_threshold = 1000000',
].join('\n');

export const hasRoot = (): boolean => process.getuid?.() === 0;
export const hasCtr = (): boolean => existsSync(CTR);

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly stdoutBuffer: Buffer;
}

export interface RunOptions {
  readonly input?: Buffer | string;
  readonly timeoutMs?: number;
  readonly env?: NodeJS.ProcessEnv;
}

/** Runs a command to completion, capturing its output; never throws for a non-zero exit. */
export function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const stdoutBuffer = Buffer.concat(out);
      resolve({ code, signal, stdout: stdoutBuffer.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), stdoutBuffer });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

export interface BerthdOptions {
  /** Extra TOML appended to the generated config (root, state and address are set by the harness). */
  readonly config?: string;
  /** Extra TOML lines for the `[grpc]` table (after the harness's `address`), e.g. `gid = 65534`. */
  readonly grpcConfig?: string;
  /** Reuse a directory (restart tests: one the harness made is still removed by the last stop()); otherwise a fresh temp dir, removed by stop(). */
  readonly dir?: string;
  readonly args?: readonly string[];
  readonly logLevel?: string;
  /** Another daemon to run instead of the built berthd (a distribution's bin/<name>, made by @berth/builder). */
  readonly bin?: string;
}

const running = new Set<ChildProcess>();
/** Temp dirs this harness made: a daemon restarted on one of them (`{ dir }`) still removes it when stopped. */
const createdDirs = new Set<string>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export class Berthd {
  private output = '';
  private exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(
    readonly dir: string,
    readonly address: string,
    readonly configFile: string,
    private readonly ownsDir: boolean,
    readonly child: ChildProcess,
  ) {
    running.add(child);
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        running.delete(child);
        resolve({ code, signal });
      }),
    );
  }

  get root(): string {
    return join(this.dir, 'root');
  }
  get state(): string {
    return join(this.dir, 'state');
  }
  get pid(): number {
    return this.child.pid!;
  }
  get logs(): string {
    return this.output;
  }

  static async start(options: BerthdOptions = {}): Promise<Berthd> {
    const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'berth-it-')));
    if (!options.dir) createdDirs.add(dir);
    const address = join(dir, 'berth.sock');
    const configFile = join(dir, 'config.toml');
    const toml = [`root = "${join(dir, 'root')}"`, `state = "${join(dir, 'state')}"`, options.config ?? '', '[grpc]', `address = "${address}"`, options.grpcConfig ?? ''].join('\n');
    await writeFile(configFile, toml + '\n');
    const child = spawn(process.execPath, [options.bin ?? DAEMON_MAIN, '--config', configFile, '--log-level', options.logLevel ?? 'debug', ...(options.args ?? [])], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const daemon = new Berthd(dir, address, configFile, createdDirs.has(dir), child);
    try {
      await daemon.waitReady();
    } catch (err) {
      await daemon.stop();
      throw err;
    }
    return daemon;
  }

  /** Resolves when the gRPC socket accepts connections; rejects with the daemon's output if it exits first. */
  private async waitReady(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    void this.exited.then(() => (exited = true));
    while (Date.now() < deadline) {
      if (exited) throw new Error(`berthd exited before it was ready:\n${this.output}`);
      if (await accepts(this.address)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`berthd was not ready after ${timeoutMs} ms:\n${this.output}`);
  }

  /** Runs Debian's ctr against this daemon. */
  ctr(args: readonly string[], options: RunOptions & { namespace?: string } = {}): Promise<RunResult> {
    const ns = options.namespace ? ['--namespace', options.namespace] : [];
    return run(CTR, ['--address', this.address, ...ns, ...args], options);
  }

  /** Runs the built berth CLI against this daemon. */
  berth(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    return run(process.execPath, [CLI_MAIN, '--address', this.address, ...args], options);
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Sends a signal and waits for the process to exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.alive) this.child.kill(signal);
    return this.exited;
  }

  /** Graceful stop (SIGTERM, SIGKILL after 10 s), then removes the temp dir unless it was given. */
  async stop(options: { keepDir?: boolean } = {}): Promise<void> {
    if (this.alive) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await this.exited;
      clearTimeout(timer);
    }
    if (this.ownsDir && !options.keepDir) {
      await rm(this.dir, { recursive: true, force: true });
      createdDirs.delete(this.dir);
    }
  }

  waitExit(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.exited;
  }
}

export const startBerthd = (options?: BerthdOptions): Promise<Berthd> => Berthd.start(options);

function accepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    if (!existsSync(path)) return resolve(false);
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Asserts that a command exited 0 (naming `what`, its stderr and stdout otherwise); returns its result. */
export function expectOk(r: RunResult, what = 'command'): RunResult {
  expect(r.code, `${what} failed (${r.code}): ${r.stderr}\n${r.stdout}`).toBe(0);
  return r;
}

/** The rows of a ctr table, as records by header; columns are found from the header (cells may be empty). */
export function ctrTable(stdout: string): Record<string, string>[] {
  const [header, ...lines] = stdout.replace(/\n$/, '').split('\n');
  const names = header!.trim().split(/\s+/);
  const starts = names.map((n) => header!.indexOf(n));
  return lines
    .filter((l) => l.trim() !== '')
    .map((line) => Object.fromEntries(names.map((n, i) => [n, line.slice(starts[i], i + 1 < starts.length ? starts[i + 1] : undefined).trim()])));
}

/** Whether something is mounted at `target` in this process's mount table. */
export function isMounted(target: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[4] === target);
}

/** A running `ctr events`: what it has printed so far, and stop(). */
export interface CtrEvents {
  output(): string;
  stop(): void;
}

/**
 * Starts `ctr events` against `daemon` and returns once it is subscribed (it subscribes asynchronously: namespaces
 * are created as markers until it shows one, for 10 s at the most). Stopped again when that wait fails.
 */
export async function watchCtrEvents(daemon: Berthd): Promise<CtrEvents> {
  const events: ChildProcess = spawn(CTR, ['--address', daemon.address, 'events'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  events.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const stop = (): void => {
    events.kill('SIGTERM');
  };
  try {
    const deadline = Date.now() + 10_000;
    while (!out.includes('/namespaces/create')) {
      if (Date.now() > deadline) throw new Error(`ctr events saw nothing: ${out}`);
      await daemon.ctr(['namespaces', 'create', `events-marker-${Date.now()}`]);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    stop();
    throw err;
  }
  return { output: () => out, stop };
}
