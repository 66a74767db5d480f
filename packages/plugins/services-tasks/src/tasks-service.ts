import { GO_ZERO_TIME_SECONDS, implementService, ServiceNames, toTimestamp, type containerd, type google } from '@berth/api';
import {
  InvalidArgumentError,
  isNotFound,
  NotFoundError,
  NotImplementedError,
  AlreadyExistsError,
  opContextOf,
  parseFilters,
  type AnyValue,
  type Container,
  type ContainerStore,
  type Exit,
  type Logger,
  type Mount,
  type OpContext,
  type PlatformRuntime,
  type ProcessState,
  type RpcContext,
  type RpcServiceImplementation,
  type RpcServices,
  type SnapshotterSet,
  type Task,
  type TaskMonitor,
  type TaskProcess,
  type TaskStatus,
} from '@berth/core';

type WireProcess = containerd.v1.types.ProcessInput;
type WireStatus = containerd.v1.types.Status;

/** containerd's task.Status numbering by name (types/task/task.proto). */
const WIRE_STATUS: Readonly<Record<TaskStatus, WireStatus>> = {
  unknown: 'UNKNOWN',
  created: 'CREATED',
  running: 'RUNNING',
  stopped: 'STOPPED',
  paused: 'PAUSED',
  pausing: 'PAUSING',
};

/** Go's zero time.Time, which containerd puts in `exited_at` of a process that has not exited (gogo stdtime, non-nullable). */
const GO_ZERO_TIMESTAMP: google.protobuf.TimestampInput = { seconds: GO_ZERO_TIME_SECONDS, nanos: 0 };

/**
 * containerd.services.tasks.v1.Tasks over the platform runtime, as containerd 1.6's services/tasks/local.go: every
 * method first finds the container (NotFound `container "<id>" in namespace "<ns>"` from the store), then its task
 * (NotFound `task <id>`); an exec id selects one of the task's exec processes. The service publishes nothing: the
 * task events (/tasks/create, /tasks/start, /tasks/exit ...) come from the shims through the runtime.
 */
export class TasksService implements RpcServices {
  readonly services: readonly RpcServiceImplementation[];

