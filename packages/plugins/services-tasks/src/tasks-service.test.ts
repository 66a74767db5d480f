import { GO_ZERO_TIME_SECONDS, messageCodec, ServiceNames, type containerd, type MessageInputs, type MessageName, type Messages } from '@berth/api';
import { NotFoundError, nullLogger, type AnyValue, type RpcContext, type Task, type TaskMonitor } from '@berth/core';
import { expectFailure, rpcContext } from '@berth/core/testing';
import { beforeEach, describe, expect, it } from 'vitest';
import { TasksService } from './tasks-service.js';
import { FakeContainers, FakeRuntime, FakeSnapshotters } from './testing-fixtures/fakes.js';

type Handlers = containerd.services.tasks.v1.TasksHandlers;

const NS = 'tasks-unit';
/** A request as the wire delivers it: encoded and decoded, so absent fields carry the codec's defaults. */
function wire<N extends MessageName>(type: N, input: MessageInputs[N]): Messages[N] {
  const codec = messageCodec(type);
  return codec.decode(codec.encode(input)) as Messages[N];
}
/** A response as the client would read it. */
function roundTrip<N extends MessageName>(type: N, output: unknown): Messages[N] {
  const codec = messageCodec(type);
  return codec.decode(codec.encode(output as MessageInputs[N])) as Messages[N];
}
const rpc = (namespace = NS, signal?: AbortSignal): RpcContext =>
  rpcContext({ namespace, ...(signal ? { signal } : {}) });

const IO = { stdin: '/run/containerd/fifo/1/c1-stdin', stdout: '/run/containerd/fifo/1/c1-stdout', stderr: '/run/containerd/fifo/1/c1-stderr' };
const OVERLAY = [{ type: 'overlay', source: 'overlay', options: ['index=off', 'workdir=/w', 'upperdir=/u', 'lowerdir=/l'] }];
const PROCESS_SPEC = { type_url: 'types.containerd.io/opencontainers/runtime-spec/1/Process', value: Buffer.from('{"args":["/bin/echo","hi"],"cwd":"/"}') };

