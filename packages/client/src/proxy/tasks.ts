// The Tasks service (containerd.services.tasks.v1) with core's shapes: dates instead of wire timestamps, status
// names as core's TaskStatus, specs as JSON. Every call is one RPC; errors are the errdefs berthd threw. Wait
// carries no deadline of its own (a task may run for days) unless the OpContext's signal ends it.
import { fromTimestamp, type containerd, type google } from '@berth/api';
import type { AnyValue, Exit, Mount, OpContext, ProcessIO, ProcessInfo, TaskStatus } from '@berth/core';
import type { BerthClient } from '../client.js';
import type { OciProcess } from '../oci/types.js';
import { callOptionsOf } from './content-store.js';

/** containerd's type URL for a process spec in Exec (typeurl of specs.Process). */
export const OCI_PROCESS_TYPE_URL = 'types.containerd.io/opencontainers/runtime-spec/1/Process';

/** One process as Tasks.Get/List report it (containerd's task.Process). */
export interface TaskProcessInfo {
  readonly containerId: string;
  /** The exec id; for the init process, the container id. */
  readonly id: string;
  readonly pid: number;
  readonly status: TaskStatus;
  readonly stdin: string;
  readonly stdout: string;
  readonly stderr: string;
  readonly terminal: boolean;
  readonly exitStatus: number;
  /** Undefined while it has not exited. */
  readonly exitedAt?: Date;
}

export interface CreateTaskRequest {
  readonly containerId: string;
  /** The root filesystem's mounts (the container's snapshot); empty when the spec's root is a host path. */
  readonly rootfs: readonly Mount[];
  readonly io: ProcessIO;
  /** Options of this create (runc: `containerd.runc.v1.CreateOptions`); the container's runtime options apply anyway. */
  readonly options?: AnyValue;
  readonly runtimePath?: string;
}

/** One task's statistics as Tasks.Metrics gives them (`data`: io.containerd.cgroups.v1 or v2 Metrics). */
export interface TaskMetric {
  readonly id: string;
  readonly timestamp: Date;
  readonly data: AnyValue;
}

const EPOCH = new Date(0);

function toStatus(status: containerd.v1.types.Status): TaskStatus {
  return status.toLowerCase() as TaskStatus;
}

export function toTaskProcessInfo(p: containerd.v1.types.Process): TaskProcessInfo {
  const exitedAt = fromTimestamp(p.exited_at);
  return {
    containerId: p.container_id,
    id: p.id,
    pid: p.pid,
    status: toStatus(p.status),
    stdin: p.stdin,
    stdout: p.stdout,
    stderr: p.stderr,
    terminal: p.terminal,
    exitStatus: p.exit_status,
    ...(exitedAt ? { exitedAt } : {}),
  };
}

function toExit(r: { pid?: number; exit_status: number; exited_at: google.protobuf.Timestamp | null }): Exit {
  return { pid: r.pid ?? 0, status: r.exit_status, exitedAt: fromTimestamp(r.exited_at) ?? EPOCH };
}

export class TasksProxy {
  constructor(private readonly client: BerthClient) {}

  private get tasks() {
    return this.client.tasks;
  }

  async create(ctx: OpContext, req: CreateTaskRequest): Promise<{ pid: number }> {
    const r = await this.tasks.Create(
      {
        container_id: req.containerId,
        rootfs: req.rootfs.map((m) => ({ type: m.type, source: m.source, target: m.target ?? '', options: [...m.options] })),
        stdin: req.io.stdin,
        stdout: req.io.stdout,
        stderr: req.io.stderr,
        terminal: req.io.terminal,
        ...(req.options ? { options: { type_url: req.options.typeUrl, value: req.options.value } } : {}),
        ...(req.runtimePath ? { runtime_path: req.runtimePath } : {}),
      },
      callOptionsOf(ctx),
    );
    return { pid: r.pid };
  }

  async start(ctx: OpContext, containerId: string, execId = ''): Promise<number> {
    return (await this.tasks.Start({ container_id: containerId, exec_id: execId }, callOptionsOf(ctx))).pid;
  }

