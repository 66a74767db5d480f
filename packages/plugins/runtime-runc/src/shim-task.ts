// One task: its bundle, the ttrpc connection to its shim (containerd.task.v2.Task), its init process and execs.
// Every call but Wait has a deadline; Wait ends when the process exits or the connection to the shim goes.
// When the shim goes while nobody asked (it crashed, was killed), the runtime cleans up after it and the task
// becomes a "tombstone": no shim, a stopped init whose exit is recorded in the bundle, answered by State and
// Wait until the task is deleted (containerd forgets such tasks at once; berth keeps their exit status).
import { fromTimestamp, type containerd, type Services, type TtrpcClient } from '@berth/api';
import {
  CancelledError,
  DeadlineExceededError,
  FailedPreconditionError,
  NotFoundError,
  UnavailableError,
  isDeadlineExceeded,
  isUnavailable,
  validateIdentifier,
  type AnyValue,
  type ExecOptions,
  type ExecProcess,
  type Exit,
  type OpContext,
  type ProcessInfo,
  type ProcessState,
  type Task,
  type TaskStatus,
} from '@berth/core';
import type { Bundle } from './bundle.js';
import type { ShimLog } from './shim-log.js';

/** The typed client of containerd.task.v2.Task. */
export type ShimApi = Services['containerd.task.v2.Task']['client'];

export interface Deadlines {
  /** Every call but Wait. */
  readonly callMs: number;
  readonly shutdownMs: number;
}

const STATUS: Readonly<Record<containerd.v1.types.Status, TaskStatus>> = {
  UNKNOWN: 'unknown',
  CREATED: 'created',
  RUNNING: 'running',
  STOPPED: 'stopped',
  PAUSED: 'paused',
  PAUSING: 'pausing',
};

function toProcessState(r: containerd.task.v2.StateResponse): ProcessState {
  const exitedAt = fromTimestamp(r.exited_at);
  return {
    status: STATUS[r.status] ?? 'unknown',
    pid: r.pid,
    exitStatus: r.exit_status,
    ...(exitedAt ? { exitedAt } : {}),
    stdin: r.stdin,
    stdout: r.stdout,
    stderr: r.stderr,
    terminal: r.terminal,
  };
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(new CancelledError(`${what}: context canceled`));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new CancelledError(`${what}: context canceled`));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

export interface ShimConnection {
  readonly client: TtrpcClient;
  readonly api: ShimApi;
  readonly log?: ShimLog;
}

/** What the task needs from its runtime. */
export interface TaskHost {
  /** Called once when the connection to a live shim is lost without berthd asking; resolves when cleaned up. */
  shimLost(task: ShimTask): Promise<void>;
}

export class ShimTask implements Task {
  readonly id: string;
  readonly namespace: string;
  private conn: ShimConnection | undefined;
  /** The init process's exit, once known (Wait, State or the recorded one). */
  private exit: Exit | undefined;
  private initPid: number;
  /** The background Wait on the init process (no deadline); undefined when it failed (shim gone). */
  private waiter: Promise<Exit | undefined> | undefined;
  /** Settles after the connection is gone and, if the shim died, the cleanup is done. */
  private disconnected: Promise<void> = Promise.resolve();
  /** Set when berthd itself closes the connection (delete, shutdown of berthd): no cleanup then. */
  private intentional = false;
  /** Whether the exit was learnt from the shim while it lived (it then published /tasks/exit itself). */
  exitSeenLive = false;

  constructor(
    readonly bundle: Bundle,
    /** The runtime name the task was created with (or the shim binary path found on recovery). */
    readonly runtime: string,
    /** The resolved shim binary. */
    readonly shimBinary: string,
    private readonly deadlines: Deadlines,
    private readonly host: TaskHost,
    conn: ShimConnection | undefined,
    init: { pid: number; exit?: Exit },
  ) {
    this.id = bundle.id;
    this.namespace = bundle.namespace;
    this.initPid = init.pid;
    this.exit = init.exit;
    if (conn) this.attach(conn);
  }

  private get label(): string {
    return `task ${this.namespace}/${this.id}`;
  }

  /** True once the shim is gone and cleaned up after: only State, Wait and Delete still work. */
  get tombstone(): boolean {
    return this.conn === undefined;
  }