describe('TasksService', () => {
  let runtime: FakeRuntime;
  let containers: FakeContainers;
  let snapshotters: FakeSnapshotters;
  let h: Handlers;

  beforeEach(() => {
    runtime = new FakeRuntime();
    containers = new FakeContainers();
    snapshotters = new FakeSnapshotters();
    const service = new TasksService(runtime, containers, snapshotters, nullLogger);
    expect(service.services.map((s) => s.service)).toEqual([ServiceNames.Tasks]);
    h = service.services[0]!.handlers as unknown as Handlers;
  });

  const create = (id: string, extra: Partial<containerd.services.tasks.v1.CreateTaskRequestInput> = {}, namespace = NS) =>
    h.Create(wire('containerd.services.tasks.v1.CreateTaskRequest', { container_id: id, rootfs: OVERLAY, ...IO, ...extra }), rpc(namespace));
  const get = async (id: string, execId = '') => roundTrip('containerd.services.tasks.v1.GetResponse', await h.Get(wire('containerd.services.tasks.v1.GetRequest', { container_id: id, exec_id: execId }), rpc())).process!;

  describe('Create', () => {
    it('hands the runtime the container spec, its runtime name and options, the client rootfs and stdio, and answers the init pid', async () => {
      const options = { typeUrl: 'containerd.runc.v1.Options', value: Buffer.from([0x32, 0x04, 0x63, 0x72, 0x75, 0x6e]) };
      const c = containers.add(NS, { id: 'c1', runtime: { name: 'io.containerd.runc.v2', options } });
      const res = roundTrip('containerd.services.tasks.v1.CreateTaskResponse', await create('c1', { terminal: true }));
      expect(res).toEqual({ container_id: 'c1', pid: 100 });
      expect(runtime.created).toHaveLength(1);
      const made = runtime.created[0]!;
      expect(made.namespace).toBe(NS);
      expect(made.id).toBe('c1');
      expect(made.options.runtime).toBe('io.containerd.runc.v2');
      expect(made.options.spec).toEqual(c.spec);
      expect(made.options.runtimeOptions).toEqual(options);
      expect(made.options.taskOptions).toBeUndefined();
      expect(made.options.rootfs).toEqual(OVERLAY);
      expect(made.options.io).toEqual({ ...IO, terminal: true });
    });

    it("mounts the container's snapshot when the client sends no rootfs, and none when it has no snapshot", async () => {
      const mounts = [{ type: 'bind', source: '/snap/1/fs', options: ['rw', 'rbind'] }];
      snapshotters.mountsByKey.set(`${NS}/overlayfs/c2-snap`, mounts);
      containers.add(NS, { id: 'c2', snapshotter: 'overlayfs', snapshotKey: 'c2-snap' });
      containers.add(NS, { id: 'c3' });
      await create('c2', { rootfs: [] });
      await create('c3', { rootfs: [] });
      expect(runtime.created.map((c) => c.options.rootfs)).toEqual([mounts, []]);
    });

    it('runtime_path overrides the runtime name, and the request options reach the runtime as task options', async () => {
      containers.add(NS, { id: 'c4' });
      await create('c4', { runtime_path: '/usr/local/bin/containerd-shim-x', options: { type_url: 'containerd.runc.v1.Options', value: Buffer.from([0x08, 0x01]) } });
      expect(runtime.created[0]!.options.runtime).toBe('/usr/local/bin/containerd-shim-x');
      expect(runtime.created[0]!.options.taskOptions).toEqual({ typeUrl: 'containerd.runc.v1.Options', value: Buffer.from([0x08, 0x01]) });
    });

    it('refuses an unknown container (NotFound), a second task (AlreadyExists), a checkpoint (NotImplemented) and a missing namespace', async () => {
      await expectFailure(create('nope'), 'not-found', 'container "nope" in namespace "tasks-unit"');
      containers.add(NS, { id: 'c5' });
      await create('c5');
      await expectFailure(create('c5'), 'already-exists', 'task c5');
      containers.add(NS, { id: 'c6' });
      await expectFailure(create('c6', { checkpoint: { media_type: 'application/vnd.containerd.container.criu.checkpoint.criu.tar', digest: `sha256:${'a'.repeat(64)}`, size: 1 } }), 'not-implemented', 'checkpoint');
      await expectFailure(h.Create(wire('containerd.services.tasks.v1.CreateTaskRequest', { container_id: 'c6' }), rpcContext()), 'failed-precondition', 'namespace is required');
      // Nothing was created for the refused ones.
      expect(runtime.created.map((c) => c.id)).toEqual(['c5']);
    });

    it('keeps namespaces apart: the same id in another namespace is its own task', async () => {
      containers.add(NS, { id: 'same' });
      containers.add('other', { id: 'same' });
      await create('same');
      await create('same', {}, 'other');
      expect(runtime.created.map((c) => c.namespace)).toEqual([NS, 'other']);
      await expectFailure(create('c-only-here', {}, 'other'), 'not-found');
    });
  });

  describe('Start, Get, List, Wait, Delete', () => {
    it('reports the init process as ctr reads it: Process.id, status names, zero exited_at while running, then the exit', async () => {
      containers.add(NS, { id: 'r1' });
      await create('r1');
      expect(await get('r1')).toMatchObject({ id: 'r1', container_id: '', pid: 100, status: 'CREATED', exit_status: 0, ...IO });
      const started = roundTrip('containerd.services.tasks.v1.StartResponse', await h.Start(wire('containerd.services.tasks.v1.StartRequest', { container_id: 'r1' }), rpc()));
      expect(started.pid).toBe(100);
      const running = await get('r1');
      expect(running.status).toBe('RUNNING');
      expect(Number(running.exited_at?.seconds)).toBe(GO_ZERO_TIME_SECONDS);
      expect(running.exited_at?.nanos).toBe(0);

      const waiting = h.Wait(wire('containerd.services.tasks.v1.WaitRequest', { container_id: 'r1' }), rpc());
      const at = new Date('2026-12-01T10:00:00.250Z');
      runtime.task(NS, 'r1').exit(3, at);
      const waited = roundTrip('containerd.services.tasks.v1.WaitResponse', await waiting);
      expect(waited).toEqual({ exit_status: 3, exited_at: { seconds: at.getTime() / 1000 - 0.25, nanos: 250_000_000 } });
      const stopped = await get('r1');
      expect(stopped).toMatchObject({ status: 'STOPPED', exit_status: 3, exited_at: { seconds: Math.floor(at.getTime() / 1000), nanos: 250_000_000 } });

      const deleted = roundTrip('containerd.services.tasks.v1.DeleteResponse', await h.Delete(wire('containerd.services.tasks.v1.DeleteTaskRequest', { container_id: 'r1' }), rpc()));
      expect(deleted).toEqual({ id: '', pid: 100, exit_status: 3, exited_at: waited.exited_at });
      await expectFailure(h.Get(wire('containerd.services.tasks.v1.GetRequest', { container_id: 'r1' }), rpc()), 'not-found', 'task r1');
      await expectFailure(h.Delete(wire('containerd.services.tasks.v1.DeleteTaskRequest', { container_id: 'r1' }), rpc()), 'not-found', 'task r1');
    });

    it('refuses to delete a running task (FailedPrecondition from the runtime) and keeps it', async () => {
      containers.add(NS, { id: 'r2' });
      await create('r2');
      await h.Start(wire('containerd.services.tasks.v1.StartRequest', { container_id: 'r2' }), rpc());
      await expectFailure(h.Delete(wire('containerd.services.tasks.v1.DeleteTaskRequest', { container_id: 'r2' }), rpc()), 'failed-precondition', 'running');
      expect((await get('r2')).status).toBe('RUNNING');
    });

    it('lists the tasks of the namespace only, each with its Process.id', async () => {
      for (const id of ['l1', 'l2']) containers.add(NS, { id });
      containers.add('elsewhere', { id: 'l3' });
      await create('l1');
      await create('l2');
      await create('l3', {}, 'elsewhere');
      await h.Start(wire('containerd.services.tasks.v1.StartRequest', { container_id: 'l2' }), rpc());
      const list = roundTrip('containerd.services.tasks.v1.ListTasksResponse', await h.List(wire('containerd.services.tasks.v1.ListTasksRequest', {}), rpc()));
      expect(list.tasks.map((t) => [t.id, t.status]).sort()).toEqual([
        ['l1', 'CREATED'],
        ['l2', 'RUNNING'],
      ]);
    });

    it('a Wait ends when the client goes away, and the task is left as it was', async () => {
      containers.add(NS, { id: 'w1' });
      await create('w1');
      await h.Start(wire('containerd.services.tasks.v1.StartRequest', { container_id: 'w1' }), rpc());
      const gone = new AbortController();
      const waiting = h.Wait(wire('containerd.services.tasks.v1.WaitRequest', { container_id: 'w1' }), rpc(NS, gone.signal));
      gone.abort(new DOMException('client went away', 'AbortError'));
      await expect(waiting).rejects.toThrow('client went away');
      expect((await get('w1')).status).toBe('RUNNING');
    });

    it('NotFound for a container without a task, before the runtime is asked to do anything', async () => {
      containers.add(NS, { id: 'idle' });
      for (const call of [
        () => h.Start(wire('containerd.services.tasks.v1.StartRequest', { container_id: 'idle' }), rpc()),
        () => h.Kill(wire('containerd.services.tasks.v1.KillRequest', { container_id: 'idle', signal: 15 }), rpc()),
        () => h.Pause(wire('containerd.services.tasks.v1.PauseTaskRequest', { container_id: 'idle' }), rpc()),
        () => h.Wait(wire('containerd.services.tasks.v1.WaitRequest', { container_id: 'idle' }), rpc()),
        () => h.ListPids(wire('containerd.services.tasks.v1.ListPidsRequest', { container_id: 'idle' }), rpc()),
        () => h.Checkpoint(wire('containerd.services.tasks.v1.CheckpointTaskRequest', { container_id: 'idle' }), rpc()),
      ]) {
        await expectFailure(call(), 'not-found', 'task idle');
      }
      await expectFailure(h.Kill(wire('containerd.services.tasks.v1.KillRequest', { container_id: 'ghost', signal: 15 }), rpc()), 'not-found', 'container "ghost"');
    });
  });

  describe('Exec and the exec-id methods', () => {
    beforeEach(async () => {
      containers.add(NS, { id: 'e' });
      await create('e');
      await h.Start(wire('containerd.services.tasks.v1.StartRequest', { container_id: 'e' }), rpc());
    });

    it('adds, starts, inspects, waits for and deletes an exec process by its id', async () => {
      const execIO = { stdin: '/f/e1-stdin', stdout: '/f/e1-stdout', stderr: '' };
      await h.Exec(wire('containerd.services.tasks.v1.ExecProcessRequest', { container_id: 'e', exec_id: 'e1', spec: PROCESS_SPEC, ...execIO, terminal: true }), rpc());
      const task = runtime.task(NS, 'e');
      expect(task.exec_('e1').io).toEqual({ ...execIO, terminal: true });
      expect(await get('e', 'e1')).toMatchObject({ id: 'e1', status: 'CREATED' });
      const started = await h.Start(wire('containerd.services.tasks.v1.StartRequest', { container_id: 'e', exec_id: 'e1' }), rpc());
      expect(started.pid).toBe(5000);
      expect(await get('e', 'e1')).toMatchObject({ id: 'e1', pid: 5000, status: 'RUNNING' });

      await h.ResizePty(wire('containerd.services.tasks.v1.ResizePtyRequest', { container_id: 'e', exec_id: 'e1', width: 120, height: 40 }), rpc());
      expect(task.exec_('e1').sizes).toEqual([{ width: 120, height: 40 }]);
      await h.CloseIO(wire('containerd.services.tasks.v1.CloseIORequest', { container_id: 'e', exec_id: 'e1', stdin: false }), rpc());
      expect(task.exec_('e1').stdinClosed).toBe(false);
      await h.CloseIO(wire('containerd.services.tasks.v1.CloseIORequest', { container_id: 'e', exec_id: 'e1', stdin: true }), rpc());
      expect(task.exec_('e1').stdinClosed).toBe(true);
      expect(task.stdinClosed).toBe(false);

      const pids = roundTrip('containerd.services.tasks.v1.ListPidsResponse', await h.ListPids(wire('containerd.services.tasks.v1.ListPidsRequest', { container_id: 'e' }), rpc()));
      expect(pids.processes.map((p) => [p.pid, p.info?.type_url ?? null])).toEqual([
        [100, null],
        [5000, 'containerd.runc.v1.ProcessDetails'],
      ]);

      const waiting = h.Wait(wire('containerd.services.tasks.v1.WaitRequest', { container_id: 'e', exec_id: 'e1' }), rpc());
      await h.Kill(wire('containerd.services.tasks.v1.KillRequest', { container_id: 'e', exec_id: 'e1', signal: 9 }), rpc());
      expect((await waiting).exit_status).toBe(137);
      expect(task.signals).toEqual([]);
      const deleted = roundTrip('containerd.services.tasks.v1.DeleteResponse', await h.DeleteProcess(wire('containerd.services.tasks.v1.DeleteProcessRequest', { container_id: 'e', exec_id: 'e1' }), rpc()));
      expect(deleted).toMatchObject({ id: 'e1', pid: 5000, exit_status: 137 });
      await expectFailure(h.Get(wire('containerd.services.tasks.v1.GetRequest', { container_id: 'e', exec_id: 'e1' }), rpc()), 'not-found', 'e1');
      // The init process is untouched.
      expect((await get('e')).status).toBe('RUNNING');
    });

    it('refuses an exec without an id or without a spec, and a second exec of one id', async () => {
      await expectFailure(h.Exec(wire('containerd.services.tasks.v1.ExecProcessRequest', { container_id: 'e', spec: PROCESS_SPEC }), rpc()), 'invalid-argument', 'exec id cannot be empty');
      await expectFailure(h.Exec(wire('containerd.services.tasks.v1.ExecProcessRequest', { container_id: 'e', exec_id: 'x' }), rpc()), 'invalid-argument', 'spec');
      await h.Exec(wire('containerd.services.tasks.v1.ExecProcessRequest', { container_id: 'e', exec_id: 'twice', spec: PROCESS_SPEC }), rpc());
      await expectFailure(h.Exec(wire('containerd.services.tasks.v1.ExecProcessRequest', { container_id: 'e', exec_id: 'twice', spec: PROCESS_SPEC }), rpc()), 'already-exists');
      await expectFailure(h.DeleteProcess(wire('containerd.services.tasks.v1.DeleteProcessRequest', { container_id: 'e' }), rpc()), 'invalid-argument', 'exec id cannot be empty');
      await expectFailure(h.Kill(wire('containerd.services.tasks.v1.KillRequest', { container_id: 'e', exec_id: 'unknown', signal: 9 }), rpc()), 'not-found', 'unknown');
    });
  });

  describe('Kill, Pause, Resume, Update, Checkpoint, Metrics', () => {
    beforeEach(async () => {
      containers.add(NS, { id: 'k' });
      await create('k');
      await h.Start(wire('containerd.services.tasks.v1.StartRequest', { container_id: 'k' }), rpc());
    });

    it('passes the signal and `all` to the init process', async () => {
      await h.Kill(wire('containerd.services.tasks.v1.KillRequest', { container_id: 'k', signal: 15 }), rpc());
      await h.Kill(wire('containerd.services.tasks.v1.KillRequest', { container_id: 'k', signal: 9, all: true }), rpc());
      expect(runtime.task(NS, 'k').signals).toEqual([
        { signal: 15, all: false },
        { signal: 9, all: true },
      ]);
      expect((await get('k')).exit_status).toBe(137);
    });

    it('pauses and resumes, with the runtime refusing a resume of a running task', async () => {
      await h.Pause(wire('containerd.services.tasks.v1.PauseTaskRequest', { container_id: 'k' }), rpc());
      expect((await get('k')).status).toBe('PAUSED');
      await h.Resume(wire('containerd.services.tasks.v1.ResumeTaskRequest', { container_id: 'k' }), rpc());
      expect((await get('k')).status).toBe('RUNNING');
      await expectFailure(h.Resume(wire('containerd.services.tasks.v1.ResumeTaskRequest', { container_id: 'k' }), rpc()), 'failed-precondition', 'not paused');
    });

    it('updates resources and annotations, and refuses an update without resources', async () => {
      const resources = { type_url: 'types.containerd.io/opencontainers/runtime-spec/1/LinuxResources', value: Buffer.from('{"memory":{"limit":33554432}}') };
      await h.Update(wire('containerd.services.tasks.v1.UpdateTaskRequest', { container_id: 'k', resources, annotations: { a: 'b' } }), rpc());
      expect(runtime.task(NS, 'k').updates).toEqual([{ resources: { typeUrl: resources.type_url, value: resources.value }, annotations: { a: 'b' } }]);
      await expectFailure(h.Update(wire('containerd.services.tasks.v1.UpdateTaskRequest', { container_id: 'k' }), rpc()), 'invalid-argument', 'resources');
    });

    it('Checkpoint is NotImplemented with the reason', async () => {
      await expectFailure(h.Checkpoint(wire('containerd.services.tasks.v1.CheckpointTaskRequest', { container_id: 'k' }), rpc()), 'not-implemented', 'CRIU');
    });

    it("Metrics gives the runtime's stats of the tasks matching the filters, skipping those whose stats fail", async () => {
      containers.add(NS, { id: 'm2' });
      await create('m2');
      const all = roundTrip('containerd.services.tasks.v1.MetricsResponse', await h.Metrics(wire('containerd.services.tasks.v1.MetricsRequest', { filters: [] }), rpc()));
      expect(all.metrics.map((m) => m.id).sort()).toEqual(['k', 'm2']);
      const one = roundTrip('containerd.services.tasks.v1.MetricsResponse', await h.Metrics(wire('containerd.services.tasks.v1.MetricsRequest', { filters: ['id==k'] }), rpc()));
      expect(one.metrics).toHaveLength(1);
      expect(one.metrics[0]).toMatchObject({ id: 'k', data: { type_url: 'io.containerd.cgroups.v1.Metrics' } });
      expect(Number(one.metrics[0]!.timestamp?.seconds)).toBeGreaterThan(0);
      runtime.task(NS, 'm2').statsResult = new Error('cgroup gone');
      const skipped = roundTrip('containerd.services.tasks.v1.MetricsResponse', await h.Metrics(wire('containerd.services.tasks.v1.MetricsRequest', { filters: [] }), rpc()));
      expect(skipped.metrics.map((m) => m.id)).toEqual(['k']);
      await expectFailure(h.Metrics(wire('containerd.services.tasks.v1.MetricsRequest', { filters: ['id=='] }), rpc()), 'invalid-argument');
    });

    it("Metrics comes from the task monitor when there is one, and from the shim for a task the monitor cannot find", async () => {
      containers.add(NS, { id: 'm3' });
      await create('m3');
      const asked: string[] = [];
      const monitor: TaskMonitor = {
        stats: async (_ctx, task: Task): Promise<AnyValue> => {
          asked.push(task.id);
          if (task.id === 'm3') throw new NotFoundError(`cgroup of task ${task.id}: not found`);
          return { typeUrl: 'io.containerd.cgroups.v2.Metrics', value: Buffer.from([0x0a, 0x02, 0x08, 0x07]) };
        },
      };
      const service = new TasksService(runtime, containers, snapshotters, nullLogger, monitor);
      const handlers = service.services[0]!.handlers as unknown as Handlers;
      const r = roundTrip('containerd.services.tasks.v1.MetricsResponse', await handlers.Metrics(wire('containerd.services.tasks.v1.MetricsRequest', { filters: [] }), rpc()));
      expect(asked.sort()).toEqual(['k', 'm3']);
      const byId = new Map(r.metrics.map((m) => [m.id, m.data]));
      expect(byId.get('k')).toMatchObject({ type_url: 'io.containerd.cgroups.v2.Metrics' });
      expect(messageCodec('io.containerd.cgroups.v2.Metrics').decode(byId.get('k')!.value).pids?.current).toBe(7);
      // The monitor had no cgroup for m3: the shim's stats stand in.
      expect(byId.get('m3')).toMatchObject({ type_url: 'io.containerd.cgroups.v1.Metrics' });
    });
  });
});
