// Small in-memory stand-ins for the platform runtime, the containers store and the snapshotters, for the unit tests
// of the Tasks service only (the daemon tests run the real runtime-runc and metadata-lmdb).
import {
  AlreadyExistsError,
  FailedPreconditionError,
  NotFoundError,
  NotImplementedError,
  type AnyValue,
  type Container,
  type ContainerStore,
  type CreateTaskOptions,
  type ExecOptions,
  type ExecProcess,
  type Exit,
  type Mount,
  type OpContext,
  type PlatformRuntime,
  type ProcessInfo,
  type ProcessState,
  type Snapshotter,
  type SnapshotterSet,
  type Task,
  type TaskStatus,
} from '@berth/core';

/** One fake process: it "runs" from start() until kill() or exit(). */
class FakeProcess implements ExecProcess {
  status: TaskStatus = 'created';
  pidNumber = 0;
  exited?: Exit;
  signals: Array<{ signal: number; all: boolean }> = [];
  sizes: Array<{ width: number; height: number }> = [];
  stdinClosed = false;
  private waiters: Array<(exit: Exit) => void> = [];

  constructor(
    readonly id: string,
    readonly io: { stdin: string; stdout: string; stderr: string; terminal: boolean },
    private readonly nextPid: () => number,
    private readonly onDelete: () => void = () => undefined,
  ) {}

  async state(): Promise<ProcessState> {
    return {
      status: this.status,
      pid: this.pidNumber,
      exitStatus: this.exited?.status ?? 0,
      ...(this.exited ? { exitedAt: this.exited.exitedAt } : {}),
      ...this.io,
    };
  }
  async start(): Promise<void> {
    if (this.status !== 'created') throw new FailedPreconditionError(`process ${this.id} is ${this.status}`);
    this.pidNumber = this.nextPid();
    this.status = 'running';
  }
  async kill(_ctx: OpContext, signal: number, all = false): Promise<void> {
    if (this.status === 'stopped') throw new NotFoundError(`process ${this.id} already finished`);
    this.signals.push({ signal, all });
    if (signal === 9) this.exit(128 + 9);
  }
  async resizePty(_ctx: OpContext, size: { readonly width: number; readonly height: number }): Promise<void> {
    this.sizes.push({ ...size });
  }
  async closeIO(): Promise<void> {
    this.stdinClosed = true;
  }
  wait(ctx: OpContext): Promise<Exit> {
    if (this.exited) return Promise.resolve(this.exited);
    return new Promise((resolve, reject) => {
      if (ctx.signal?.aborted) return reject(ctx.signal.reason);
      const onAbort = () => reject(ctx.signal?.reason ?? new Error('aborted'));
      ctx.signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push((exit) => {
        ctx.signal?.removeEventListener('abort', onAbort);
        resolve(exit);
      });
    });
  }
  async delete(): Promise<Exit> {
    if (this.status !== 'stopped' && this.status !== 'created') throw new FailedPreconditionError(`process ${this.id} must be stopped before deletion`);
    this.onDelete();
    return this.exited ?? { pid: this.pidNumber, status: 0, exitedAt: new Date(0) };
  }
  /** The test's hand on the process: it exits with `status`. */
  exit(status: number, at = new Date()): void {
    this.status = 'stopped';
    this.exited = { pid: this.pidNumber, status, exitedAt: at };
    for (const w of this.waiters.splice(0)) w(this.exited);
  }
}

export class FakeTask extends FakeProcess implements Task {
  readonly execs = new Map<string, FakeProcess>();
  private execPids = 5000;
  updates: Array<{ resources: AnyValue; annotations?: Readonly<Record<string, string>> }> = [];
  statsResult: AnyValue | Error = { typeUrl: 'io.containerd.cgroups.v1.Metrics', value: Buffer.from([0x12, 0x02, 0x08, 0x01]) };

  constructor(
    readonly namespace: string,
    id: string,
    readonly runtime: string,
    readonly options: CreateTaskOptions,
    nextPid: () => number,
  ) {
    super(id, options.io, nextPid);
    // containerd's runc shim gives the init process its pid at create.
    this.pidNumber = nextPid();
  }
  override async start(): Promise<void> {
    if (this.status !== 'created') throw new FailedPreconditionError(`task ${this.id} is ${this.status}`);
    this.status = 'running';
  }
  async pid(): Promise<number> {
    return this.pidNumber;
  }
  async pause(): Promise<void> {
    if (this.status !== 'running') throw new FailedPreconditionError(`task ${this.id} is ${this.status}, not running`);
    this.status = 'paused';
  }
  async resume(): Promise<void> {
    if (this.status !== 'paused') throw new FailedPreconditionError(`task ${this.id} is ${this.status}, not paused`);
    this.status = 'running';
  }
  async exec(_ctx: OpContext, execId: string, options: ExecOptions): Promise<ExecProcess> {
    if (this.execs.has(execId)) throw new AlreadyExistsError(`exec process ${execId}`);
    const p = new FakeProcess(execId, options.io, () => this.execPids++, () => this.execs.delete(execId));
    this.execs.set(execId, p);
    return p;
  }
  async pids(): Promise<ProcessInfo[]> {
    const execs = [...this.execs.values()].filter((p) => p.pidNumber > 0);
    return [{ pid: this.pidNumber }, ...execs.map((p) => ({ pid: p.pidNumber, info: { typeUrl: 'containerd.runc.v1.ProcessDetails', value: Buffer.from(`\n${String.fromCharCode(p.id.length)}${p.id}`) } }))];
  }
  async checkpoint(): Promise<void> {
    throw new NotImplementedError('no CRIU');
  }
  async update(_ctx: OpContext, resources: AnyValue, annotations?: Readonly<Record<string, string>>): Promise<void> {
    this.updates.push({ resources, ...(annotations ? { annotations } : {}) });
  }
  async process(_ctx: OpContext, execId: string): Promise<ExecProcess> {
    const p = this.execs.get(execId);
    if (!p) throw new NotFoundError(`process ${execId} does not exist`);
    return p;
  }
  async stats(): Promise<AnyValue> {
    if (this.statsResult instanceof Error) throw this.statsResult;
    return this.statsResult;
  }
  exec_(id: string): FakeProcess {
    const p = this.execs.get(id);
    if (!p) throw new Error(`no exec ${id} in the fake`);
    return p;
  }
}
export class FakeRuntime implements PlatformRuntime {
  readonly id = 'fake';
  readonly tasksByKey = new Map<string, FakeTask>();
  readonly created: Array<{ namespace: string; id: string; options: CreateTaskOptions }> = [];
  private pids = 100;

