// What `berth run` and `berth tasks …` do, as ctr does it (cmd/ctr/commands/run, cmd/ctr/commands/tasks): the
// container from the image (containers-ops' createContainer, with @berth/client's OCI spec builder), the stdio
// FIFOs made and copied client-side, Tasks.Create with the snapshot's mounts, Wait before Start, and the exit status
// as the exit code (the shim reports a signalled process as 128 + the signal).
import { isNotFound, FailedPreconditionError, InvalidArgumentError, type Container, type Mount, type OpContext } from '@berth/core';
import { packAny } from '@berth/api';
import {
  attachStdio,
  createFifoSet,
  decodeSpec,
  DEFAULT_FIFO_ROOT,
  followWindowSize,
  forwardSignals,
  generateSpec,
  MountedRootFs,
  parseMountFlag,
  removeFifos,
  withAdditionalGids,
  withCpus,
  withDefaultUnixDevices,
  withEnv,
  withHostname,
  withImageConfig,
  withMemoryLimit,
  withMounts,
  withProcessArgs,
  withProcessCwd,
  withRootfsReadonly,
  withSeccompProfile,
  withTTY,
  withUser,
  type Attachment,
  type OciProcess,
  type RootFsMounter,
  type SpecOpt,
  type StdioStreams,
  type TaskProcessInfo,
  type TasksProxy,
} from '@berth/client';
import { createContainer, DEFAULT_RUNTIME, removeContainers, type ContainerCommandServices } from './containers-ops.js';

/** How long the output may go on after the process exited (a grandchild holding the pty) before berth stops copying. */
export const OUTPUT_DRAIN_MS = 5000;

/** The runc shim's options type (containerd.runc.v1.Options), which ctr always sends for io.containerd.runc.v2. */
const RUNC_OPTIONS = 'containerd.runc.v1.Options';

export interface RunOptions {
  readonly image: string;
  readonly id: string;
  /** The command (replaces the image's cmd; the entrypoint stays, as containerd's WithImageConfigArgs). */
  readonly args: readonly string[];
  readonly rm?: boolean;
  readonly tty?: boolean;
  readonly detach?: boolean;
  readonly env?: readonly string[];
  /** ctr's `--mount` strings. */
  readonly mounts?: readonly string[];
  readonly memoryLimit?: number;
  readonly cpus?: number;
  readonly user?: string;
  readonly cwd?: string;
  readonly readOnly?: boolean;
  readonly hostname?: string;
  readonly seccompProfile?: string;
  readonly runtime?: string;
  readonly runcBinary?: string;
  readonly runcRoot?: string;
  readonly runcSystemdCgroup?: boolean;
  readonly snapshotter: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly platform?: string;
  readonly fifoDir?: string;
}

/** The terminal side of this process: its streams, and the TTY that sizes a pty. */
export interface TerminalIo extends StdioStreams {
  readonly tty?: { columns?: number; rows?: number; on(event: 'resize', f: () => void): unknown; off(event: 'resize', f: () => void): unknown };
}

export interface RunServices extends ContainerCommandServices {
  readonly tasks: TasksProxy;
  readonly mounter: RootFsMounter;
}

/** ctr's getRuntimeOptions: runc options only for io.containerd.runc.v2 (refused for another runtime). */
export function runtimeOptionsOf(options: Pick<RunOptions, 'runtime' | 'runcBinary' | 'runcRoot' | 'runcSystemdCgroup'>) {
  const runtime = options.runtime || DEFAULT_RUNTIME;
  if ((options.runcBinary || options.runcSystemdCgroup) && runtime !== 'io.containerd.runc.v2') {
    throw new InvalidArgumentError('specifying runc-binary and runc-systemd-cgroup is only supported for "io.containerd.runc.v2" runtime');
  }
  if (runtime !== 'io.containerd.runc.v2') return undefined;
  const any = packAny(RUNC_OPTIONS, {
    ...(options.runcBinary ? { binary_name: options.runcBinary } : {}),
    ...(options.runcRoot ? { root: options.runcRoot } : {}),
    ...(options.runcSystemdCgroup ? { systemd_cgroup: true } : {}),
  });
  return { typeUrl: any.type_url, value: Buffer.from(any.value) };
}

