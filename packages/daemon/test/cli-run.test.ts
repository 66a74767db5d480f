// `berth run` and `berth tasks …` (the built CLI) against a real berthd running real containers through
// containerd-shim-runc-v2 and runc, on the project's own busybox image: output, stdin, exit codes (a signal as
// 128 + n), --rm leaving nothing behind, -d with tasks ls/ps/exec/pause/resume/kill/wait/rm, -t under a pty
// (script), --user/--env/--memory in the process, and the stored spec next to the one Debian's ctr makes.
// Build first (the daemon and the CLI). Needs root, runc and the shim.
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage } from '../../../tools/images/index.mjs';
import { CLI_MAIN, ctrTable, DAEMON_MAIN, expectOk, hasCtr, hasRoot, QUIET_GC, run, startBerthd, type Berthd, type RunResult } from './harness.js';

const ready =
  hasRoot() && hasCtr() && existsSync(DAEMON_MAIN) && existsSync(CLI_MAIN) && existsSync('/usr/bin/runc') && existsSync('/usr/bin/containerd-shim-runc-v2') && existsSync('/bin/busybox');

const IMAGE = 'test.local/busybox:latest';

// Each step starts a CLI process (and a container); the bounds only catch a stall on a loaded machine.
describe.skipIf(!ready)('berth run and berth tasks against berthd', { timeout: 180_000 }, () => {
  let daemon: Berthd;
  let work: string;
  let fifoDir: string;
  const ns = `run-${process.pid}`;

  const berth = (args: readonly string[], input?: string): Promise<RunResult> => daemon.berth(['-n', ns, ...args], { timeoutMs: 120_000, input: input ?? '' });
  const ok = async (args: readonly string[], input?: string): Promise<RunResult> => expectOk(await berth(args, input), `berth ${args.join(' ')}`);
  const tasks = async () => ctrTable(expectOk(await daemon.ctr(['tasks', 'ls'], { namespace: ns })).stdout);
  const containerIds = async () => ctrTable(expectOk(await daemon.ctr(['containers', 'ls'], { namespace: ns })).stdout).map((r) => r.CONTAINER);
  /** Mounts under this daemon's dirs (container rootfs, temporary user-lookup mounts). */
  const ownMounts = async () => (await readFile('/proc/self/mounts', 'utf8')).split('\n').filter((l) => l.includes(daemon.dir) || l.includes('berth-rootfs-'));
  const runArgs = (...rest: string[]) => ['run', '--fifo-dir', fifoDir, ...rest];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'berth-run-it-'));
    const tiny = await buildImage('tiny', join(work, 'tiny'));
    daemon = await startBerthd({ config: QUIET_GC });
    fifoDir = join(daemon.dir, 'fifo');
    expectOk(await run('tar', ['-cf', join(work, 'tiny.tar'), '-C', tiny.dir, 'oci-layout', 'index.json', 'blobs']), 'tar');
    await ok(['images', 'import', '--base-name', 'test.local/busybox', join(work, 'tiny.tar')]);
  }, 180_000);

  afterAll(async () => {
    // Whatever a failed test left: its tasks killed and deleted, its containers removed, before berthd stops.
    if (daemon?.alive) {
      for (const t of await tasks().catch(() => [])) await daemon.ctr(['tasks', 'rm', '-f', t.TASK as string], { namespace: ns });
      for (const id of await containerIds().catch(() => [])) await daemon.ctr(['containers', 'rm', id as string], { namespace: ns });
    }
    await daemon?.stop();
    if (work) await rm(work, { recursive: true, force: true });
    // runc removes /<ns>/<id> but leaves the namespace's (empty) parent cgroup in every hierarchy, as under containerd.
    for (const h of await readdir('/sys/fs/cgroup').catch(() => [] as string[])) {
      for (const dir of [join('/sys/fs/cgroup', h, ns), join('/sys/fs/cgroup', ns)]) await rmdir(dir).catch(() => undefined);
    }
  });

  it('run --rm prints the output, exits 0 and leaves no container, task, FIFO or mount behind', async () => {
    const r = await ok(runArgs('--rm', IMAGE, 'r1', 'echo', 'hello'));
    expect(r.stdout).toBe('hello\n');
    expect(await containerIds()).toEqual([]);
    expect(await tasks()).toEqual([]);
    expect(await readdir(fifoDir)).toEqual([]);
    expect(await ownMounts()).toEqual([]);
  });

  it('propagates exit codes; a command line keeps its own flags', async () => {
    const r = await berth(runArgs('--rm', IMAGE, 'r2', 'sh', '-c', 'echo out; echo err >&2; exit 3'));
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toBe('err\n');
  });

  it('copies stdin to the process and closes it at EOF (cat ends)', async () => {
    const r = await ok(runArgs('--rm', IMAGE, 'r3', 'cat'), 'line one\nline two\n');
    expect(r.stdout).toBe('line one\nline two\n');
  });

  it('a process killed by a signal exits 128 + n', async () => {
    const running = berth(runArgs('--rm', IMAGE, 'r4', 'sleep', '1000'));
    const deadline = Date.now() + 60_000;
    while (!(await tasks()).some((t) => t.TASK === 'r4' && t.STATUS === 'RUNNING')) {
      if (Date.now() > deadline) throw new Error('r4 never ran');
      await new Promise((r) => setTimeout(r, 100));
    }
    await ok(['tasks', 'kill', '-s', 'SIGKILL', 'r4']);
    const r = await running;
    expect(r.code, r.stderr).toBe(137);
    expect(await containerIds()).toEqual([]);
  });

  it('-d, then tasks ls, ps, exec, pause, resume, kill, wait, rm and containers rm', async () => {
    const started = await ok(runArgs('-d', IMAGE, 'd1', 'sleep', '1000'));
    expect(started.stdout).toBe('');
    const listed = await ok(['tasks', 'ls']);
    const row = listed.stdout.split('\n')[1]?.trim().split(/\s+/);
    expect(row?.[0]).toBe('d1');
    expect(row?.[2]).toBe('RUNNING');
    const pid = row?.[1] as string;
    expect((await ok(['tasks', 'ps', 'd1'])).stdout).toContain(pid);
    const exec = await berth(['tasks', 'exec', '--fifo-dir', fifoDir, '--exec-id', 'e1', 'd1', 'sh', '-c', 'echo hi from exec; exit 5']);
    expect(exec.code).toBe(5);
    expect(exec.stdout).toBe('hi from exec\n');
    await ok(['tasks', 'pause', 'd1']);
    expect((await tasks()).find((t) => t.TASK === 'd1')?.STATUS).toBe('PAUSED');
    await ok(['tasks', 'resume', 'd1']);
    expect((await tasks()).find((t) => t.TASK === 'd1')?.STATUS).toBe('RUNNING');
    // A running task is not deleted without --force.
    const refused = await berth(['tasks', 'rm', 'd1']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/must be stopped/);
    await ok(['tasks', 'kill', '-s', 'KILL', 'd1']);
    expect((await ok(['tasks', 'wait', 'd1'])).stdout).toBe('137\n');
    await ok(['tasks', 'rm', 'd1']);
    expect(await tasks()).toEqual([]);
    await ok(['containers', 'rm', 'd1']);
    expect(await containerIds()).toEqual([]);
    // The detached run's FIFOs went with its task.
    expect(await readdir(fifoDir)).toEqual([]);
  });

  it('containers rm of a container whose detached task exited deletes the task and its FIFOs', async () => {
    await ok(runArgs('-d', IMAGE, 'd2', 'true'));
    expect((await ok(['tasks', 'wait', 'd2'])).stdout).toBe('0\n');
    expect((await readdir(fifoDir)).length).toBe(1);
    await ok(['containers', 'rm', 'd2']);
    expect(await tasks()).toEqual([]);
    expect(await containerIds()).toEqual([]);
    expect(await readdir(fifoDir)).toEqual([]);
  });

  it('tasks attach copies a detached task\'s output and exits with its status; tasks start runs a created container', async () => {
    await ok(runArgs('-d', IMAGE, 'a1', 'sh', '-c', 'read line; echo "got $line"; exit 7'));
    const attached = await berth(['tasks', 'attach', 'a1'], 'through attach\n');
    expect(attached.code, attached.stderr).toBe(7);
    expect(attached.stdout).toBe('got through attach\n');
    await ok(['tasks', 'rm', 'a1']);
    await ok(['containers', 'rm', 'a1']);
    await ok(['containers', 'create', IMAGE, 's1', 'sh', '-c', 'echo started; exit 2']);
    const started = await berth(['tasks', 'start', '--fifo-dir', fifoDir, 's1']);
    expect(started.code, started.stderr).toBe(2);
    expect(started.stdout).toBe('started\n');
    expect(await tasks()).toEqual([]);
    await ok(['containers', 'rm', 's1']);
    expect(await readdir(fifoDir)).toEqual([]);
  });

  it('-t runs the process on a terminal (under a pty) and still propagates the exit code', async () => {
    const line = [process.execPath, CLI_MAIN, '--address', daemon.address, '-n', ns, ...runArgs('-t', '--rm', IMAGE, 't1', 'sh', '-c', "'tty; exit 4'")].join(' ');
    const r = await run('script', ['-qec', line, '/dev/null'], { timeoutMs: 120_000 });
    expect(r.code, r.stdout).toBe(4);
    expect(r.stdout).toMatch(/\/dev\/pts\/\d+/);
    expect(await containerIds()).toEqual([]);
  });

  it('--user (names from the image), --env and --memory reach the process', async () => {
    const r = await ok(runArgs('--rm', '--user', 'nobody', '--env', 'GREETING=hi', '--memory', '64m', IMAGE, 'u1', 'sh', '-c', 'id -u; echo $GREETING; cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max'));
    expect(r.stdout.split('\n').slice(0, 3)).toEqual(['65534', 'hi', String(64 * 1024 * 1024)]);
    const unknown = await berth(runArgs('--rm', '--user', 'ghost', IMAGE, 'u2', 'true'));
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/ghost/);
    expect(await containerIds()).toEqual([]);
    expect(await ownMounts()).toEqual([]);
  });

  it('a command that does not exist fails with the runtime error and --rm leaves nothing', async () => {
    const r = await berth(runArgs('--rm', IMAGE, 'n1', '/no/such/command'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no such file or directory/);
    expect(await containerIds()).toEqual([]);
    expect(await tasks()).toEqual([]);
    expect(await readdir(fifoDir)).toEqual([]);
    const noImage = await berth(runArgs('--rm', 'test.local/none:latest', 'n2', 'true'));
    expect(noImage.code).toBe(1);
    expect(noImage.stderr).toMatch(/not found/);
  });

  it("stores a spec with ctr's defaults: the same process, mounts and linux section as ctr containers create", async () => {
    expectOk(await daemon.ctr(['containers', 'create', IMAGE, 'by-ctr', 'sleep', '1000'], { namespace: ns }));
    await ok(runArgs('-d', IMAGE, 'by-berth', 'sleep', '1000'));
    const spec = async (id: string) => (JSON.parse(expectOk(await daemon.ctr(['containers', 'info', id], { namespace: ns })).stdout) as { Spec: Record<string, any> }).Spec;
    const [c, b] = [await spec('by-ctr'), await spec('by-berth')];
    expect(b.ociVersion).toBe(c.ociVersion);
    expect(b.process).toEqual(c.process);
    expect(b.root).toEqual(c.root);
    // berth adds the read-only cgroup mount (as containerd's CRI does); the others are containerd's defaults.
    expect(b.mounts.filter((m: { destination: string }) => m.destination !== '/sys/fs/cgroup')).toEqual(c.mounts);
    expect(b.linux.cgroupsPath).toBe(`/${ns}/by-berth`);
    expect(c.linux.cgroupsPath).toBe(`/${ns}/by-ctr`);
    for (const key of ['namespaces', 'maskedPaths', 'readonlyPaths']) expect(b.linux[key]).toEqual(c.linux[key]);
    // ctr always sets cpu shares 1024 (its flag's default); berth only when asked.
    expect(b.linux.resources.devices).toEqual(c.linux.resources.devices);
    expect(b.hostname).toBe('by-berth');
    await ok(['tasks', 'kill', '-s', 'KILL', 'by-berth']);
    await ok(['tasks', 'wait', 'by-berth']);
    await ok(['tasks', 'rm', 'by-berth']);
    await ok(['containers', 'rm', 'by-berth']);
    expectOk(await daemon.ctr(['containers', 'rm', 'by-ctr'], { namespace: ns }));
  });
});
