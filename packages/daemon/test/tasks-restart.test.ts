// Tasks across a berthd crash: with 5 containers running, SIGKILL berthd and start it again on the same dirs; the
// tasks are still RUNNING in `ctr tasks ls` and can be exec'd into, killed, waited for and removed, and a container
// that exited while berthd was down reports its exit status (containerd loses that one: its issues #10390, #6737).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOk } from './harness.js';
import { unaryCall } from './grpc-raw.js';
import { eventually, leakCounts, startTaskFixture, taskTestsSkipReason, type TaskFixture } from './tasks-harness.js';

const skip = taskTestsSkipReason();
const TASKS = 'containerd.services.tasks.v1.Tasks';

describe.skipIf(skip !== undefined)(`tasks survive a berthd crash${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let fx: TaskFixture;
  beforeAll(async () => {
    fx = await startTaskFixture('tasks-restart');
  });
  afterAll(async () => {
    await fx?.close();
  });

  it('5 running containers stay RUNNING and manageable after SIGKILL of berthd, and an exit while it was down is kept', async () => {
    const before = leakCounts(fx);
    const ids = ['r1', 'r2', 'r3', 'r4', 'r5'];
    for (const id of ids) expectOk(await fx.run(['-d'], id, ['sleep', '1000']), `ctr run -d ${id}`);
    // One more that exits on its own a moment after berthd is gone.
    expectOk(await fx.run(['-d'], 'r6', ['/bin/sh', '-c', 'sleep 2; exit 7']), 'ctr run -d r6');
    const pids = new Map((await fx.tasks()).map((t) => [t.TASK!, t.PID!]));

    await fx.daemon.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 3000));
    await fx.restart(false);

    const after = await fx.tasks();
    for (const id of ids) expect(after.find((t) => t.TASK === id), `${id} after the restart`).toMatchObject({ STATUS: 'RUNNING', PID: pids.get(id) });
    expect(after.find((t) => t.TASK === 'r6')).toMatchObject({ STATUS: 'STOPPED' });
    const r6 = await unaryCall<{ exit_status: number }>(fx.daemon.address, TASKS, 'Wait', { container_id: 'r6' }, { 'containerd-namespace': fx.ns });
    expect(r6.error?.message).toBeUndefined();
    expect(r6.response?.exit_status).toBe(7);

    for (const id of ids) {
      const exec = await fx.ctr(['tasks', 'exec', '--fifo-dir', fx.fifoDir, '--exec-id', `x-${id}`, id, '/bin/echo', `in-${id}`]);
      expect(exec.code, exec.stderr).toBe(0);
      expect(exec.stdout).toBe(`in-${id}\n`);
    }
    for (const id of ids) {
      const waiting = unaryCall<{ exit_status: number }>(fx.daemon.address, TASKS, 'Wait', { container_id: id }, { 'containerd-namespace': fx.ns });
      expectOk(await fx.ctr(['tasks', 'kill', '-s', 'SIGKILL', id]), `ctr tasks kill ${id}`);
      const waited = await waiting;
      expect(waited.error?.message).toBeUndefined();
      expect(waited.response?.exit_status).toBe(137);
    }
    for (const id of [...ids, 'r6']) {
      const rm = await fx.ctr(['tasks', 'rm', id]);
      expect(rm.code, rm.stderr).toBe(0);
      expect(rm.stderr).toContain(id === 'r6' ? 'exit code 7' : 'exit code 137');
      expectOk(await fx.ctr(['containers', 'rm', id]), `ctr containers rm ${id}`);
    }
    expect(await fx.tasks()).toEqual([]);
    await eventually('the shims to go', () => (leakCounts(fx).shims.length === before.shims.length ? true : undefined));
    expect(leakCounts(fx)).toEqual(before);
  });
});
