import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { messageCodec } from '@berth/api';
import { NotFoundError, nullLogger, renderPrometheus, type Container, type ContainerStore, type PlatformRuntime, type Task } from '@berth/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CgroupsMonitor } from './cgroups-monitor.js';
import { parseHierarchy } from './hierarchy.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'berth-cgmon-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A stand-in task: only what the monitor reads (identity and pid). */
function fakeTask(id: string, namespace: string, pid: number): Task {
  return { id, namespace, runtime: 'io.containerd.runc.v2', pid: async () => pid } as unknown as Task;
}

function fakeRuntime(tasks: Task[]): PlatformRuntime {
  return { id: 'task', tasks: async () => [...tasks] } as unknown as PlatformRuntime;
}

async function v2Tree(mount: string, path: string, usageUsec: number, memory: number): Promise<void> {
  const dir = join(mount, path);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'cpu.stat'), `usage_usec ${usageUsec}\nuser_usec ${usageUsec - 10}\nsystem_usec 10\n`);
  await writeFile(join(dir, 'memory.current'), `${memory}\n`);
  await writeFile(join(dir, 'memory.max'), 'max\n');
  await writeFile(join(dir, 'pids.current'), '1\n');
  await writeFile(join(dir, 'pids.max'), 'max\n');
}

describe('CgroupsMonitor on a cgroup v2 fixture tree', () => {
  it('finds tasks by spec cgroupsPath or init pid, serves Tasks.Metrics data and per-container series, and forgets deleted tasks', async () => {
    const mount = join(root, 'cgroup');
    const proc = join(root, 'proc');
    const hierarchy = parseHierarchy(`26 22 0:23 / ${mount} rw - cgroup2 cgroup2 rw\n`)!;
    await v2Tree(mount, 'default/web', 1500, 4096);
    await v2Tree(mount, 'other/job', 700, 8192);
    await mkdir(join(proc, '4242'), { recursive: true });
    await writeFile(join(proc, '4242', 'cgroup'), '0::/other/job\n');
    const web = fakeTask('web', 'default', 1);
    const job = fakeTask('job', 'other', 4242);
    const tasks = [job, web];
    const spec = (cgroupsPath: string) => ({ typeUrl: 'spec', value: Buffer.from(JSON.stringify({ linux: { cgroupsPath } })) });
    const containers = {
      get: async (ctx: { namespace: string }, id: string) => {
        if (ctx.namespace === 'default' && id === 'web') return { id, spec: spec('/default/web') } as unknown as Container;
        throw new NotFoundError(`container ${id}: not found`);
      },
    } as unknown as ContainerStore;
    const monitor = new CgroupsMonitor({ hierarchy, runtime: fakeRuntime(tasks), containers, log: nullLogger, concurrency: 2, procRoot: proc });

    const any = await monitor.stats({ namespace: 'default' }, web);
    expect(any.typeUrl).toBe('io.containerd.cgroups.v2.Metrics');
    expect(messageCodec('io.containerd.cgroups.v2.Metrics').decode(any.value)).toMatchObject({ cpu: { usage_usec: 1500 }, memory: { usage: 4096 } });
    const viaPid = messageCodec('io.containerd.cgroups.v2.Metrics').decode((await monitor.stats({ namespace: 'other' }, job)).value);
    expect(viaPid.memory?.usage).toBe(8192);

    let text = renderPrometheus(await monitor.collect());
    expect(text).toContain('container_cpu_usage_usec_microseconds{container_id="web",namespace="default",runtime="io.containerd.runc.v2"} 1500');
    expect(text).toContain('container_memory_usage_bytes{container_id="job",namespace="other",runtime="io.containerd.runc.v2"} 8192');
    expect(text).toContain('# TYPE container_memory_usage_bytes gauge');

    // The figures are read at each scrape.
    await writeFile(join(mount, 'default/web', 'cpu.stat'), 'usage_usec 9000\n');
    text = renderPrometheus(await monitor.collect());
    expect(text).toContain('container_cpu_usage_usec_microseconds{container_id="web",namespace="default",runtime="io.containerd.runc.v2"} 9000');

    // A deleted task has no series at the next scrape; a task whose cgroup vanished is skipped (NotFound for Metrics).
    tasks.splice(tasks.indexOf(job), 1);
    await rm(join(mount, 'default/web'), { recursive: true });
    text = renderPrometheus(await monitor.collect());
    expect(text).not.toContain('container_id="job"');
    expect(text).not.toContain('container_id="web"');
    await expect(monitor.stats({ namespace: 'default' }, web)).rejects.toMatchObject({ errdef: 'not-found' });
  });

  it('reads at most `concurrency` tasks at once', async () => {
    const mount = join(root, 'cgroup');
    const hierarchy = parseHierarchy(`26 22 0:23 / ${mount} rw - cgroup2 cgroup2 rw\n`)!;
    const tasks: Task[] = [];
    let active = 0;
    let peak = 0;
    for (let i = 0; i < 12; i++) {
      await v2Tree(mount, `ns/t${i}`, i + 100, i);
      const proc = join(root, 'proc', String(1000 + i));
      await mkdir(proc, { recursive: true });
      await writeFile(join(proc, 'cgroup'), `0::/ns/t${i}\n`);
      tasks.push({
        id: `t${i}`,
        namespace: 'ns',
        runtime: 'r',
        pid: async () => {
          peak = Math.max(peak, ++active);
          await new Promise((r) => setTimeout(r, 5));
          active--;
          return 1000 + i;
        },
      } as unknown as Task);
    }
    const monitor = new CgroupsMonitor({ hierarchy, runtime: fakeRuntime(tasks), log: nullLogger, concurrency: 3, procRoot: join(root, 'proc') });
    const families = await monitor.collect();
    expect(families.find((f) => f.name === 'container_pids_current')?.samples).toHaveLength(12);
    expect(peak).toBeLessThanOrEqual(3);
    expect(peak).toBeGreaterThan(1);
  });

  it('never holds the event loop while it reads many tasks (no gap between timer ticks over 100 ms)', async () => {
    const mount = join(root, 'cgroup');
    const hierarchy = parseHierarchy(`26 22 0:23 / ${mount} rw - cgroup2 cgroup2 rw\n`)!;
    const tasks: Task[] = [];
    for (let i = 0; i < 300; i++) {
      await v2Tree(mount, `ns/t${i}`, i + 1, i);
      await writeFile(join(mount, `ns/t${i}`, 'memory.stat'), Array.from({ length: 40 }, (_, k) => `key${k} ${k * i}`).join('\n'));
      const proc = join(root, 'proc', String(2000 + i));
      await mkdir(proc, { recursive: true });
      await writeFile(join(proc, 'cgroup'), `0::/ns/t${i}\n`);
      tasks.push(fakeTask(`t${i}`, 'ns', 2000 + i));
    }
    const monitor = new CgroupsMonitor({ hierarchy, runtime: fakeRuntime(tasks), log: nullLogger, concurrency: 8, procRoot: join(root, 'proc') });
    let last = performance.now();
    let worst = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      worst = Math.max(worst, now - last);
      last = now;
    }, 5);
    try {
      for (let round = 0; round < 3; round++) {
        const families = await monitor.collect();
        expect(families.find((f) => f.name === 'container_cpu_usage_usec_microseconds')?.samples).toHaveLength(300);
      }
    } finally {
      clearInterval(timer);
    }
    expect(worst).toBeLessThan(100);
  });
});
