// containerd's runtime v2 shim manager (runtime/v2/manager.go, shim.go, shim_load.go) as a PlatformRuntime:
// bundles, starting shims, Create/Delete with containerd's cleanup order, dead-shim cleanup and restart recovery.
import { readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { fromTimestamp, messageCodec, publishEvent, RpcStatusError, STATUS_TO_ERRDEF, TtrpcClient, toTimestamp, type RpcStatus } from '@berth/api';
import {
  AlreadyExistsError,
  FailedPreconditionError,
  NotFoundError,
  UnknownError,
  errorFromErrdef,
  isDeadlineExceeded,
  isNotFound,
  validateIdentifier,
  type CreateTaskOptions,
  type EventPublisher,
  type Exit,
  type Logger,
  type MetricSample,
  type MetricsRegistry,
  type OpContext,
  type PlatformRuntime,
  type Task,
} from '@berth/core';
import { unmountAll } from '@berth/sys';
import { ADDRESS_FILE, Bundle, LOG_FIFO, RUNTIME_FILE, SHIM_BINARY_FILE } from './bundle.js';
import type { RuntimeRuncConfig } from './config.js';
import { encodeAny, shimOptions, takesRuncOptions } from './runc-options.js';
import { deleteArgs, resolveShimBinary, runShim, socketPathOf, startArgs, type ShimCommand } from './shim-binary.js';
import { ShimLog } from './shim-log.js';
import { ShimTask, type ShimConnection, type TaskHost } from './shim-task.js';

export interface ShimRuntimeOptions {
  /** Bundles: `<state>/<ns>/<id>` (the plugin's state dir). */
  readonly stateDir: string;
  /** Work dirs: `<root>/<ns>/<id>` (the plugin's root dir). */
  readonly rootDir: string;
  readonly grpcAddress: string;
  readonly ttrpcAddress: string;
  /** The runc root for runc shims whose options leave it unset. */
  readonly runcRoot: string;
  readonly config: RuntimeRuncConfig;
  readonly log: Logger;
  readonly events: EventPublisher;
  /** Where the runtime reports its tasks (the plugin's registry on /v1/metrics). */
  readonly metrics?: MetricsRegistry;
  /** `-publish-binary` (unused by the v2 shims). */
  readonly publishBinary?: string;
  /**
   * How old an exit found at recovery must be for the shim's own `/tasks/exit` to count as lost (the shim retries
   * a failed event for about 21 s, then drops it). Default 30 s.
   */
  readonly lostEventAfterMs?: number;
}

const LOST_EVENT_AFTER_MS = 30_000;

const NAMESPACE_KEY = 'containerd-namespace-ttrpc';

/** A shim's status as core's error classes: the message is the shim's, the class from the code. */
function shimStatusError(status: RpcStatus): Error {
  const errdef = STATUS_TO_ERRDEF[status.code] ?? 'unknown';
  const err = errorFromErrdef(errdef, status.message);
  Object.defineProperty(err, 'cause', { value: new RpcStatusError(status), configurable: true });
  return err;
}

export class ShimRuntime implements PlatformRuntime, TaskHost {
  readonly id = 'io.containerd.runtime.v2.task';
  private readonly tasksByKey = new Map<string, ShimTask>();
  /** Keys with a Create or a Delete in progress. */
  private readonly busy = new Set<string>();
  /** Cleanups after dead shims in progress, by key: a Delete waits for them. */
  private readonly cleanups = new Map<string, Promise<void>>();
  private closed = false;

  private constructor(private readonly o: ShimRuntimeOptions) {
    o.metrics?.computed('berth_tasks', 'Tasks the runtime holds, by namespace and state (running: the init process has not exited).', 'gauge', () =>
      this.taskCounts(),
    );
  }

  /** Tasks by namespace and state, counted from the runtime's own map at each scrape. */
  private taskCounts(): MetricSample[] {
    const counts = new Map<string, number>();
    for (const task of this.tasksByKey.values()) {
      const k = `${task.namespace}\0${task.knownExit ? 'exited' : 'running'}`;
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    return [...counts].map(([k, value]) => {
      const [namespace, state] = k.split('\0') as [string, string];
      return { labels: { namespace, state }, value };
    });
  }

  /** Opens the runtime: reconnects to the shims of every bundle found and cleans up after dead ones. */
  static async open(options: ShimRuntimeOptions): Promise<ShimRuntime> {
    const rt = new ShimRuntime(options);
    await rt.recover();
    return rt;
  }

  private key(namespace: string, id: string): string {
    return `${namespace}/${id}`;
  }

  private command(bundle: Bundle, binary: string): ShimCommand {
    return {
      binary,
      namespace: bundle.namespace,
      id: bundle.id,
      grpcAddress: this.o.grpcAddress,
      ttrpcAddress: this.o.ttrpcAddress,
      publishBinary: this.o.publishBinary ?? process.execPath,
      bundle: bundle.path,
      debug: this.o.config.shim_debug,
    };
  }

  private taskLog(bundle: Bundle): Logger {
    return this.o.log.child({ namespace: bundle.namespace, id: bundle.id });
  }

  private async connect(bundle: Bundle, address: string): Promise<TtrpcClient> {
    return TtrpcClient.connect(socketPathOf(address), { statusToError: shimStatusError, metadata: { [NAMESPACE_KEY]: bundle.namespace } });
  }

  private newTask(bundle: Bundle, runtime: string, binary: string, conn: ShimConnection | undefined, init: { pid: number; exit?: Exit }): ShimTask {
    const c = this.o.config;
    return new ShimTask(bundle, runtime, binary, { callMs: c.call_timeout_ms, shutdownMs: c.shutdown_timeout_ms }, this, conn, init);
  }

  // --- PlatformRuntime ---

  async create(ctx: OpContext, containerId: string, options: CreateTaskOptions): Promise<Task> {
    validateIdentifier(ctx.namespace);
    validateIdentifier(containerId);
    const key = this.key(ctx.namespace, containerId);
    if (this.tasksByKey.has(key) || this.busy.has(key)) throw new AlreadyExistsError(`task ${containerId}: already exists`);
    this.busy.add(key);
    try {
      const binary = await resolveShimBinary(options.runtime);
      const runc = takesRuncOptions(options.runtime, binary);
      const shimOpts = shimOptions(options, runc, this.o.runcRoot);
      const bundle = await Bundle.create(this.o.stateDir, this.o.rootDir, ctx.namespace, containerId, options.spec.value);
      let log: ShimLog | undefined;
      let client: TtrpcClient | undefined;
      try {
        log = await ShimLog.open(bundle.file(LOG_FIFO), this.taskLog(bundle));
        const cmd = this.command(bundle, binary);
        const started = await runShim(cmd, startArgs(cmd), encodeAny(shimOpts), this.o.config.call_timeout_ms);
        if (started.code !== 0) {
          const output = `${started.stdout.toString()}${started.stderr.toString()}`.trim();
          throw new UnknownError(`task ${containerId}: shim ${binary} start failed (${started.signal ?? `exit ${started.code}`}): ${output}`);
        }
        const address = started.stdout.toString().trim();
        client = await this.connect(bundle, address);
        const api = client.service('containerd.task.v2.Task');
        const task = this.newTask(bundle, options.runtime, binary, { client, api, log }, { pid: 0 });
        let pid: number;
        try {
          await writeFile(bundle.file(SHIM_BINARY_FILE), binary, { mode: 0o600 });
          const r = await task.call(
            'Create',
            (a, o) =>
              a.Create(
                {
                  id: containerId,
                  bundle: bundle.path,
                  rootfs: options.rootfs.map((m) => ({ type: m.type, source: m.source, target: m.target ?? '', options: [...m.options] })),
                  terminal: options.io.terminal,
                  stdin: options.io.stdin,
                  stdout: options.io.stdout,
                  stderr: options.io.stderr,
                  checkpoint: options.checkpoint ?? '',
                  options: shimOpts ? { type_url: shimOpts.typeUrl, value: Buffer.from(shimOpts.value) } : null,
                },
                o,
              ),
            ctx,
          );
          pid = r.pid;
        } catch (err) {
          log = undefined; // the task owns it now
          client = undefined;
          await this.abandon(task);
          throw err;
        }
        const created = this.newTaskAfterCreate(task, pid);
        this.tasksByKey.set(key, created);
        return created;
      } catch (err) {
        log?.close();
        await client?.close().catch(() => undefined);
        await bundle.delete().catch((e: unknown) => this.o.log.warn('cannot remove the bundle of a failed create', { id: containerId, error: e }));
        throw err;
      }
    } finally {
      this.busy.delete(key);
    }
  }

  private newTaskAfterCreate(task: ShimTask, pid: number): ShimTask {
    task.setInitPid(pid);
    task.watchExit();
    return task;
  }

  /**
   * After a failed Create, containerd's order: shim Delete (NotFound expected), Shutdown, close, then the
   * `delete` subcommand (runc delete --force and the rootfs unmount: the shim leaves a `created` container and a
   * mounted rootfs behind). The caller removes the bundle.
   */
  private async abandon(task: ShimTask): Promise<void> {
    await task.deleteInit().catch(() => undefined);
    await task.shutdown().catch(() => undefined);
    await task.beforeRemoval();
    await this.runDelete(task.bundle, task.shimBinary).catch((err: unknown) =>
      this.o.log.warn('cleaning up after a failed create', { namespace: task.namespace, id: task.id, error: err }),
    );
  }

  async get(ctx: OpContext, containerId: string): Promise<Task> {
    const task = this.tasksByKey.get(this.key(ctx.namespace, containerId));
    if (!task) throw new NotFoundError(`task ${containerId}: not found`);
    return task;
  }

  async tasks(ctx: OpContext, all = false): Promise<Task[]> {
    return [...this.tasksByKey.values()].filter((t) => all || t.namespace === ctx.namespace);
  }

  async delete(ctx: OpContext, containerId: string): Promise<Exit> {
    const key = this.key(ctx.namespace, containerId);
    const task = this.tasksByKey.get(key);
    if (!task) throw new NotFoundError(`task ${containerId}: not found`);
    if (this.busy.has(key)) throw new AlreadyExistsError(`task ${containerId}: a delete is in progress: already exists`);
    this.busy.add(key);
    try {
      await this.cleanups.get(key);
      if (task.tombstone) return await this.deleteTombstone(task);
      // The runc shim refuses with an unclassified error; say what it is (ctr says the same client-side).
      const state = await task.state(ctx).catch(() => undefined);
      if (state && (state.status === 'running' || state.status === 'paused' || state.status === 'pausing')) {
        throw new FailedPreconditionError(`task ${containerId} must be stopped before deletion: ${state.status}: failed precondition`);
      }
      const { exit, error } = await task.deleteInit();
      if (error && !isNotFound(error)) {
        // The shim went under the call: let its cleanup finish, then remove what is left.
        await task.wait(ctx).catch(() => undefined);
        await this.cleanups.get(key);
        if (task.tombstone && this.tasksByKey.get(key) === task) return await this.deleteTombstone(task);
        throw error;
      }
      await task.shutdown();
      await task.beforeRemoval();
      await task.bundle.delete().catch((err: unknown) => this.o.log.error('failed to delete bundle', { namespace: task.namespace, id: task.id, error: err }));
      this.tasksByKey.delete(key);
      if (error) throw error;
      return exit!;
    } finally {
      this.busy.delete(key);
    }
  }

  /** A tombstone's delete: its shim is long gone, so berth publishes the `/tasks/delete` the shim would have. */
  private async deleteTombstone(task: ShimTask): Promise<Exit> {
    const exit = task.knownExit ?? { pid: task.cachedPid, status: 255, exitedAt: new Date() };
    await task.beforeRemoval();
    await task.bundle.delete();
    this.tasksByKey.delete(this.key(task.namespace, task.id));
    await publishEvent(this.o.events, task.namespace, '/tasks/delete', 'containerd.events.TaskDelete', {
      container_id: task.id,
      pid: exit.pid,
      exit_status: exit.status,
      exited_at: toTimestamp(exit.exitedAt),
      id: '',
    }).catch((err: unknown) => this.o.log.warn('cannot publish /tasks/delete', { id: task.id, error: err }));
    return exit;
  }

  // --- dead shims ---

  /** The `delete` subcommand; undefined when there is nothing for it to clean (Create never ran). */
  private async runDelete(bundle: Bundle, binary: string): Promise<Exit | undefined> {
    try {
      if (!(await bundle.exists(RUNTIME_FILE))) return undefined;
      const cmd = this.command(bundle, binary);
      const r = await runShim(cmd, deleteArgs(cmd), undefined, this.o.config.cleanup_timeout_ms);
      const warnings = r.stderr.toString().trim();
      if (r.code !== 0) throw new UnknownError(`shim ${binary} delete of ${bundle.namespace}/${bundle.id} failed (${r.signal ?? `exit ${r.code}`}): ${warnings}`);
      if (warnings) this.o.log.warn('cleanup warnings', { namespace: bundle.namespace, id: bundle.id, output: warnings });
      const resp = messageCodec('containerd.task.v2.DeleteResponse').decode(r.stdout);
      return { pid: resp.pid, status: resp.exit_status, exitedAt: new Date() };
    } finally {
      // Whatever `delete` managed, leave no rootfs mounted.
      await unmountAll(bundle.rootfs).catch((err: unknown) => this.o.log.warn('cannot unmount a dead shim\'s rootfs', { path: bundle.rootfs, error: err }));
    }
  }

  /**
   * containerd's cleanupAfterDeadShim, keeping the task as a tombstone: `delete` subcommand, then the exit is
   * recorded in the bundle (the one the shim reported while alive, else delete's, else 255) and `/tasks/exit` is
   * published unless the shim had already reported that exit itself.
   */
  shimLost(task: ShimTask): Promise<void> {
    if (this.closed) return Promise.resolve();
    const log = this.taskLog(task.bundle);
    log.warn('cleaning up after shim disconnected');
    const key = this.key(task.namespace, task.id);
    const cleanup = (async () => {
      let deleted: Exit | undefined;
      try {
        deleted = await this.runDelete(task.bundle, task.shimBinary);
      } catch (err) {
        log.warn('failed to clean up after shim disconnected', { error: err });
      }
      await this.buryTask(task, deleted);
    })().finally(() => this.cleanups.delete(key));
    this.cleanups.set(key, cleanup);
    return cleanup;
  }

  /**
   * The `delete` subcommand leaves the dead shim's socket in /run/containerd/s (containerd leaves it too, until a
   * later `start` of the same id): remove it, unless something answers on it.
   */
  private async removeDeadSocket(bundle: Bundle): Promise<void> {
    const address = (await bundle.readText(ADDRESS_FILE).catch(() => undefined))?.trim();
    if (!address) return;
    let path: string;
    try {
      path = socketPathOf(address);
    } catch {
      return;
    }
    if (await answers(path)) return;
    await unlink(path).catch(() => undefined);
  }

  private async buryTask(task: ShimTask, deleted: Exit | undefined): Promise<void> {
    const seenLive = task.exitSeenLive;
    const exit = task.knownExit ?? deleted ?? { pid: task.cachedPid, status: 255, exitedAt: new Date() };
    task.bury(exit);
    await task.bundle.saveExit(exit).catch(() => undefined);
    await this.removeDeadSocket(task.bundle);
    // No address: the shim is gone and cleaned up after (recovery then skips `delete`).
    await unlink(task.bundle.file(ADDRESS_FILE)).catch(() => undefined);
    if (!seenLive) await this.publishExit(task, exit);
  }

  private async publishExit(task: ShimTask, exit: Exit): Promise<void> {
    await publishEvent(this.o.events, task.namespace, '/tasks/exit', 'containerd.events.TaskExit', {
      container_id: task.id,
      id: task.id,
      pid: exit.pid,
      exit_status: exit.status,
      exited_at: toTimestamp(exit.exitedAt),
    }).catch((err: unknown) => this.o.log.warn('cannot publish /tasks/exit', { id: task.id, error: err }));
  }

  // --- recovery ---

  private async recover(): Promise<void> {
    for (const ns of await dirNames(this.o.stateDir)) {
      for (const id of await dirNames(join(this.o.stateDir, ns))) {
        try {
          await this.load(Bundle.load(this.o.stateDir, this.o.rootDir, ns, id));
        } catch (err) {
          this.o.log.error('cannot recover task', { namespace: ns, id, error: err });
        }
      }
    }
    // Work dirs of tasks that are gone (a reboot cleared a tmpfs state dir, say).
    for (const ns of await dirNames(this.o.rootDir)) {
      for (const id of await dirNames(join(this.o.rootDir, ns))) {
        if (!this.tasksByKey.has(this.key(ns, id))) await rm(join(this.o.rootDir, ns, id), { recursive: true, force: true }).catch(() => undefined);
      }
    }
  }

  private async load(bundle: Bundle): Promise<void> {
    const log = this.taskLog(bundle);
    const entries = await readdir(bundle.path).catch(() => [] as string[]);
    if (entries.length === 0) {
      await bundle.delete();
      return;
    }
    const recordedBinary = (await bundle.readText(SHIM_BINARY_FILE))?.trim();
    const exit = await bundle.loadExit();
    const address = (await bundle.readText(ADDRESS_FILE))?.trim();
    const created = await bundle.exists(RUNTIME_FILE);
    const binary = recordedBinary || (await resolveShimBinary('io.containerd.runc.v2').catch(() => ''));
    const runtime = runtimeNameOf(binary);
    const key = this.key(bundle.namespace, bundle.id);

    if (!address) {
      if (exit) {
        // A tombstone from an earlier run: its shim was cleaned up after; keep reporting its exit.
        this.tasksByKey.set(key, this.newTask(bundle, runtime, binary, undefined, { pid: exit.pid, exit }));
        log.info('recovered a stopped task whose shim is gone', { exit_status: exit.status });
        return;
      }
      // `start` never finished: no task ever existed.
      if (created && binary) await this.runDelete(bundle, binary).catch(() => undefined);
      await bundle.delete();
      return;
    }

    let client: TtrpcClient | undefined;
    let shimLog: ShimLog | undefined;
    let task: ShimTask | undefined;
    try {
      client = await withDeadline(this.connect(bundle, address), this.o.config.load_timeout_ms, 'connect');
      shimLog = await ShimLog.open(bundle.file(LOG_FIFO), log);
      const api = client.service('containerd.task.v2.Task');
      const timeoutMs = this.o.config.load_timeout_ms;
      task = this.newTask(bundle, runtime, binary, { client, api, log: shimLog }, { pid: exit?.pid ?? 0, ...(exit ? { exit } : {}) });
      const connected = await task.call('Connect', (a, o) => a.Connect({ id: bundle.id }, o), undefined, timeoutMs);
      task.setInitPid(connected.task_pid);
      let state;
      try {
        state = await task.call('State', (a, o) => a.State({ id: bundle.id, exec_id: '' }, o), undefined, timeoutMs);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        // A shim without its task: Create never completed. Clean it up like a failed create.
        log.warn('found a shim without its task; removing it', { error: err });
        await this.abandon(task);
        await bundle.delete();
        return;
      }
      if (state.status === 'STOPPED') {
        const stopped: Exit = { pid: state.pid || connected.task_pid, status: state.exit_status, exitedAt: fromTimestamp(state.exited_at) ?? new Date() };
        task.noteExit(stopped, true);
        // No record: no berthd saw this exit. Old enough, the shim has given its /tasks/exit up (it found no
        // events socket while berthd was down): publish it, so that subscribers learn of it after all.
        if (!exit && Date.now() - stopped.exitedAt.getTime() > (this.o.lostEventAfterMs ?? LOST_EVENT_AFTER_MS)) {
          log.info('publishing the exit the shim could not deliver while berthd was down', { exit_status: stopped.status });
          await this.publishExit(task, stopped);
        }
      }
      task.watchExit();
      this.tasksByKey.set(key, task);
      log.info('reconnected to shim', { status: state.status, pid: state.pid });
    } catch (err) {
      if (task && isDeadlineExceeded(err) && !client?.closed) {
        // Connected, but slow to answer (a loaded host): the shim lives, and cleaning up after it would kill its
        // container (containerd does). Keep it; its calls have their deadlines.
        log.warn('shim is slow to answer; keeping it', { error: err });
        task.watchExit();
        this.tasksByKey.set(key, task);
        return;
      }
      if (task) await task.detach().catch(() => undefined);
      else {
        shimLog?.close();
        await client?.close().catch(() => undefined);
      }
      if (this.tasksByKey.has(key)) return;
      log.warn('shim is gone; cleaning up after it', { error: err });
      let deleted: Exit | undefined;
      try {
        deleted = binary ? await this.runDelete(bundle, binary) : undefined;
      } catch (e) {
        log.warn('failed to clean up after dead shim', { error: e });
      }
      if (!created && !exit) {
        await this.removeDeadSocket(bundle);
        await bundle.delete();
        return;
      }
      const dead = this.newTask(bundle, runtime, binary, undefined, { pid: deleted?.pid ?? exit?.pid ?? 0, ...(exit ? { exit } : {}) });
      this.tasksByKey.set(key, dead);
      await this.buryTask(dead, deleted);
    }
  }

  /** Drops every shim connection without stopping a shim: the containers keep running for the next berthd. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.tasksByKey.values()].map((t) => t.detach().catch(() => undefined)));
    this.tasksByKey.clear();
  }
}

async function dirNames(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name);
  } catch {
    return [];
  }
}

/**
 * The runtime name a recovered task reports: `io.containerd.<name>.<version>` for a `containerd-shim-<name>-<version>`
 * binary (the name it was most likely created with), the binary's path otherwise.
 */
export function runtimeNameOf(binary: string): string {
  const m = /(?:^|\/)containerd-shim-([A-Za-z0-9_]+)-(v[0-9]+)$/.exec(binary);
  return m ? `io.containerd.${m[1]}.${m[2]}` : binary;
}

/** Whether something accepts connections on a unix socket (a live shim). */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ path });
    const done = (alive: boolean) => {
      socket.destroy();
      resolve(alive);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.setTimeout(1000, () => done(false));
  });
}

async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new UnknownError(`${what}: no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