/** The spec options of a run, in ctr's order (run_unix.go NewContainer), then berth's own (user, hostname). */
export function runSpecOpts(options: RunOptions, image: Parameters<typeof withImageConfig>[0]): SpecOpt[] {
  const opts: SpecOpt[] = [withDefaultUnixDevices, withEnv(options.env ?? []), withMounts((options.mounts ?? []).map(parseMountFlag)), withImageConfig(image)];
  if (options.readOnly) opts.push(withRootfsReadonly);
  if (options.args.length > 0) opts.push(withProcessArgs(...options.args));
  if (options.cwd) opts.push(withProcessCwd(options.cwd));
  if (options.tty) opts.push(withTTY);
  if (options.cpus !== undefined) opts.push(withCpus(options.cpus));
  if (options.memoryLimit !== undefined) opts.push(withMemoryLimit(options.memoryLimit));
  if (options.seccompProfile) opts.push(withSeccompProfile(options.seccompProfile));
  if (options.user) {
    const user = options.user;
    opts.push(withUser(user), async (spec, sctx) => withAdditionalGids(String(spec.process?.user.uid ?? 0))(spec, sctx));
  }
  opts.push(withHostname(options.hostname ?? options.id));
  return opts;
}

/** Creates the container for a run: createContainer with the spec built once its snapshot exists. */
export async function createRunContainer(svc: RunServices, ctx: OpContext, options: RunOptions): Promise<Container> {
  if (options.rm && options.detach) throw new InvalidArgumentError('flags --detach and --rm cannot be specified together');
  // Checked before anything is made, so that bad flags leave nothing behind.
  const runtimeOptions = runtimeOptionsOf(options);
  for (const m of options.mounts ?? []) parseMountFlag(m);
  return createContainer(svc, ctx, {
    id: options.id,
    image: options.image,
    labels: { ...options.labels },
    runtime: options.runtime || DEFAULT_RUNTIME,
    ...(runtimeOptions ? { runtimeOptions } : {}),
    snapshotter: options.snapshotter,
    ...(options.platform ? { platform: options.platform } : {}),
    buildSpec: async ({ image, mounts, ctx: lctx }) => {
      const rootfs = new MountedRootFs(mounts, svc.mounter);
      try {
        return await generateSpec({ namespace: lctx.namespace, id: options.id, rootfs }, ...runSpecOpts(options, image));
      } finally {
        await rootfs.close();
      }
    },
  });
}

async function rootfsMounts(svc: ContainerCommandServices, ctx: OpContext, c: Container): Promise<Mount[]> {
  if (!c.snapshotKey) return [];
  return svc.snapshotters.get(c.snapshotter).mounts(ctx, c.snapshotKey);
}

/** Deletes a container and its snapshot (ctr's `container.Delete(ctx, WithSnapshotCleanup)`), after its task. */
async function removeContainer(svc: RunServices, ctx: OpContext, id: string): Promise<void> {
  const r = await removeContainers(svc, { status: async () => undefined }, ctx, [id], { keepSnapshot: false });
  if (r.failed[0]) throw r.failed[0].error;
}

export interface ProcessRun {
  /** The process's exit status (what the command exits with). */
  readonly exitStatus: number;
}

/**
 * Drives one process that is created but not started (an init process or an exec), as ctr does after NewTask or
 * Exec: Wait issued before Start, the terminal sized and followed or the signals forwarded, the output copied
 * until the shim closes it (bounded after the exit), then the attachment closed. Returns the exit status.
 */
async function startAndWait(
  tasks: TasksProxy,
  ctx: OpContext,
  target: { readonly containerId: string; readonly execId: string },
  attachment: Attachment,
  io: TerminalIo,
  tty: boolean,
): Promise<number> {
  const waiting = tasks.wait(ctx, target.containerId, target.execId);
  waiting.catch(() => undefined);
  await tasks.start(ctx, target.containerId, target.execId);
  const stop =
    tty && io.tty
      ? followWindowSize(io.tty, (size) => tasks.resizePty(ctx, target.containerId, target.execId, size))
      : forwardSignals((signal) => tasks.kill(ctx, target.containerId, signal, { execId: target.execId }));
  try {
    const exit = await waiting;
    await Promise.race([attachment.output, new Promise((r) => setTimeout(r, OUTPUT_DRAIN_MS).unref())]);
    return exit.status;
  } finally {
    stop();
    await attachment.close();
  }
}