  constructor(
    private readonly runtime: PlatformRuntime,
    private readonly containers: ContainerStore,
    private readonly snapshotters: SnapshotterSet,
    private readonly log: Logger,
    /** Statistics read outside the shim (the cgroups monitor); without it, each shim's own Stats. */
    private readonly monitor?: TaskMonitor,
  ) {
    this.services = [
      implementService(ServiceNames.Tasks, {
        Create: (req, ctx) => this.create(req, ctx),
        Start: async (req, ctx) => {
          const { op, process } = await this.process(ctx, req.container_id, req.exec_id);
          await process.start(op);
          const state = await process.state(op);
          return { pid: state.pid };
        },
        Delete: async (req, ctx) => {
          const op = opContextOf(ctx);
          const task = await this.task(op, req.container_id);
          const exit = await this.runtime.delete(op, task.id);
          return exitResponse('', exit);
        },
        DeleteProcess: async (req, ctx) => {
          const op = opContextOf(ctx);
          if (!req.exec_id) throw new InvalidArgumentError('exec id cannot be empty');
          const task = await this.task(op, req.container_id);
          const exit = await (await task.process(op, req.exec_id)).delete(op);
          return exitResponse(req.exec_id, exit);
        },
        Get: async (req, ctx) => {
          const { op, process } = await this.process(ctx, req.container_id, req.exec_id);
          return { process: wireProcess(process.id, await process.state(op)) };
        },
        List: async (_req, ctx) => {
          const op = opContextOf(ctx);
          const tasks: WireProcess[] = [];
          for (const task of await this.runtime.tasks(op, false)) {
            try {
              tasks.push(wireProcess(task.id, await task.state(op)));
            } catch (err) {
              // A task deleted while we listed is simply gone, as in containerd; any other failure is logged and skipped.
              if (!isNotFound(err)) this.log.warn('task state for list', { id: task.id, err });
            }
          }
          return { tasks };
        },
        Kill: async (req, ctx) => {
          const { op, process } = await this.process(ctx, req.container_id, req.exec_id);
          await process.kill(op, req.signal, req.all);
        },
        Exec: async (req, ctx) => {
          const op = opContextOf(ctx);
          if (!req.exec_id) throw new InvalidArgumentError('exec id cannot be empty');
          const task = await this.task(op, req.container_id);
          if (!req.spec) throw new InvalidArgumentError(`exec ${req.exec_id} of task ${req.container_id}: a process spec is required`);
          await task.exec(op, req.exec_id, {
            spec: anyValue(req.spec),
            io: { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, terminal: req.terminal },
          });
        },
        ResizePty: async (req, ctx) => {
          const { op, process } = await this.process(ctx, req.container_id, req.exec_id);
          await process.resizePty(op, { width: req.width, height: req.height });
        },
        CloseIO: async (req, ctx) => {
          const { op, process } = await this.process(ctx, req.container_id, req.exec_id);
          if (req.stdin) await process.closeIO(op);
        },
        Pause: async (req, ctx) => {
          const op = opContextOf(ctx);
          await (await this.task(op, req.container_id)).pause(op);
        },
        Resume: async (req, ctx) => {
          const op = opContextOf(ctx);
          await (await this.task(op, req.container_id)).resume(op);
        },
        ListPids: async (req, ctx) => {
          const op = opContextOf(ctx);
          const pids = await (await this.task(op, req.container_id)).pids(op);
          return { processes: pids.map((p) => ({ pid: p.pid, info: p.info ? wireAny(p.info) : null })) };
        },
        Checkpoint: async (req, ctx) => {
          const op = opContextOf(ctx);
          await this.task(op, req.container_id);
          // containerd writes the checkpoint into the content store as an image; berth has no CRIU support at all.
          throw new NotImplementedError(`checkpoint of task ${req.container_id}: berthd does not checkpoint tasks (no CRIU support)`);
        },
        Update: async (req, ctx) => {
          const op = opContextOf(ctx);
          const task = await this.task(op, req.container_id);
          if (!req.resources) throw new InvalidArgumentError(`update of task ${req.container_id}: resources are required`);
          await task.update(op, anyValue(req.resources), { ...req.annotations });
        },
        Metrics: (req, ctx) => this.metrics(req, ctx),
        Wait: async (req, ctx) => {
          const { op, process } = await this.process(ctx, req.container_id, req.exec_id);
          const exit = await process.wait(op);
          return { exit_status: exit.status, exited_at: toTimestamp(exit.exitedAt) };
        },
      }),
    ];
  }

  private async create(req: containerd.services.tasks.v1.CreateTaskRequest, ctx: RpcContext): Promise<containerd.services.tasks.v1.CreateTaskResponseInput> {
    const op = opContextOf(ctx);
    const container = await this.containers.get(op, req.container_id);
    if (req.checkpoint?.digest) {
      throw new NotImplementedError(`task ${container.id}: restoring from checkpoint ${req.checkpoint.digest} is not supported (no CRIU support)`);
    }
    if (!container.spec) throw new InvalidArgumentError(`container ${container.id} has no spec`);
    if (await this.findTask(op, container.id)) throw new AlreadyExistsError(`task ${container.id}`);
    const rootfs = req.rootfs.length > 0 ? req.rootfs.map(fromWireMount) : await this.snapshotMounts(op, container);
    const task = await this.runtime.create(op, container.id, {
      spec: container.spec,
      rootfs,
      io: { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, terminal: req.terminal },
      ...(container.runtime.options ? { runtimeOptions: container.runtime.options } : {}),
      ...(req.options ? { taskOptions: anyValue(req.options) } : {}),
      runtime: req.runtime_path || container.runtime.name,
    });
    return { container_id: container.id, pid: await task.pid(op) };
  }

