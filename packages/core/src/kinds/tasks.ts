import type { OpContext } from './context.js';
import type { AnyValue } from './events.js';
import type { Mount } from './snapshots.js';

/** A process's stdio as the client named it: FIFO paths (or `file://`, `binary://` URIs), '' for none. */
export interface ProcessIO {
  readonly stdin: string;
  readonly stdout: string;
  readonly stderr: string;
  readonly terminal: boolean;
}

/** What Tasks.Create hands the runtime (containerd's runtime.CreateOpts). */
export interface CreateTaskOptions {
  /** The container's OCI runtime spec (its JSON in `value`). */
  readonly spec: AnyValue;
  /** Mounts that make the root filesystem (the snapshot's, or the client's own). */
  readonly rootfs: readonly Mount[];
  readonly io: ProcessIO;
  /** A checkpoint to restore from (content digest); unsupported runtimes refuse it. */
  readonly checkpoint?: string;
  /** The container's runtime options (`containerd.runc.v1.Options`). */
  readonly runtimeOptions?: AnyValue;
  /** Options of this create call (Tasks.Create's `options`). */
  readonly taskOptions?: AnyValue;
  /** `io.containerd.runc.v2`, or an absolute path to a shim binary. */
  readonly runtime: string;
}

/** containerd's task status names, in its numbering (types/task/task.proto). */
export type TaskStatus = 'unknown' | 'created' | 'running' | 'stopped' | 'paused' | 'pausing';

export interface ProcessState {
  readonly status: TaskStatus;
  readonly pid: number;
  readonly exitStatus: number;
  /** Undefined while the process has not exited (the wire carries Go's zero time then). */
  readonly exitedAt?: Date;
  readonly stdin: string;
  readonly stdout: string;
  readonly stderr: string;
  readonly terminal: boolean;
}

export interface Exit {
  readonly pid: number;
  readonly status: number;
  readonly exitedAt: Date;
}

export interface ProcessInfo {
  readonly pid: number;
  /** Runtime-specific details (runc: `containerd.runc.v1.ProcessDetails` with the exec id). */
  readonly info?: AnyValue;
}

/**
 * One process of a task (containerd's runtime.Process). Every call has a deadline: a shim that does not answer
 * gives UnavailableError or DeadlineExceeded, never a call that hangs; a shim that died gives NotFound/Unavailable
 * with the container id in the message.
 */
export interface TaskProcess {
  /** The exec id; for the init process, the container id. */
  readonly id: string;
  state(ctx: OpContext): Promise<ProcessState>;
  kill(ctx: OpContext, signal: number, all?: boolean): Promise<void>;
  resizePty(ctx: OpContext, size: { readonly width: number; readonly height: number }): Promise<void>;
  closeIO(ctx: OpContext): Promise<void>;
  start(ctx: OpContext): Promise<void>;
  /** Resolves when the process exits (at once if it has); survives a berthd restart on the shim's side. */
  wait(ctx: OpContext): Promise<Exit>;
}

export interface ExecProcess extends TaskProcess {
  delete(ctx: OpContext): Promise<Exit>;
}

export interface ExecOptions {
  /** The process spec (OCI `Process` JSON in `value`). */
  readonly spec: AnyValue;
  readonly io: ProcessIO;
}

/** A container's running task (containerd's runtime.Task): its init process plus the task-wide operations. */
export interface Task extends TaskProcess {
  readonly namespace: string;
  /** The runtime name it was started with. */
  readonly runtime: string;
  pid(ctx: OpContext): Promise<number>;
  pause(ctx: OpContext): Promise<void>;
  resume(ctx: OpContext): Promise<void>;
  exec(ctx: OpContext, execId: string, options: ExecOptions): Promise<ExecProcess>;
  pids(ctx: OpContext): Promise<ProcessInfo[]>;
  /** FailedPrecondition/Unimplemented where the runtime cannot (no CRIU). */
  checkpoint(ctx: OpContext, path: string, options?: AnyValue): Promise<void>;
  update(ctx: OpContext, resources: AnyValue, annotations?: Readonly<Record<string, string>>): Promise<void>;
  /** NotFound for an unknown exec id. */
  process(ctx: OpContext, execId: string): Promise<ExecProcess>;
  /** The runtime's statistics (cgroup metrics as `io.containerd.cgroups.v1.Metrics`). */
  stats(ctx: OpContext): Promise<AnyValue>;
}

/**
 * containerd's runtime.PlatformRuntime: io.containerd.runtime.v2 plugins provide it. Tasks are per namespace
 * (ctx.namespace) and keyed by container id; at most one task per container. Create publishes nothing itself:
 * the shim's events (`/tasks/create` …) come through the ttrpc Events/Forward service; the runtime publishes
 * `/tasks/exit` and `/tasks/delete` itself only when it cleans up after a shim that died.
 */
export interface PlatformRuntime {
  readonly id: string;
  /** AlreadyExists when the container has a task. */
  create(ctx: OpContext, containerId: string, options: CreateTaskOptions): Promise<Task>;
  /** NotFound when the container has no task. */
  get(ctx: OpContext, containerId: string): Promise<Task>;
  /** This namespace's tasks; with `all`, every namespace's. */
  tasks(ctx: OpContext, all?: boolean): Promise<Task[]>;
  /** Deletes the task (shim Delete, Shutdown, bundle removal) and returns its exit. */
  delete(ctx: OpContext, containerId: string): Promise<Exit>;
}

/**
 * Per-task statistics read outside the shim (containerd's runtime.TaskMonitor, io.containerd.monitor.v1 plugins):
 * the tasks service serves Tasks.Metrics from it when one is loaded, and falls back to the shim's own stats
 * (`Task.stats`) otherwise. The value is what Tasks.Metrics carries in `data`: `io.containerd.cgroups.v1.Metrics`
 * on cgroup v1 hosts, `io.containerd.cgroups.v2.Metrics` on cgroup v2 ones. NotFound when the task has no cgroup
 * (any more).
 */
export interface TaskMonitor {
  stats(ctx: OpContext, task: Task): Promise<AnyValue>;
}