/** `berth run`: 0 with --detach once started; otherwise the exit status of the container's process. */
export async function runContainer(svc: RunServices, ctx: OpContext, options: RunOptions, io: TerminalIo): Promise<number> {
  const container = await createRunContainer(svc, ctx, options);
  let taskCreated = false;
  try {
    const status = await runTask(svc, ctx, container, { tty: options.tty === true, detach: options.detach === true, fifoDir: options.fifoDir }, io, () => {
      taskCreated = true;
    });
    return status;
  } finally {
    if (options.rm && !options.detach) {
      // The task is gone when runTask returns normally; after a failure, a task left behind keeps the container.
      await removeContainer(svc, ctx, container.id).catch((err: unknown) => {
        if (!taskCreated) throw err;
      });
    }
  }
}

export interface TaskRunOptions {
  readonly tty: boolean;
  readonly detach: boolean;
  readonly fifoDir?: string;
  /** With --null-io: no FIFOs, the process's stdio is /dev/null. */
  readonly nullIo?: boolean;
}

/**
 * A new task for an existing container (`berth tasks start`, and `run` after creating it): FIFOs, Tasks.Create,
 * then (unless detached) start, wait, Tasks.Delete and the FIFOs removed.
 */
export async function runTask(
  svc: RunServices,
  ctx: OpContext,
  container: Container,
  options: TaskRunOptions,
  io: TerminalIo,
  onCreated: () => void = () => undefined,
): Promise<number> {
  const id = container.id;
  const fifos = options.nullIo ? undefined : await createFifoSet(options.fifoDir || DEFAULT_FIFO_ROOT, id, { terminal: options.tty });
  let created!: () => void;
  const createdP = new Promise<void>((r) => (created = r));
  const paths = fifos ?? { stdin: '', stdout: '', stderr: '', terminal: options.tty };
  let attachment: Attachment | undefined;
  try {
    attachment = await attachStdio(paths, options.detach ? { stdout: io.stdout, ...(io.stderr ? { stderr: io.stderr } : {}) } : io, {
      ready: createdP,
      closeStdin: async () => {
        await createdP;
        await svc.tasks.closeIO(ctx, id);
      },
    });
    await svc.tasks.create(ctx, { containerId: id, rootfs: await rootfsMounts(svc, ctx, container), io: { stdin: paths.stdin, stdout: paths.stdout, stderr: paths.stderr, terminal: options.tty } });
  } catch (err) {
    await attachment?.close();
    await fifos?.close();
    throw err;
  }
  created();
  onCreated();
  if (options.detach) {
    try {
      await svc.tasks.start(ctx, id);
    } catch (err) {
      await attachment.close();
      await svc.tasks.delete(ctx, id).catch(() => undefined);
      await fifos?.close();
      throw err;
    }
    // As ctr -d: the FIFOs stay for `tasks attach`; `tasks rm` removes them.
    await attachment.close();
    return 0;
  }
  try {
    return await startAndWait(svc.tasks, ctx, { containerId: id, execId: '' }, attachment, io, options.tty);
  } finally {
    await svc.tasks.delete(ctx, id).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
    await fifos?.close();
  }
}

export interface ExecOptions {
  readonly execId: string;
  readonly args: readonly string[];
  readonly tty?: boolean;
  readonly detach?: boolean;
  readonly cwd?: string;
  readonly user?: string;
  readonly env?: readonly string[];
  readonly fifoDir?: string;
}