  async create(ctx: OpContext, containerId: string, options: CreateTaskOptions): Promise<Task> {
    const key = `${ctx.namespace}/${containerId}`;
    if (this.tasksByKey.has(key)) throw new AlreadyExistsError(`task ${containerId}`);
    const task = new FakeTask(ctx.namespace, containerId, options.runtime, options, () => this.pids++);
    this.tasksByKey.set(key, task);
    this.created.push({ namespace: ctx.namespace, id: containerId, options });
    return task;
  }
  async get(ctx: OpContext, containerId: string): Promise<Task> {
    return this.task(ctx.namespace, containerId);
  }
  async tasks(ctx: OpContext, all = false): Promise<Task[]> {
    return [...this.tasksByKey.values()].filter((t) => all || t.namespace === ctx.namespace);
  }
  async delete(ctx: OpContext, containerId: string): Promise<Exit> {
    const task = this.task(ctx.namespace, containerId);
    if (task.status !== 'stopped' && task.status !== 'created') throw new FailedPreconditionError(`task must be stopped before deletion: ${task.status}`);
    this.tasksByKey.delete(`${ctx.namespace}/${containerId}`);
    return task.exited ?? { pid: task.pidNumber, status: 0, exitedAt: new Date(0) };
  }
  /** The test's hand on a task. */
  task(namespace: string, containerId: string): FakeTask {
    const task = this.tasksByKey.get(`${namespace}/${containerId}`);
    if (!task) throw new NotFoundError(`no task for container ${containerId}`);
    return task;
  }
}

/** Containers by namespace and id; only `get` (what the Tasks service reads) and `create` for the test's setup. */
export class FakeContainers implements ContainerStore {
  private readonly byKey = new Map<string, Container>();

  add(namespace: string, container: Partial<Container> & { id: string }): Container {
    const now = new Date();
    const full: Container = {
      labels: {},
      image: '',
      runtime: { name: 'io.containerd.runc.v2' },
      spec: { typeUrl: 'types.containerd.io/opencontainers/runtime-spec/1/Spec', value: Buffer.from('{"ociVersion":"1.0.2"}') },
      snapshotter: '',
      snapshotKey: '',
      extensions: {},
      extensionRevisions: {},
      createdAt: now,
      updatedAt: now,
      ...container,
    };
    this.byKey.set(`${namespace}/${container.id}`, full);
    return full;
  }
  async get(ctx: OpContext, id: string): Promise<Container> {
    const c = this.byKey.get(`${ctx.namespace}/${id}`);
    if (!c) throw new NotFoundError(`container "${id}" in namespace "${ctx.namespace}"`);
    return c;
  }
  list(): Promise<Container[]> {
    throw new Error('not used by the Tasks service');
  }
  create(): Promise<Container> {
    throw new Error('not used by the Tasks service');
  }
  update(): Promise<Container> {
    throw new Error('not used by the Tasks service');
  }
  delete(): Promise<void> {
    throw new Error('not used by the Tasks service');
  }
  getExtension(): never {
    throw new Error('not used by the Tasks service');
  }
  putExtension(): never {
    throw new Error('not used by the Tasks service');
  }
  modifyExtension(): never {
    throw new Error('not used by the Tasks service');
  }
  deleteExtension(): never {
    throw new Error('not used by the Tasks service');
  }
  scanExtension(): never {
    throw new Error('not used by the Tasks service');
  }
}

/** Snapshotters whose only working call is `mounts`, from a table of `<snapshotter>/<key>` -> mounts. */
export class FakeSnapshotters implements SnapshotterSet {
  readonly mountsByKey = new Map<string, Mount[]>();

  get(name: string): Snapshotter {
    if (!['overlayfs', 'native'].includes(name)) throw new NotFoundError(`snapshotter ${name} was not found`);
    const table = this.mountsByKey;
    const unused = (): never => {
      throw new Error('not used by the Tasks service');
    };
    return {
      scope: 'namespaced',
      async mounts(ctx: OpContext, key: string): Promise<Mount[]> {
        const m = table.get(`${ctx.namespace}/${name}/${key}`);
        if (!m) throw new NotFoundError(`snapshot ${key} does not exist`);
        return m;
      },
      stat: unused,
      update: unused,
      usage: unused,
      prepare: unused,
      view: unused,
      commit: unused,
      remove: unused,
      walk: unused,
      cleanup: unused,
    };
  }
  names(): readonly string[] {
    return ['overlayfs', 'native'];
  }
}