  /** A client that sends no rootfs gets the container's snapshot mounts (none when it has no snapshot). */
  private async snapshotMounts(op: OpContext, container: Container): Promise<Mount[]> {
    if (!container.snapshotKey) return [];
    return this.snapshotters.get(container.snapshotter).mounts(op, container.snapshotKey);
  }

  private async metrics(req: containerd.services.tasks.v1.MetricsRequest, ctx: RpcContext): Promise<containerd.services.tasks.v1.MetricsResponseInput> {
    const op = opContextOf(ctx);
    const filter = parseFilters(req.filters);
    const metrics: containerd.types.MetricInput[] = [];
    for (const task of await this.runtime.tasks(op, false)) {
      const fields: Record<string, string> = { id: task.id, namespace: task.namespace, runtime: task.runtime };
      if (!(await filter.match((path) => (path.length === 1 ? fields[path[0]!] : undefined)))) continue;
      const collected = new Date();
      try {
        metrics.push({ timestamp: toTimestamp(collected), id: task.id, data: wireAny(await this.taskStats(op, task)) });
      } catch (err) {
        // containerd skips a task whose stats fail (gone, or a runtime without stats), logging all but NotFound.
        if (!isNotFound(err)) this.log.warn('task metrics', { id: task.id, err });
      }
    }
    return { metrics };
  }

  /** The monitor's statistics of the task; the shim's when there is no monitor or it cannot find the task's cgroup. */
  private async taskStats(op: OpContext, task: Task): Promise<AnyValue> {
    if (!this.monitor) return task.stats(op);
    try {
      return await this.monitor.stats(op, task);
    } catch (err) {
      if (!isNotFound(err)) this.log.warn('task monitor stats; asking the shim', { id: task.id, err });
      return task.stats(op);
    }
  }

  /** The container's task (NotFound for an unknown container, then for a container without a task). */
  private async task(op: OpContext, containerId: string): Promise<Task> {
    await this.containers.get(op, containerId);
    const task = await this.findTask(op, containerId);
    if (!task) throw new NotFoundError(`task ${containerId}`);
    return task;
  }

  private async findTask(op: OpContext, containerId: string): Promise<Task | undefined> {
    try {
      return await this.runtime.get(op, containerId);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** The task's init process, or with an exec id the exec process of that id (NotFound from the runtime when none). */
  private async process(ctx: RpcContext, containerId: string, execId: string): Promise<{ op: OpContext; process: TaskProcess }> {
    const op = opContextOf(ctx);
    const task = await this.task(op, containerId);
    return { op, process: execId ? await task.process(op, execId) : task };
  }
}

export function wireProcess(id: string, state: ProcessState): WireProcess {
  return {
    id,
    pid: state.pid,
    status: WIRE_STATUS[state.status] ?? 'UNKNOWN',
    stdin: state.stdin,
    stdout: state.stdout,
    stderr: state.stderr,
    terminal: state.terminal,
    exit_status: state.exitStatus,
    exited_at: state.exitedAt ? toTimestamp(state.exitedAt) : GO_ZERO_TIMESTAMP,
  };
}

function exitResponse(id: string, exit: Exit): containerd.services.tasks.v1.DeleteResponseInput {
  return { id, pid: exit.pid, exit_status: exit.status, exited_at: toTimestamp(exit.exitedAt) };
}

function fromWireMount(m: containerd.types.Mount): Mount {
  return { type: m.type, source: m.source, ...(m.target ? { target: m.target } : {}), options: [...m.options] };
}

function anyValue(any: google.protobuf.Any): AnyValue {
  return { typeUrl: any.type_url, value: Buffer.from(any.value) };
}

function wireAny(value: AnyValue): google.protobuf.AnyInput {
  return { type_url: value.typeUrl, value: Buffer.from(value.value) };
}