/** ctr's `tasks exec`: the container's process spec with the command, terminal, cwd and user changed. */
export async function execProcess(svc: RunServices, ctx: OpContext, containerId: string, options: ExecOptions, io: TerminalIo): Promise<number> {
  if (!options.execId) throw new InvalidArgumentError('exec id must be provided (--exec-id)');
  if (options.args.length === 0) throw new InvalidArgumentError('a command must be provided');
  const container = await svc.containers.get(ctx, containerId);
  if (!container.spec) throw new FailedPreconditionError(`container ${containerId} has no spec`);
  const spec = decodeSpec(container.spec.value);
  const sctx = { namespace: ctx.namespace, id: containerId };
  const opts: SpecOpt[] = [];
  if (options.env && options.env.length > 0) opts.push(withEnv(options.env));
  if (options.user) {
    const mounts = await rootfsMounts(svc, ctx, container);
    const rootfs = new MountedRootFs(mounts, svc.mounter);
    try {
      await withUser(options.user)(spec, { ...sctx, rootfs });
    } finally {
      await rootfs.close();
    }
  }
  for (const o of opts) await o(spec, sctx);
  const process: OciProcess = { ...(spec.process ?? { user: { uid: 0, gid: 0 }, cwd: '/' }), terminal: options.tty === true, args: [...options.args] };
  if (options.cwd) process.cwd = options.cwd;
  const fifos = await createFifoSet(options.fifoDir || DEFAULT_FIFO_ROOT, options.execId, { terminal: options.tty === true });
  let attachment: Attachment | undefined;
  try {
    let created!: () => void;
    const createdP = new Promise<void>((r) => (created = r));
    attachment = await attachStdio(fifos, io, {
      ready: createdP,
      closeStdin: async () => {
        await createdP;
        await svc.tasks.closeIO(ctx, containerId, options.execId);
      },
    });
    await svc.tasks.exec(ctx, containerId, options.execId, process, { stdin: fifos.stdin, stdout: fifos.stdout, stderr: fifos.stderr, terminal: options.tty === true });
    created();
  } catch (err) {
    await attachment?.close();
    await fifos.close();
    throw err;
  }
  if (options.detach) {
    try {
      await svc.tasks.start(ctx, containerId, options.execId);
    } finally {
      await attachment.close();
    }
    return 0;
  }
  try {
    return await startAndWait(svc.tasks, ctx, { containerId, execId: options.execId }, attachment, io, options.tty === true);
  } finally {
    await svc.tasks.deleteProcess(ctx, containerId, options.execId).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
    await fifos.close();
  }
}

/** ctr's `tasks attach`: the task's own FIFOs (as Tasks.Get reports them), copied until it exits. */
export async function attachTask(svc: RunServices, ctx: OpContext, containerId: string, io: TerminalIo): Promise<number> {
  const info = await svc.tasks.get(ctx, containerId);
  const attachment = await attachStdio(info, io, { closeStdin: () => svc.tasks.closeIO(ctx, containerId) });
  const stop = info.terminal && io.tty ? followWindowSize(io.tty, (size) => svc.tasks.resizePty(ctx, containerId, '', size)) : forwardSignals((signal) => svc.tasks.kill(ctx, containerId, signal));
  try {
    const exit = await svc.tasks.wait(ctx, containerId);
    await Promise.race([attachment.output, new Promise((r) => setTimeout(r, OUTPUT_DRAIN_MS).unref())]);
    return exit.status;
  } finally {
    stop();
    await attachment.close();
  }
}

/**
 * ctr's `tasks rm`: a task that is not stopped is refused unless `force` (then SIGKILL and wait first); its FIFOs
 * are removed after (loadFifos' closer). Returns the exit.
 */
export async function deleteTask(svc: RunServices, ctx: OpContext, containerId: string, options: { force?: boolean; execId?: string } = {}) {
  const info: TaskProcessInfo = await svc.tasks.get(ctx, containerId, options.execId ?? '');
  if (info.status !== 'stopped' && info.status !== 'created') {
    if (!options.force) throw new FailedPreconditionError(`task must be stopped before deletion: ${info.status}`);
    const waiting = svc.tasks.wait(ctx, containerId, options.execId ?? '');
    waiting.catch(() => undefined);
    await svc.tasks.kill(ctx, containerId, 9, { ...(options.execId ? { execId: options.execId } : {}), all: !options.execId });
    await waiting;
  }
  const exit = options.execId ? await svc.tasks.deleteProcess(ctx, containerId, options.execId) : await svc.tasks.delete(ctx, containerId);
  await removeFifos([info.stdin, info.stdout, info.stderr]);
  return exit;
}