  get knownExit(): Exit | undefined {
    return this.exit;
  }

  get shimLog(): ShimLog | undefined {
    return this.conn?.log;
  }

  private attach(conn: ShimConnection): void {
    this.conn = conn;
    // Never rejects: nothing may reach the event loop unhandled from a shim going away.
    this.disconnected = conn.client.done
      .then(async () => {
        if (this.intentional) return;
        await this.host.shimLost(this);
      })
      .catch(() => undefined);
  }

  /** Starts the background Wait that records the init exit when it happens (also while nobody waits). */
  watchExit(): void {
    if (!this.conn || this.waiter) return;
    const api = this.conn.api;
    this.waiter = api.Wait({ id: this.id, exec_id: '' }).then(
      (r) => {
        const exit: Exit = { pid: this.initPid, status: r.exit_status, exitedAt: fromTimestamp(r.exited_at) ?? new Date() };
        this.noteExit(exit, true);
        return exit;
      },
      () => undefined,
    );
  }

  /** Records the init exit in the bundle (best effort: the shim keeps it too while it lives). */
  noteExit(exit: Exit, live: boolean): void {
    if (this.exit) return;
    this.exit = exit;
    if (live) this.exitSeenLive = true;
    if (this.removed) return;
    this.saving = this.bundle.saveExit(exit).catch(() => undefined);
  }

  private saving: Promise<void> = Promise.resolve();
  private removed = false;

  /**
   * Before the bundle goes: waits for a record being written and stops writing more, so that no late record
   * lands in a new bundle of the same id.
   */
  async beforeRemoval(): Promise<void> {
    this.removed = true;
    await this.saving;
  }

  /** Drops the connection without stopping the shim (berthd shutting down; the shim keeps the task running). */
  detach(): Promise<void> {
    this.intentional = true;
    const conn = this.conn;
    conn?.log?.close();
    return conn ? conn.client.close() : Promise.resolve();
  }

  /** Makes this task a tombstone after its shim died and was cleaned up. */
  bury(exit: Exit): void {
    this.noteExit(exit, false);
    this.conn?.log?.close();
    this.conn = undefined;
  }

  /** The shim's API for one call, or the reason there is none. */
  private api(what: string): ShimApi {
    if (!this.conn) {
      const exited = this.exit ? ` (exited with status ${this.exit.status})` : '';
      throw new FailedPreconditionError(`${this.label}: ${what}: its shim is gone${exited}; only its state, wait and delete work`);
    }
    return this.conn.api;
  }

  /** A shim call with the call deadline; transport failures become errors naming the task. */
  async call<T>(what: string, fn: (api: ShimApi, opts: { timeoutMs?: number; signal?: AbortSignal }) => Promise<T>, ctx?: OpContext, timeoutMs = this.deadlines.callMs): Promise<T> {
    const api = this.api(what);
    try {
      return await fn(api, { timeoutMs, ...(ctx?.signal ? { signal: ctx.signal } : {}) });
    } catch (err) {
      throw this.transportError(what, err, timeoutMs);
    }
  }

  transportError(what: string, err: unknown, timeoutMs?: number): unknown {
    if (isUnavailable(err)) return new UnavailableError(`${this.label}: shim is not reachable (${what}): ${(err as Error).message}`, { cause: err });
    if (isDeadlineExceeded(err)) {
      return new DeadlineExceededError(`${this.label}: shim did not answer ${what} within ${timeoutMs ?? '?'} ms`, { cause: err });
    }
    return err;
  }

  // --- the init process ---

  async state(ctx: OpContext): Promise<ProcessState> {
    if (!this.conn) return this.tombstoneState();
    const r = await this.call('State', (api, o) => api.State({ id: this.id, exec_id: '' }, o), ctx);
    const state = toProcessState(r);
    if (state.status === 'stopped') this.noteExit({ pid: state.pid || this.initPid, status: state.exitStatus, exitedAt: state.exitedAt ?? new Date() }, true);
    return state;
  }

  private tombstoneState(): ProcessState {
    const exit = this.exit;
    return {
      status: 'stopped',
      pid: exit?.pid ?? this.initPid,
      exitStatus: exit?.status ?? 255,
      ...(exit ? { exitedAt: exit.exitedAt } : {}),
      stdin: '',
      stdout: '',
      stderr: '',
      terminal: false,
    };
  }

