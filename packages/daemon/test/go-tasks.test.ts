// Issue 11 with the real containerd 1.6 Go client (test/go/tasks, built offline from Debian's source): a container
// from the project's `tiny` image (imported with ctr, unpacked by the client if it is not yet) made with
// WithNewSnapshot and WithNewSpec(oci.WithImageConfig, oci.WithProcessArgs), its task created with
// cio.NewCreator(cio.WithStreams(...)), Wait subscribed before Start, the output read, the exit status waited for,
// then the task and the container (with its snapshot) deleted; nothing of it is left: no container, task,
// snapshot, bundle or mount. Runs containers with runc, so it needs root.
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage } from '../../../tools/images/index.mjs';
import { goProgram, runGo, skipWithoutGo, type GoFailure } from './go-client.js';
import { ctrTable, expectOk, hasCtr, hasRoot, run, startBerthd, type Berthd } from './harness.js';

const IMAGE = 'docker.io/berth/go-tiny:latest';

interface TaskOut {
  readonly id: string;
  readonly pid: number;
  readonly statusCreated: string;
  readonly statusRunning: string;
  readonly statusExited: string;
  readonly exitCode: number;
  readonly exitedAt: string;
  readonly stdout: string;
  readonly stderr: string;
}

describe.skipIf(skipWithoutGo() || !hasCtr() || !hasRoot())('the containerd Go client runs a task', () => {
  let daemon: Berthd | undefined;
  let scratch: string | undefined;
  let bin: string;
  const ns = `go-tasks-${process.pid}`;
  const go = (args: readonly string[]) => runGo<Partial<TaskOut & GoFailure>>(bin, daemon!.address, ns, args, 120_000);

  beforeAll(async () => {
    bin = await goProgram('tasks');
    scratch = await mkdtemp(join(tmpdir(), 'berth-go-tasks-'));
    const layout = join(scratch, 'tiny');
    await buildImage('tiny', layout);
    const archive = join(scratch, 'tiny.tar');
    expectOk(await run('tar', ['-C', layout, '-cf', archive, '.']), 'tar of the tiny layout');
    daemon = await startBerthd({ logLevel: 'warn' });
    expectOk(await daemon.ctr(['images', 'import', '--base-name', 'docker.io/berth/go-tiny', archive], { namespace: ns, timeoutMs: 120_000 }), 'ctr images import');
  }, 20 * 60_000);
  afterAll(async () => {
    if (daemon) {
      // Whatever a failed run left: tasks killed, containers removed, before the daemon stops.
      const tasks = await daemon.ctr(['tasks', 'ls', '-q'], { namespace: ns });
      for (const id of tasks.stdout.split('\n').filter(Boolean)) await daemon.ctr(['tasks', 'rm', '-f', id], { namespace: ns });
      const containers = await daemon.ctr(['containers', 'ls', '-q'], { namespace: ns });
      for (const id of containers.stdout.split('\n').filter(Boolean)) await daemon.ctr(['containers', 'rm', id], { namespace: ns });
      await daemon.stop();
    }
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }, 120_000);

  /** Asserts nothing of container `id` is left: containers, tasks, its snapshot, its bundle, its mounts. */
  async function expectNothingLeft(id: string): Promise<void> {
    expect(ctrTable(expectOk(await daemon!.ctr(['containers', 'ls'], { namespace: ns })).stdout)).toEqual([]);
    expect(ctrTable(expectOk(await daemon!.ctr(['tasks', 'ls'], { namespace: ns })).stdout)).toEqual([]);
    const snapshots = ctrTable(expectOk(await daemon!.ctr(['snapshots', 'ls'], { namespace: ns })).stdout);
    expect(snapshots.map((s) => s['KEY'])).not.toContain(`${id}-snapshot`);
    expect(existsSync(join(daemon!.state, 'io.containerd.runtime.v2.task', ns, id))).toBe(false);
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(`/${ns}/${id}`) || l.includes(`${id}-snapshot`));
    expect(mounts).toEqual([]);
  }

  it('NewTask with cio streams: stdout and stderr read, the exit status waited for, task and container deleted', async () => {
    const started = Date.now();
    const r = await go(['run', 'gt1', IMAGE, '/bin/sh', '-c', 'echo hello from go; echo to stderr >&2; exit 3']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const out = r.json!;
    expect(out.stdout).toBe('hello from go\n');
    expect(out.stderr).toBe('to stderr\n');
    expect(out.exitCode).toBe(3);
    expect(out.pid).toBeGreaterThan(0);
    expect(out.statusCreated).toBe('created');
    expect(['running', 'stopped']).toContain(out.statusRunning);
    expect(out.statusExited).toBe('stopped');
    // A real exit time: after the run began, not the zero time.
    const exitedAt = Date.parse(out.exitedAt!);
    expect(exitedAt).toBeGreaterThanOrEqual(started - 5_000);
    expect(exitedAt).toBeLessThanOrEqual(Date.now() + 5_000);
    await expectNothingLeft('gt1');
  });

  it("the image config's environment reaches the process (oci.WithImageConfig), and exit 0 is reported as 0", async () => {
    const r = await go(['run', 'gt2', IMAGE, '/bin/sh', '-c', 'echo "$PATH"']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json?.exitCode).toBe(0);
    expect(r.json?.stdout).toMatch(/^\/.*\/bin.*\n$/);
    await expectNothingLeft('gt2');
  });

  it('a command that does not exist fails NewTask with a clear error and leaves nothing behind', async () => {
    const r = await go(['run', 'gt3', IMAGE, '/no/such/command']);
    expect(r.code, r.stdout + r.stderr).toBe(3);
    expect(r.json?.step).toBe('new task');
    expect(r.json?.error).toContain('/no/such/command');
    await expectNothingLeft('gt3');
  });
});
