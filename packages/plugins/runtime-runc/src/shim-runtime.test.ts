// Real shims (Debian's containerd-shim-runc-v2 driving runc), real mounts and cgroups; root only.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { messageCodec } from '@berth/api';
import { expectFailure } from '@berth/core/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RUNC_OPTIONS_TYPE_URL } from './runc-options.js';
import type { ShimRuntime } from './shim-runtime.js';
import {
  FifoReader,
  crunRefusal,
  hasCrun,
  jsonAny,
  leftovers,
  ociSpec,
  processSpec,
  shimPids,
  shimTestEnv,
  skipReason,
  waitUntil,
  type ShimTestEnv,
} from './testing-fixtures/shim-env.js';

const reason = skipReason();
const NO_IO = { stdin: '', stdout: '', stderr: '', terminal: false };

describe.skipIf(reason !== undefined)(`runtime with real shims${reason ? ` (skipped: ${reason})` : ''}`, () => {
  let env: ShimTestEnv;
  let rt: ShimRuntime;
  const ctx = () => ({ namespace: env.namespace });

  beforeEach(async () => {
    env = await shimTestEnv();
    rt = await env.open();
  });
  afterEach(async () => {
    await env.teardown();
  });

  const create = (id: string, args: string[], extra: Partial<Parameters<ShimRuntime['create']>[2]> = {}) =>
    env.ids.add(id) &&
    rt.create(ctx(), id, { spec: ociSpec(env.namespace, id, args), rootfs: env.rootfsMounts, io: NO_IO, runtime: 'io.containerd.runc.v2', ...extra });

  const fifos = async (id: string) => {
    const stdout = await FifoReader.open(join(env.dir, `${id}-stdout`));
    const stderr = await FifoReader.open(join(env.dir, `${id}-stderr`));
    return { stdout, stderr, io: { stdin: '', stdout: stdout.path, stderr: stderr.path, terminal: false } };
  };

  it('creates, starts, reads stdout through FIFOs, waits for exit 3, deletes; events in containerd\'s order; nothing left', async () => {
    const io = await fifos('c1');
    try {
      const task = await create('c1', ['/bin/sh', '-c', 'echo hello; echo oops >&2; exit 3'], { io: io.io });
      const bundle = join(env.stateDir, env.namespace, 'c1');
      expect((await readdir(bundle)).sort()).toEqual(expect.arrayContaining(['address', 'config.json', 'log', 'rootfs', 'shim-binary-path', 'work']));
      // runc's state lives under berthd's runc root, not containerd's /run/containerd/runc.
      expect(existsSync(join(env.runcRoot, env.namespace, 'c1', 'state.json'))).toBe(true);
      expect((await task.state(ctx())).status).toBe('created');
      await task.start(ctx());
      await io.stdout.waitFor('hello\n');
      await io.stderr.waitFor('oops\n');
      const exit = await task.wait(ctx());
      expect(exit.status).toBe(3);
      expect(exit.pid).toBeGreaterThan(0);
      const state = await task.state(ctx());
      expect(state).toMatchObject({ status: 'stopped', exitStatus: 3 });
      const deleted = await rt.delete(ctx(), 'c1');
      expect(deleted.status).toBe(3);
      await env.events.waitFor((e) => e.topic === '/tasks/delete');
      expect(env.events.topics((e) => e.namespace === env.namespace)).toEqual(['/tasks/create', '/tasks/start', '/tasks/exit', '/tasks/delete']);
      const exitEvent = env.events.events.find((e) => e.topic === '/tasks/exit')!;
      expect(exitEvent.event).toMatchObject({ container_id: 'c1', id: 'c1', exit_status: 3 });
      expect(env.events.events.every((e) => e.source === 'shim')).toBe(true);
      await expectFailure(rt.get(ctx(), 'c1'), 'not-found', 'c1');
      await waitUntil(() => shimPids(env.namespace).length === 0, 10_000, 'shim exit');
      expect(leftovers(env)).toEqual({ shims: [], mounts: [], bundles: [], runc: [], sockets: [] });
      expect(existsSync(join(env.rootDir, env.namespace, 'c1'))).toBe(false);
    } finally {
      io.stdout.close();
      io.stderr.close();
    }
  });

  it('kill, exec, pause/resume, pids, and refusal to delete a running task', async () => {
    const task = await create('c2', ['/bin/sleep', '1000']);
    await task.start(ctx());
    expect((await task.state(ctx())).status).toBe('running');
    await expectFailure(rt.create(ctx(), 'c2', { spec: ociSpec(env.namespace, 'c2', ['true']), rootfs: env.rootfsMounts, io: NO_IO, runtime: 'io.containerd.runc.v2' }), 'already-exists');

    const out = await FifoReader.open(join(env.dir, 'e1-stdout'));
    const err = await FifoReader.open(join(env.dir, 'e1-stderr'));
    try {
      const exec = await task.exec(ctx(), 'e1', { spec: jsonAny('types.containerd.io/opencontainers/runtime-spec/1/Process', processSpec(['/bin/sh', '-c', 'echo hi; exit 4'])), io: { stdin: '', stdout: out.path, stderr: err.path, terminal: false } });
      await exec.start(ctx());
      await out.waitFor('hi\n');
      expect((await exec.wait(ctx())).status).toBe(4);
      expect((await task.process(ctx(), 'e1')).id).toBe('e1');
      expect((await exec.delete(ctx())).status).toBe(4);
      await expectFailure(task.process(ctx(), 'e1'), 'not-found');
    } finally {
      out.close();
      err.close();
    }
    await expectFailure(task.exec(ctx(), '../bad', { spec: jsonAny('x', processSpec(['true'])), io: NO_IO }), 'invalid-argument');

    const stats = await task.stats(ctx());
    expect(stats.typeUrl).toMatch(/cgroups/);
    expect(stats.value.length).toBeGreaterThan(0);
    const pids = await task.pids(ctx());
    expect(pids.map((p) => p.pid)).toContain(await task.pid(ctx()));

    await task.pause(ctx());
    expect((await task.state(ctx())).status).toBe('paused');
    await task.resume(ctx());
    expect((await task.state(ctx())).status).toBe('running');

    await expectFailure(rt.delete(ctx(), 'c2'), 'failed-precondition');
    expect((await task.state(ctx())).status).toBe('running');

    await task.kill(ctx(), 9);
    expect((await task.wait(ctx())).status).toBe(137);
    await rt.delete(ctx(), 'c2');
    await env.events.waitFor((e) => e.topic === '/tasks/delete');
    const topics = env.events.topics();
    for (const t of ['/tasks/exec-added', '/tasks/exec-started', '/tasks/paused', '/tasks/resumed']) expect(topics).toContain(t);
    await waitUntil(() => shimPids(env.namespace).length === 0, 10_000, 'shim exit');
    expect(leftovers(env)).toEqual({ shims: [], mounts: [], bundles: [], runc: [], sockets: [] });
  });

  it('drains the shim\'s log FIFO into berthd\'s log', async () => {
    const lines: { msg: string; fields?: Record<string, unknown> }[] = [];
    const record = (msg: string, fields?: Record<string, unknown>) => void lines.push({ msg, ...(fields ? { fields } : {}) });
    const log = { trace: record, debug: record, info: record, warn: record, error: record, child: () => log };
    rt = await env.open({ shim_debug: true }, log);
    const task = await create('c9', ['/bin/true']);
    await task.start(ctx());
    await task.wait(ctx());
    await rt.delete(ctx(), 'c9');
    await waitUntil(() => lines.some((l) => l.msg === 'shim' && /level=debug/.test(String(l.fields?.shim_log))), 10_000, 'shim debug lines');
  });

  it('a command that does not exist fails Create clearly and leaves no shim, mount or bundle', async () => {
    const err = await expectFailure(create('c3', ['/no/such/command']), 'unknown');
    expect(err.message).toMatch(/no such file|not found|executable/i);
    await expectFailure(rt.get(ctx(), 'c3'), 'not-found');
    await waitUntil(() => shimPids(env.namespace).length === 0, 10_000, 'shim exit');
    expect(leftovers(env)).toEqual({ shims: [], mounts: [], bundles: [], runc: [], sockets: [] });
    // The id is free again.
    const task = await create('c3', ['/bin/true']);
    await task.start(ctx());
    expect((await task.wait(ctx())).status).toBe(0);
    await rt.delete(ctx(), 'c3');
  });

  it('bad input fails with an error and leaves nothing behind, and the runtime keeps working', async () => {
    const spec = ociSpec(env.namespace, 'b', ['/bin/true']);
    const bad: [string, Partial<Parameters<ShimRuntime['create']>[2]>][] = [
      ['b1', { spec: { typeUrl: spec.typeUrl, value: Buffer.from('{ not json') } }],
      ['b2', { rootfs: [{ type: 'bind', source: join(env.dir, 'no-such-dir'), options: ['rbind', 'ro'] }] }],
      ['b3', { io: { stdin: '', stdout: join(env.dir, 'no-such-dir', 'out'), stderr: join(env.dir, 'no-such-dir', 'err'), terminal: false } }],
      ['b4', { runtimeOptions: { typeUrl: RUNC_OPTIONS_TYPE_URL, value: Buffer.from([0x0a, 0xff]) } }],
    ];
    for (const [id, extra] of bad) {
      await expect(create(id, ['/bin/true'], extra), id).rejects.toThrow();
      await expectFailure(rt.get(ctx(), id), 'not-found');
    }
    await waitUntil(() => shimPids(env.namespace).length === 0, 10_000, 'shim exit');
    expect(leftovers(env)).toEqual({ shims: [], mounts: [], bundles: [], runc: [], sockets: [] });
    const task = await create('b5', ['/bin/true']);
    await task.start(ctx());
    expect((await task.wait(ctx())).status).toBe(0);
    await rt.delete(ctx(), 'b5');
  });

  it('an unknown runtime fails before anything is made', async () => {
    await expectFailure(create('c4', ['/bin/true'], { runtime: 'io.containerd.nosuch.v1' }), 'not-found', 'containerd-shim-nosuch-v1');
    expect(leftovers(env).bundles).toEqual([]);
  });

  it.skipIf(!hasCrun())('crun stands in for runc through BinaryName', async () => {
    const options = { typeUrl: RUNC_OPTIONS_TYPE_URL, value: messageCodec('containerd.runc.v1.Options').encode({ binary_name: 'crun' }) };
    const io = await fifos('c5');
    try {
      const refusal = crunRefusal();
      if (refusal) {
        // crun cannot run containers on this host: the shim still ran it (its own error comes back) and the
        // failed create leaves nothing behind.
        await expectFailure(create('c5', ['/bin/sh', '-c', 'echo from-crun'], { io: io.io, runtimeOptions: options }), 'unknown', /hybrid mode/);
      } else {
        const task = await create('c5', ['/bin/sh', '-c', 'echo from-crun'], { io: io.io, runtimeOptions: options });
        const runtimeFile = await readFile(join(env.stateDir, env.namespace, 'c5', 'runtime'), 'utf8');
        expect(runtimeFile).toBe('crun');
        await task.start(ctx());
        await io.stdout.waitFor('from-crun\n');
        expect((await task.wait(ctx())).status).toBe(0);
        await rt.delete(ctx(), 'c5');
      }
      await waitUntil(() => shimPids(env.namespace).length === 0, 10_000, 'shim exit');
      expect(leftovers(env)).toEqual({ shims: [], mounts: [], bundles: [], runc: [], sockets: [] });
    } finally {
      io.stdout.close();
      io.stderr.close();
    }
  });

  it('a shim that stops answering gives DeadlineExceeded naming the task, never a hung call', async () => {
    const created = await create('c6', ['/bin/sleep', '1000']);
    await created.start(ctx());
    // A runtime whose deadline is short (reconnecting, so that a slow Create under load does not trip it).
    await rt.close();
    rt = await env.open({ call_timeout_ms: 1000 });
    const task = await rt.get(ctx(), 'c6');
    const [shim] = shimPids(env.namespace, 'c6');
    expect(shim).toBeGreaterThan(0);
    process.kill(shim!, 'SIGSTOP');
    try {
      // The signal is queued at once; the threads stop a moment later.
      await waitUntil(() => /^\d+ \(.*\) T /.test(readFileSync(`/proc/${shim}/stat`, 'utf8')), 5000, 'shim stopped');
      const started = Date.now();
      await expectFailure(task.state(ctx()), 'deadline-exceeded', `task ${env.namespace}/c6: shim did not answer State within 1000 ms`);
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      process.kill(shim!, 'SIGCONT');
    }
    // The shim answers again (back on the default deadlines, so that a loaded machine does not trip them).
    await rt.close();
    rt = await env.open();
    const again = await rt.get(ctx(), 'c6');
    expect((await again.state(ctx())).status).toBe('running');
    await again.kill(ctx(), 9);
    await again.wait(ctx());
    await rt.delete(ctx(), 'c6');
  });

  it('a shim that is slow to answer at recovery is kept, not cleaned up (which would kill its container)', async () => {
    const created = await create('c10', ['/bin/sleep', '1000']);
    await created.start(ctx());
    await rt.close();
    const [shim] = shimPids(env.namespace, 'c10');
    process.kill(shim!, 'SIGSTOP');
    try {
      await waitUntil(() => /^\d+ \(.*\) T /.test(readFileSync(`/proc/${shim}/stat`, 'utf8')), 5000, 'shim stopped');
      rt = await env.open({ load_timeout_ms: 300 });
      expect((await rt.tasks(ctx())).map((t) => t.id)).toEqual(['c10']);
    } finally {
      process.kill(shim!, 'SIGCONT');
    }
    const task = await rt.get(ctx(), 'c10');
    expect((await task.state(ctx())).status).toBe('running');
    await task.kill(ctx(), 9);
    expect((await task.wait(ctx())).status).toBe(137);
    await rt.delete(ctx(), 'c10');
    await waitUntil(() => shimPids(env.namespace).length === 0, 10_000, 'shim exit');
    expect(leftovers(env)).toEqual({ shims: [], mounts: [], bundles: [], runc: [], sockets: [] });
  });

  it('a shim killed with SIGKILL: Wait ends, the task is cleaned up and kept as stopped until deleted', async () => {
    const task = await create('c7', ['/bin/sleep', '1000']);
    await task.start(ctx());
    const waiting = task.wait(ctx());
    const [shim] = shimPids(env.namespace, 'c7');
    process.kill(shim!, 'SIGKILL');
    const exit = await waiting;
    expect(exit.status).toBe(137); // what the shim's delete reports for a task it had to kill
    const state = await task.state(ctx());
    expect(state).toMatchObject({ status: 'stopped', exitStatus: 137 });
    const listed = await rt.tasks(ctx());
    expect(listed.map((t) => t.id)).toEqual(['c7']);
    await expectFailure(task.kill(ctx(), 9), 'not-found', 'c7');
    await expectFailure(task.pause(ctx()), 'failed-precondition', 'c7');
    await expectFailure(task.stats(ctx()), 'not-found', 'c7'); // metrics skip it quietly
    expect(await task.pids(ctx())).toEqual([]);
    // No runc container, no mount, no shim; the bundle stays with the exit until the task is deleted.
    const left = leftovers(env);
    expect({ shims: left.shims, mounts: left.mounts, runc: left.runc, sockets: left.sockets }).toEqual({ shims: [], mounts: [], runc: [], sockets: [] });
    expect(left.bundles).toEqual(['c7']);
    const exitEvent = await env.events.waitFor((e) => e.topic === '/tasks/exit' && e.source === 'runtime');
    expect(exitEvent.event).toMatchObject({ container_id: 'c7', id: 'c7', exit_status: 137 });
    expect((await rt.delete(ctx(), 'c7')).status).toBe(137);
    const deleteEvent = await env.events.waitFor((e) => e.topic === '/tasks/delete');
    expect(deleteEvent).toMatchObject({ source: 'runtime', event: { container_id: 'c7', exit_status: 137 } });
    expect(leftovers(env)).toEqual({ shims: [], mounts: [], bundles: [], runc: [], sockets: [] });
  });

  it('keeps the real exit status of a task whose shim died after it exited', async () => {
    const task = await create('c8', ['/bin/sh', '-c', 'exit 7']);
    await task.start(ctx());
    expect((await task.wait(ctx())).status).toBe(7);
    await waitUntil(() => existsSync(join(env.stateDir, env.namespace, 'c8', 'exit.json')), 5000, 'exit recorded');
    const [shim] = shimPids(env.namespace, 'c8');
    process.kill(shim!, 'SIGKILL');
    await waitUntil(async () => (await rt.get(ctx(), 'c8').then((t) => (t as unknown as { tombstone: boolean }).tombstone)), 10_000, 'cleanup');
    expect(await task.state(ctx())).toMatchObject({ status: 'stopped', exitStatus: 7 });
    expect((await task.wait(ctx())).status).toBe(7);
    // The shim had published /tasks/exit itself: no second one.
    expect(env.events.topics((e) => e.topic === '/tasks/exit')).toHaveLength(1);
    expect((await rt.delete(ctx(), 'c8')).status).toBe(7);
  });

  it('survives a restart: reconnects to running tasks, reports an exit that happened while closed, cleans up dead shims', async () => {
    const live = await create('r1', ['/bin/sleep', '1000']);
    await live.start(ctx());
    const quick = await create('r2', ['/bin/sh', '-c', 'sleep 1; exit 5']);
    await quick.start(ctx());
    const doomed = await create('r3', ['/bin/sleep', '1000']);
    await doomed.start(ctx());
    const livePid = await live.pid(ctx());
    const logFifo = join(env.stateDir, env.namespace, 'r1', 'log');
    const logInode = statSync(logFifo).ino;
    await rt.close(); // berthd goes away; the shims stay
    const [doomedShim] = shimPids(env.namespace, 'r3');
    process.kill(doomedShim!, 'SIGKILL'); // and one shim dies while it is away
    await new Promise((r) => setTimeout(r, 1500)); // r2 exits meanwhile
    expect(shimPids(env.namespace).length).toBe(2);

    rt = await env.open();
    const tasks = await rt.tasks(ctx());
    expect(tasks.map((t) => t.id).sort()).toEqual(['r1', 'r2', 'r3']);
    const r1 = await rt.get(ctx(), 'r1');
    expect(r1.runtime).toBe('io.containerd.runc.v2');
    expect(statSync(logFifo).ino).toBe(logInode); // reopened, never re-created
    expect(await r1.state(ctx())).toMatchObject({ status: 'running', pid: livePid });
    const r2 = await rt.get(ctx(), 'r2');
    expect(await r2.state(ctx())).toMatchObject({ status: 'stopped', exitStatus: 5 });
    expect((await r2.wait(ctx())).status).toBe(5);
    const r3 = await rt.get(ctx(), 'r3');
    expect(await r3.state(ctx())).toMatchObject({ status: 'stopped', exitStatus: 137 });
    expect(env.events.events.find((e) => e.source === 'runtime' && e.topic === '/tasks/exit')?.event).toMatchObject({ container_id: 'r3' });

    // Still manageable: exec, kill, wait, delete.
    const out = await FifoReader.open(join(env.dir, 'x1-stdout'));
    const err = await FifoReader.open(join(env.dir, 'x1-stderr'));
    try {
      const exec = await r1.exec(ctx(), 'x1', { spec: jsonAny('types.containerd.io/opencontainers/runtime-spec/1/Process', processSpec(['/bin/echo', 'after-restart'])), io: { stdin: '', stdout: out.path, stderr: err.path, terminal: false } });
      await exec.start(ctx());
      await out.waitFor('after-restart\n');
      expect((await exec.wait(ctx())).status).toBe(0);
      await exec.delete(ctx());
    } finally {
      out.close();
      err.close();
    }
    await r1.kill(ctx(), 9);
    expect((await r1.wait(ctx())).status).toBe(137);
    for (const id of ['r1', 'r2', 'r3']) await rt.delete(ctx(), id);
    await waitUntil(() => shimPids(env.namespace).length === 0, 10_000, 'shim exit');
    expect(leftovers(env)).toEqual({ shims: [], mounts: [], bundles: [], runc: [], sockets: [] });

    // A second restart finds nothing.
    await rt.close();
    rt = await env.open();
    expect(await rt.tasks(ctx())).toEqual([]);
  });

  it('publishes an exit the shim could not deliver while berthd was down, and not one it could', async () => {
    const lost = await create('l1', ['/bin/sh', '-c', 'sleep 1; exit 6']);
    await lost.start(ctx());
    const delivered = await create('l2', ['/bin/sh', '-c', 'exit 8']);
    await delivered.start(ctx());
    expect((await delivered.wait(ctx())).status).toBe(8); // seen (and recorded) while berthd was up
    const lostPid = await lost.pid(ctx());
    await rt.close();
    await env.events.close(); // berthd is down: no events socket
    await waitUntil(() => !existsSync(`/proc/${lostPid}`), 30_000, 'l1 exit'); // l1 exits meanwhile (its shim reaps it)
    const before = env.events.events.length;
    rt = await env.open({}, undefined, { lostEventAfterMs: 0 });
    const published = env.events.events.slice(before).filter((e) => e.source === 'runtime' && e.topic === '/tasks/exit');
    expect(published.map((e) => e.event)).toEqual([expect.objectContaining({ container_id: 'l1', id: 'l1', exit_status: 6 })]);
    expect(await (await rt.get(ctx(), 'l1')).state(ctx())).toMatchObject({ status: 'stopped', exitStatus: 6 });
    await env.events.listen(env.ttrpcAddress);
    expect((await rt.delete(ctx(), 'l1')).status).toBe(6);
    expect((await rt.delete(ctx(), 'l2')).status).toBe(8);
  });

  it('a stopped task whose shim is gone is still reported after another restart', async () => {
    const task = await create('t1', ['/bin/sh', '-c', 'exit 9']);
    await task.start(ctx());
    expect((await task.wait(ctx())).status).toBe(9);
    await waitUntil(() => existsSync(join(env.stateDir, env.namespace, 't1', 'exit.json')), 5000, 'exit recorded');
    await rt.close();
    process.kill(shimPids(env.namespace, 't1')[0]!, 'SIGKILL');
    await waitUntil(() => shimPids(env.namespace).length === 0, 10_000, 'shim exit');
    rt = await env.open(); // cleans up the dead shim, keeps the exit
    expect(await (await rt.get(ctx(), 't1')).state(ctx())).toMatchObject({ status: 'stopped', exitStatus: 9 });
    await rt.close();
    rt = await env.open(); // the tombstone itself survives a restart
    const t1 = await rt.get(ctx(), 't1');
    expect((await t1.wait(ctx())).status).toBe(9);
    expect((await rt.delete(ctx(), 't1')).status).toBe(9);
    expect(leftovers(env)).toEqual({ shims: [], mounts: [], bundles: [], runc: [], sockets: [] });
  });
});