  async kill(ctx: OpContext, signal: number, all = false): Promise<void> {
    if (!this.conn) throw new NotFoundError(`${this.label}: process already finished: not found`);
    await this.call('Kill', (api, o) => api.Kill({ id: this.id, exec_id: '', signal, all }, o), ctx);
  }

  async resizePty(ctx: OpContext, size: { readonly width: number; readonly height: number }): Promise<void> {
    await this.call('ResizePty', (api, o) => api.ResizePty({ id: this.id, exec_id: '', width: size.width, height: size.height }, o), ctx);
  }

  async closeIO(ctx: OpContext): Promise<void> {
    await this.call('CloseIO', (api, o) => api.CloseIO({ id: this.id, exec_id: '', stdin: true }, o), ctx);
  }

  async start(ctx: OpContext): Promise<void> {
    const r = await this.call('Start', (api, o) => api.Start({ id: this.id, exec_id: '' }, o), ctx);
    if (r.pid) this.initPid = r.pid;
  }

  async wait(ctx: OpContext): Promise<Exit> {
    if (this.exit) return this.exit;
    const waiter = this.waiter;
    if (waiter) {
      const exit = await abortable(waiter, ctx.signal, `${this.label}: wait`);
      if (exit) return exit;
    }
    // The connection went: if the shim died, the cleanup records the exit.
    await abortable(this.disconnected, ctx.signal, `${this.label}: wait`);
    if (this.exit) return this.exit;
    throw new UnavailableError(`${this.label}: wait: the connection to its shim was closed before the process exited`);
  }

  async pid(ctx: OpContext): Promise<number> {
    if (!this.conn) return this.exit?.pid ?? this.initPid;
    const r = await this.call('Connect', (api, o) => api.Connect({ id: this.id }, o), ctx);
    if (r.task_pid) this.initPid = r.task_pid;
    return r.task_pid;
  }

  setInitPid(pid: number): void {
    if (pid) this.initPid = pid;
  }

  get cachedPid(): number {
    return this.initPid;
  }

  async pause(ctx: OpContext): Promise<void> {
    await this.call('Pause', (api, o) => api.Pause({ id: this.id }, o), ctx);
  }

  async resume(ctx: OpContext): Promise<void> {
    await this.call('Resume', (api, o) => api.Resume({ id: this.id }, o), ctx);
  }

  async exec(ctx: OpContext, execId: string, options: ExecOptions): Promise<ExecProcess> {
    validateIdentifier(execId);
    const io = options.io;
    await this.call(
      'Exec',
      (api, o) =>
        api.Exec(
          {
            id: this.id,
            exec_id: execId,
            terminal: io.terminal,
            stdin: io.stdin,
            stdout: io.stdout,
            stderr: io.stderr,
            spec: { type_url: options.spec.typeUrl, value: Buffer.from(options.spec.value) },
          },
          o,
        ),
      ctx,
    );
    return new ShimExec(this, execId);
  }

  async pids(ctx: OpContext): Promise<ProcessInfo[]> {
    if (!this.conn) return [];
    const r = await this.call('Pids', (api, o) => api.Pids({ id: this.id }, o), ctx);
    return r.processes.map((p) => ({
      pid: p.pid,
      ...(p.info ? { info: { typeUrl: p.info.type_url, value: Buffer.from(p.info.value) } } : {}),
    }));
  }

  async checkpoint(ctx: OpContext, path: string, options?: AnyValue): Promise<void> {
    await this.call(
      'Checkpoint',
      (api, o) => api.Checkpoint({ id: this.id, path, options: options ? { type_url: options.typeUrl, value: Buffer.from(options.value) } : null }, o),
      ctx,
    );
  }

  async update(ctx: OpContext, resources: AnyValue, annotations?: Readonly<Record<string, string>>): Promise<void> {
    await this.call(
      'Update',
      (api, o) => api.Update({ id: this.id, resources: { type_url: resources.typeUrl, value: Buffer.from(resources.value) }, annotations: { ...annotations } }, o),
      ctx,
    );
  }

  async process(ctx: OpContext, execId: string): Promise<ExecProcess> {
    if (!this.conn) throw new NotFoundError(`${this.label}: process ${execId}: not found`);
    const p = new ShimExec(this, execId);
    await p.state(ctx);
    return p;
  }