  /** Deletes the task (its init process must have exited) and returns its exit. */
  async delete(ctx: OpContext, containerId: string): Promise<Exit> {
    return toExit(await this.tasks.Delete({ container_id: containerId }, callOptionsOf(ctx)));
  }

  async deleteProcess(ctx: OpContext, containerId: string, execId: string): Promise<Exit> {
    return toExit(await this.tasks.DeleteProcess({ container_id: containerId, exec_id: execId }, callOptionsOf(ctx)));
  }

  /** NotFound when the container has no task (or no such exec). */
  async get(ctx: OpContext, containerId: string, execId = ''): Promise<TaskProcessInfo> {
    const r = await this.tasks.Get({ container_id: containerId, exec_id: execId }, callOptionsOf(ctx));
    if (!r.process) throw new Error(`Tasks.Get of ${containerId} returned no process`);
    return toTaskProcessInfo(r.process);
  }

  async list(ctx: OpContext, filter = ''): Promise<TaskProcessInfo[]> {
    return (await this.tasks.List({ filter }, callOptionsOf(ctx))).tasks.map(toTaskProcessInfo);
  }

  /** Statistics of the namespace's tasks matching the filters (`id==web`; none: every task). */
  async metrics(ctx: OpContext, filters: readonly string[] = []): Promise<TaskMetric[]> {
    const r = await this.tasks.Metrics({ filters: [...filters] }, callOptionsOf(ctx));
    return r.metrics.map((m) => ({
      id: m.id,
      timestamp: fromTimestamp(m.timestamp) ?? EPOCH,
      data: { typeUrl: m.data?.type_url ?? '', value: Buffer.from(m.data?.value ?? []) },
    }));
  }

  async kill(ctx: OpContext, containerId: string, signal: number, options: { execId?: string; all?: boolean } = {}): Promise<void> {
    await this.tasks.Kill({ container_id: containerId, exec_id: options.execId ?? '', signal, all: options.all ?? false }, callOptionsOf(ctx));
  }

  /** Adds an exec process (not started) with its OCI process spec. */
  async exec(ctx: OpContext, containerId: string, execId: string, spec: OciProcess, io: ProcessIO): Promise<void> {
    await this.tasks.Exec(
      {
        container_id: containerId,
        exec_id: execId,
        stdin: io.stdin,
        stdout: io.stdout,
        stderr: io.stderr,
        terminal: io.terminal,
        spec: { type_url: OCI_PROCESS_TYPE_URL, value: new TextEncoder().encode(JSON.stringify(spec)) },
      },
      callOptionsOf(ctx),
    );
  }

  async resizePty(ctx: OpContext, containerId: string, execId: string, size: { width: number; height: number }): Promise<void> {
    await this.tasks.ResizePty({ container_id: containerId, exec_id: execId, width: size.width, height: size.height }, callOptionsOf(ctx));
  }

  async closeIO(ctx: OpContext, containerId: string, execId = ''): Promise<void> {
    await this.tasks.CloseIO({ container_id: containerId, exec_id: execId, stdin: true }, callOptionsOf(ctx));
  }

  async pause(ctx: OpContext, containerId: string): Promise<void> {
    await this.tasks.Pause({ container_id: containerId }, callOptionsOf(ctx));
  }

  async resume(ctx: OpContext, containerId: string): Promise<void> {
    await this.tasks.Resume({ container_id: containerId }, callOptionsOf(ctx));
  }

  async pids(ctx: OpContext, containerId: string): Promise<ProcessInfo[]> {
    const r = await this.tasks.ListPids({ container_id: containerId }, callOptionsOf(ctx));
    return r.processes.map((p) => ({ pid: p.pid, ...(p.info ? { info: { typeUrl: p.info.type_url, value: Buffer.from(p.info.value) } } : {}) }));
  }

  /** Resolves with the exit once the process has exited; no deadline beyond the OpContext's signal. */
  async wait(ctx: OpContext, containerId: string, execId = ''): Promise<Exit> {
    const r = await this.tasks.Wait({ container_id: containerId, exec_id: execId }, { ...callOptionsOf(ctx), timeoutMs: 0 });
    return { pid: 0, status: r.exit_status, exitedAt: fromTimestamp(r.exited_at) ?? EPOCH };
  }
}
