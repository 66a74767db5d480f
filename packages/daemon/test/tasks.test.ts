// Tasks acceptance: Debian's real ctr runs containers on berthd (Tasks service over runtime-runc, real runc shims,
// real overlayfs, the tiny busybox image imported from an OCI archive), as issue 11's "must work" list says: run
// with exit codes, detached tasks and every `ctr tasks` command on them, terminals under a pty, attach, crun in
// place of runc, the task events in containerd's order, a missing command, and the OOM killer.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unaryCall } from './grpc-raw.js';
import { ctrTable, expectOk, run, watchCtrEvents } from './harness.js';
import { crunRefusal, eventually, hasCrun, hasScript, IMAGE, leakCounts, startTaskFixture, taskTestsSkipReason, type TaskFixture } from './tasks-harness.js';

const skip = taskTestsSkipReason();
const TASKS = 'containerd.services.tasks.v1.Tasks';

describe.skipIf(skip !== undefined)(`ctr run and ctr tasks against berthd${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let fx: TaskFixture;
  beforeAll(async () => {
    fx = await startTaskFixture('tasks');
  });
  afterAll(async () => {
    await fx?.close();
  });

  /** `ctr run` under a pty (`script -qec`), as a terminal user runs it. */
  const underPty = (args: readonly string[]) => {
    const command = ['/usr/bin/ctr', '--address', fx.daemon.address, '--namespace', fx.ns, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    return run('/usr/bin/script', ['-qec', command, '/dev/null'], { timeoutMs: 60_000 });
  };

  it('ctr run --rm prints the output of /bin/echo and exits 0; an exit code of the process is ctr\'s', async () => {
    const echo = await fx.run(['--rm'], 't1', ['/bin/echo', 'hello']);
    expect(echo.code, echo.stderr).toBe(0);
    expect(echo.stdout).toBe('hello\n');
    const three = await fx.run(['--rm'], 't2', ['/bin/sh', '-c', 'echo to-stderr >&2; exit 3']);
    expect(three.code, three.stderr).toBe(3);
    expect(three.stderr).toContain('to-stderr');
    // --rm removed both containers and their tasks.
    expect(expectOk(await fx.ctr(['containers', 'ls', '-q'])).stdout.split('\n')).not.toContain('t1');
    expect((await fx.tasks()).map((t) => t.TASK)).toEqual([]);
  });

  it('a detached task: ls, ps, exec, pause, resume, kill, rm, then containers rm', async () => {
    expectOk(await fx.run(['-d'], 't3', ['sleep', '1000']), 'ctr run -d');
    const listed = (await fx.tasks()).find((t) => t.TASK === 't3');
    expect(listed).toMatchObject({ TASK: 't3', STATUS: 'RUNNING' });
    const pid = Number(listed!.PID);
    expect(pid).toBeGreaterThan(1);
    // The pid ctr shows is the container's init on the host: sleep.
    expect(await run('cat', [`/proc/${pid}/cmdline`]).then((r) => r.stdout.split('\0')[0])).toBe('sleep');

    const ps = ctrTable(expectOk(await fx.ctr(['tasks', 'ps', 't3']), 'ctr tasks ps').stdout);
    expect(ps.map((p) => Number(p.PID))).toContain(pid);

    const exec = await fx.ctr(['tasks', 'exec', '--fifo-dir', fx.fifoDir, '--exec-id', 'e1', 't3', '/bin/echo', 'hi']);
    expect(exec.code, exec.stderr).toBe(0);
    expect(exec.stdout).toBe('hi\n');
    const failing = await fx.ctr(['tasks', 'exec', '--fifo-dir', fx.fifoDir, '--exec-id', 'e2', 't3', '/bin/sh', '-c', 'exit 5']);
    expect(failing.code, failing.stderr).toBe(5);

    // Metrics come from berthd's cgroups monitor (ctr prints a table of them; metrics-cgroups.test.ts has more).
    const metrics = expectOk(await fx.ctr(['tasks', 'metrics', 't3']), 'ctr tasks metrics').stdout;
    expect(metrics).toMatch(/memory\.usage_in_bytes\s+[1-9]\d*/);

    expectOk(await fx.ctr(['tasks', 'pause', 't3']), 'ctr tasks pause');
    expect((await fx.tasks()).find((t) => t.TASK === 't3')?.STATUS).toBe('PAUSED');
    expectOk(await fx.ctr(['tasks', 'resume', 't3']), 'ctr tasks resume');
    expect((await fx.tasks()).find((t) => t.TASK === 't3')?.STATUS).toBe('RUNNING');

    // Deleting a running task is refused and leaves it running.
    const refused = await fx.ctr(['tasks', 'rm', 't3']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/failed precondition|running/);
    expect((await fx.tasks()).find((t) => t.TASK === 't3')?.STATUS).toBe('RUNNING');

    expectOk(await fx.ctr(['tasks', 'kill', '-s', 'SIGKILL', 't3']), 'ctr tasks kill');
    await eventually('t3 to stop', async () => ((await fx.tasks()).find((t) => t.TASK === 't3')?.STATUS === 'STOPPED' ? true : undefined));
    const rm = await fx.ctr(['tasks', 'rm', 't3']);
    expect(rm.code, rm.stderr).toBe(0);
    expect(rm.stderr).toContain('137');
    expectOk(await fx.ctr(['containers', 'rm', 't3']), 'ctr containers rm');
    expect((await fx.tasks()).map((t) => t.TASK)).not.toContain('t3');
  });

  it.skipIf(!hasScript())('ctr run -t and ctr tasks exec -t give the process a terminal (under a pty)', async () => {
    const tty = await underPty(['run', '--fifo-dir', fx.fifoDir, '-t', '--rm', IMAGE, 't4', '/bin/sh', '-c', 'tty; stty size; exit 6']);
    expect(tty.code, tty.stdout + tty.stderr).toBe(6);
    expect(tty.stdout).toMatch(/\/dev\/pts\/\d+/);
    fx.ids.add('t4');

    expectOk(await fx.run(['-d'], 't4x', ['sleep', '1000']), 'ctr run -d');
    const exec = await underPty(['tasks', 'exec', '--fifo-dir', fx.fifoDir, '-t', '--exec-id', 'tty1', 't4x', '/bin/sh', '-c', 'tty; exit 0']);
    expect(exec.code, exec.stdout + exec.stderr).toBe(0);
    expect(exec.stdout).toMatch(/\/dev\/pts\/\d+/);
    expectOk(await fx.ctr(['tasks', 'kill', '-s', 'SIGKILL', 't4x']));
    await eventually('t4x to stop', async () => ((await fx.tasks()).find((t) => t.TASK === 't4x')?.STATUS === 'STOPPED' ? true : undefined));
    expectOk(await fx.ctr(['tasks', 'rm', 't4x']));
    expectOk(await fx.ctr(['containers', 'rm', 't4x']));
  });

  it("ctr tasks attach reopens a detached task's FIFOs (the stdio paths Tasks.Get reports) and sees its output", async () => {
    expectOk(await fx.run(['-d'], 't5', ['/bin/sh', '-c', 'i=0; while [ $i -lt 600 ]; do echo tick-$i; i=$((i+1)); sleep 0.1; done']), 'ctr run -d');
    const attach = spawn('/usr/bin/ctr', ['--address', fx.daemon.address, '--namespace', fx.ns, 'tasks', 'attach', 't5'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    attach.stdout.on('data', (d: Buffer) => (out += d.toString()));
    attach.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => attach.once('close', (code) => resolve(code)));
    try {
      await eventually('attach to print ticks', () => (/tick-\d+\n.*tick-\d+/s.test(out) ? true : undefined));
      expectOk(await fx.ctr(['tasks', 'kill', '-s', 'SIGKILL', 't5']));
      // attach ends with the task, with its exit code, and deletes the task as it goes (ctr's attach does).
      expect(await exited).toBe(137);
    } finally {
      attach.kill('SIGKILL');
    }
    expect((await fx.tasks()).map((t) => t.TASK)).not.toContain('t5');
    expectOk(await fx.ctr(['containers', 'rm', 't5']));
  });

  it.skipIf(!hasCrun())('ctr run --runtime io.containerd.runc.v2 --runc-binary crun hands the container to crun (its output, or on a hybrid-cgroup host its own refusal), leaving nothing', async () => {
    const before = leakCounts(fx);
    const r = await fx.run(['--rm', '--runtime', 'io.containerd.runc.v2', '--runc-binary', 'crun'], 't6', ['/bin/sh', '-c', 'echo from-crun; exit 2']);
    const refusal = crunRefusal();
    if (refusal) {
      // crun cannot run containers on this host (see crunRefusal): the shim ran crun, whose own error comes back.
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/hybrid/);
      await fx.ctr(['tasks', 'rm', '-f', 't6']);
      await fx.ctr(['containers', 'rm', 't6']);
    } else {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stdout).toBe('from-crun\n');
    }
    expect(leakCounts(fx)).toEqual(before);
  });

  it("ctr events shows /tasks/create, /tasks/start, /tasks/exit (with the exit status) and /tasks/delete in containerd's order", async () => {
    const events = await watchCtrEvents(fx.daemon);
    try {
      const r = await fx.run(['--rm'], 't7', ['/bin/sh', '-c', 'exit 4']);
      expect(r.code, r.stderr).toBe(4);
      const lines = await eventually('the container delete event', () => {
        const mine = events
          .output()
          .split('\n')
          .filter((l) => l.includes(` ${fx.ns} /tasks/`) || l.includes(` ${fx.ns} /containers/`))
          .filter((l) => l.includes('"t7"'));
        return mine.some((l) => l.includes('/containers/delete')) ? mine : undefined;
      });
      const topics = lines.map((l) => l.split(' ').find((w) => w.startsWith('/'))!);
      expect(topics).toEqual(['/containers/create', '/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete', '/containers/delete']);
      const exit = JSON.parse(lines[3]!.slice(lines[3]!.indexOf('{'))) as { container_id: string; id: string; pid: number; exit_status: number; exited_at: string };
      expect(exit).toMatchObject({ container_id: 't7', id: 't7', exit_status: 4 });
      expect(exit.pid).toBeGreaterThan(1);
      const del = JSON.parse(lines[4]!.slice(lines[4]!.indexOf('{'))) as { container_id: string; exit_status: number; pid: number };
      expect(del).toMatchObject({ container_id: 't7', exit_status: 4, pid: exit.pid });
    } finally {
      events.stop();
    }
  });

  it('a command that does not exist fails with a clear error and leaves no shim, mount, bundle or FIFO behind', async () => {
    const before = leakCounts(fx);
    const r = await fx.run(['--rm'], 't8', ['/no/such/command']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/no such file or directory|not found/i);
    expect(r.stderr).toContain('/no/such/command');
    // ctr's --rm removed the container after the failed create; the failed create left nothing on the host.
    expect(expectOk(await fx.ctr(['containers', 'ls', '-q'])).stdout.split('\n')).not.toContain('t8');
    expect((await fx.tasks()).map((t) => t.TASK)).not.toContain('t8');
    expect(leakCounts(fx)).toEqual(before);
    // berthd is still up and runs the next container.
    expect((await fx.run(['--rm'], 't8b', ['/bin/echo', 'still-up'])).stdout).toBe('still-up\n');
  });

  it('ctr run --memory-limit 33554432 of a process allocating more is OOM-killed, and /tasks/oom is published', async () => {
    const events = await watchCtrEvents(fx.daemon);
    try {
      // 64 MiB of a shell variable: busybox sh grows its heap past the 32 MiB limit.
      const r = await fx.run(['--rm', '--memory-limit', '33554432'], 't9', ['/bin/sh', '-c', 'x=0123456789abcdef; while :; do x=$x$x; done']);
      expect(r.code).toBe(137);
      await eventually('/tasks/oom for t9', () => (events.output().split('\n').some((l) => l.includes('/tasks/oom') && l.includes('"t9"')) ? true : undefined));
    } finally {
      events.stop();
    }
  });

  it("answers bad requests with containerd's codes and keeps serving; a Create without rootfs mounts the container's snapshot", async () => {
    const call = <T>(method: string, request: unknown, namespace: string | null = fx.ns) =>
      unaryCall<T>(fx.daemon.address, TASKS, method, request, namespace ? { 'containerd-namespace': namespace } : {});
    const unknown = await call('Get', { container_id: 'nope' });
    expect(unknown.error?.code).toBe(5);
    expect(unknown.error?.details).toBe(`container "nope" in namespace "${fx.ns}": not found`);
    expect((await call('Get', { container_id: 'nope' }, null)).error?.code).toBe(9);

    // A container with a snapshot and no task (ctr containers create prepares the snapshot).
    expectOk(await fx.ctr(['containers', 'create', IMAGE, 'tw', 'sleep', '1000']), 'ctr containers create');
    fx.ids.add('tw');
    const noTask = await call('Get', { container_id: 'tw' });
    expect(noTask.error?.code).toBe(5);
    expect(noTask.error?.details).toBe('task tw: not found');

    // No rootfs and no stdio in the request: the task runs on the container's snapshot, its output discarded.
    const created = await call<{ container_id: string; pid: number }>('Create', { container_id: 'tw' });
    expect(created.error?.details).toBeUndefined();
    expect(created.response).toMatchObject({ container_id: 'tw' });
    expect(created.response!.pid).toBeGreaterThan(1);
    expect((await call('Create', { container_id: 'tw' })).error).toMatchObject({ code: 6, details: 'task tw: already exists' });
    expect((await call<{ pid: number }>('Start', { container_id: 'tw' })).response?.pid).toBe(created.response!.pid);
    expect(expectOk(await run('cat', [`/proc/${created.response!.pid}/cmdline`])).stdout.split('\0')[0]).toBe('sleep');

    expect((await call('Exec', { container_id: 'tw', exec_id: '' })).error).toMatchObject({ code: 3, details: 'exec id cannot be empty: invalid argument' });
    expect((await call('Checkpoint', { container_id: 'tw' })).error?.code).toBe(12);
    expect((await call('Kill', { container_id: 'tw', exec_id: 'no-such-exec', signal: 9 })).error?.code).toBe(5);
    expect((await call('Delete', { container_id: 'tw' })).error?.code).toBe(9);
    // After all that the task is as it was, and berthd answers.
    expect((await fx.tasks()).find((t) => t.TASK === 'tw')?.STATUS).toBe('RUNNING');

    const waiting = call<{ exit_status: number }>('Wait', { container_id: 'tw' });
    expect((await call('Kill', { container_id: 'tw', signal: 9 })).error).toBeUndefined();
    expect((await waiting).response?.exit_status).toBe(137);
    const deleted = await call<{ exit_status: number; pid: number }>('Delete', { container_id: 'tw' });
    expect(deleted.response).toMatchObject({ exit_status: 137, pid: created.response!.pid });
    expectOk(await fx.ctr(['containers', 'rm', 'tw']), 'ctr containers rm');
  });

  it('two Creates of one container at once: one task, the other AlreadyExists, nothing left over once it is deleted', async () => {
    const call = <T>(method: string, request: unknown) => unaryCall<T>(fx.daemon.address, TASKS, method, request, { 'containerd-namespace': fx.ns });
    expectOk(await fx.ctr(['containers', 'create', IMAGE, 'tc', 'sleep', '1000']), 'ctr containers create');
    fx.ids.add('tc');
    const before = leakCounts(fx);
    const both = await Promise.all([call('Create', { container_id: 'tc' }), call('Create', { container_id: 'tc' })]);
    expect(both.map((r) => r.error?.code ?? 0).sort()).toEqual([0, 6]);
    expect((await fx.tasks()).filter((t) => t.TASK === 'tc')).toHaveLength(1);
    expect((await call('Kill', { container_id: 'tc', signal: 9 })).error).toBeUndefined();
    expect((await call<{ exit_status: number }>('Wait', { container_id: 'tc' })).response?.exit_status).toBe(137);
    expect((await call('Delete', { container_id: 'tc' })).error).toBeUndefined();
    await eventually('the shim to exit', () => (leakCounts(fx).shims.length === before.shims.length ? true : undefined), 5000);
    expect(leakCounts(fx)).toEqual(before);
    expectOk(await fx.ctr(['containers', 'rm', 'tc']), 'ctr containers rm');
  });
});