  async stats(ctx: OpContext): Promise<AnyValue> {
    if (!this.conn) throw new NotFoundError(`${this.label}: stats: its shim is gone: not found`);
    const r = await this.call('Stats', (api, o) => api.Stats({ id: this.id }, o), ctx);
    if (!r.stats) throw new NotFoundError(`${this.label}: the shim returned no stats: not found`);
    return { typeUrl: r.stats.type_url, value: Buffer.from(r.stats.value) };
  }

  // --- teardown (the runtime drives these) ---

  /**
   * Shim Delete of the init process. Undefined with the error when the shim says NotFound or is gone (the caller
   * still shuts it down, as containerd does); any other error is thrown (e.g. the process still runs).
   */
  async deleteInit(): Promise<{ exit?: Exit; error?: unknown }> {
    try {
      const r = await this.call('Delete', (api, o) => api.Delete({ id: this.id, exec_id: '' }, o));
      return { exit: { pid: r.pid, status: r.exit_status, exitedAt: fromTimestamp(r.exited_at) ?? new Date() } };
    } catch (err) {
      if (isUnavailable(err) || (err as { errdef?: string }).errdef === 'not-found') return { error: err };
      throw err;
    }
  }

  /** Shutdown (no-op for a shim that still has tasks), then close the connection: berthd asked, so no cleanup. */
  async shutdown(): Promise<void> {
    this.intentional = true;
    const conn = this.conn;
    if (!conn) return;
    try {
      await conn.api.Shutdown({ id: this.id, now: false }, { timeoutMs: this.deadlines.shutdownMs });
    } catch {
      // ttrpc closes under the call when the shim exits: that is the expected end.
    }
    conn.log?.close();
    await conn.client.close();
    this.conn = undefined;
  }
}

/** An exec'd process of a task. */
export class ShimExec implements ExecProcess {
  constructor(
    private readonly task: ShimTask,
    readonly id: string,
  ) {}

  private get label(): string {
    return `task ${this.task.namespace}/${this.task.id} exec ${this.id}`;
  }

  async state(ctx: OpContext): Promise<ProcessState> {
    const r = await this.task.call(`State(${this.id})`, (api, o) => api.State({ id: this.task.id, exec_id: this.id }, o), ctx);
    return toProcessState(r);
  }

  async kill(ctx: OpContext, signal: number): Promise<void> {
    await this.task.call(`Kill(${this.id})`, (api, o) => api.Kill({ id: this.task.id, exec_id: this.id, signal, all: false }, o), ctx);
  }

  async resizePty(ctx: OpContext, size: { readonly width: number; readonly height: number }): Promise<void> {
    await this.task.call(`ResizePty(${this.id})`, (api, o) => api.ResizePty({ id: this.task.id, exec_id: this.id, width: size.width, height: size.height }, o), ctx);
  }

  async closeIO(ctx: OpContext): Promise<void> {
    await this.task.call(`CloseIO(${this.id})`, (api, o) => api.CloseIO({ id: this.task.id, exec_id: this.id, stdin: true }, o), ctx);
  }

  private pid = 0;

  async start(ctx: OpContext): Promise<void> {
    const r = await this.task.call(`Start(${this.id})`, (api, o) => api.Start({ id: this.task.id, exec_id: this.id }, o), ctx);
    this.pid = r.pid;
  }

  /** No deadline: ends when the process exits, or fails when the shim goes. */
  async wait(ctx: OpContext): Promise<Exit> {
    const r = await this.task.call(`Wait(${this.id})`, (api, o) => api.Wait({ id: this.task.id, exec_id: this.id }, o), ctx, 0);
    return { pid: this.pid, status: r.exit_status, exitedAt: fromTimestamp(r.exited_at) ?? new Date() };
  }

  async delete(ctx: OpContext): Promise<Exit> {
    const r = await this.task.call(`Delete(${this.id})`, (api, o) => api.Delete({ id: this.task.id, exec_id: this.id }, o), ctx);
    return { pid: r.pid, status: r.exit_status, exitedAt: fromTimestamp(r.exited_at) ?? new Date() };
  }

  toString(): string {
    return this.label;
  }
}
