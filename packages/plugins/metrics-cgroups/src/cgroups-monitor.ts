import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import {
  NotFoundError,
  isNotFound,
  type AnyValue,
  type ContainerStore,
  type Logger,
  type MetricFamily,
  type MetricsCollector,
  type OpContext,
  type PlatformRuntime,
  type Task,
  type TaskMonitor,
} from '@berth/core';
import { statsAnyValue, type CgroupStats } from './encode.js';
import { isMissing, readOptional } from './files.js';
import { cgroupOfProcess, cgroupOfSpecPath, type CgroupHierarchy, type TaskCgroup } from './hierarchy.js';
import { FamilyBuilder, type TaskStats } from './prometheus.js';
import { readV1Stats } from './v1-stats.js';
import { readV2Stats } from './v2-stats.js';

export interface CgroupsMonitorOptions {
  readonly hierarchy: CgroupHierarchy;
  readonly runtime: PlatformRuntime;
  /** Where the containers' specs are (their `linux.cgroupsPath`); without it, tasks are found by their init pid. */
  readonly containers?: ContainerStore;
  readonly log: Logger;
  /** Tasks read at once during a scrape. */
  readonly concurrency: number;
  /** /proc, or a fixture tree in tests. */
  readonly procRoot?: string;
}

/**
 * Statistics of the runtime's tasks read from the cgroup filesystem by berthd itself (containerd's cgroups
 * monitor): Tasks.Metrics through `TaskMonitor.stats`, and per-container series at every scrape through `collect`.
 * Each task's cgroup is found once (the spec's cgroupsPath as runc applies it, else its init process's
 * /proc/<pid>/cgroup) and forgotten with the task; every read is asynchronous, and a scrape reads at most
 * `concurrency` tasks at a time, so neither holds the event loop.
 */
export class CgroupsMonitor implements TaskMonitor, MetricsCollector {
  private readonly cgroups = new WeakMap<Task, TaskCgroup>();
  private readonly procRoot: string;

  constructor(private readonly options: CgroupsMonitorOptions) {
    this.procRoot = options.procRoot ?? '/proc';
  }

  get version(): 1 | 2 {
    return this.options.hierarchy.version;
  }

  async stats(ctx: OpContext, task: Task): Promise<AnyValue> {
    return statsAnyValue(await this.read(ctx, task));
  }

  /** The task's statistics; NotFound when its cgroup is gone (or was never found). */
  async read(ctx: OpContext, task: Task): Promise<CgroupStats> {
    const cgroup = await this.locate(ctx, task);
    const dir = cgroup.version === 2 ? cgroup.dir : (cgroup.dirs.get('memory') ?? cgroup.dirs.get('cpuacct') ?? [...cgroup.dirs.values()][0]!);
    try {
      if (!(await stat(dir)).isDirectory()) throw new NotFoundError(`cgroup of task ${task.id}: ${dir} is not a directory: not found`);
    } catch (err) {
      this.cgroups.delete(task);
      if (isMissing(err)) throw new NotFoundError(`cgroup of task ${task.id} (${dir}) is gone: not found`, { cause: err });
      throw err;
    }
    if (cgroup.version === 2) return { version: 2, metrics: await readV2Stats(cgroup.dir) };
    const partitions = await readOptional(join(this.procRoot, 'partitions'));
    return { version: 1, metrics: await readV1Stats({ dirs: cgroup.dirs, ...(partitions !== undefined ? { partitions } : {}) }) };
  }

  /** Every task's series (all namespaces); a task whose statistics fail is left out of this scrape. */
  async collect(): Promise<MetricFamily[]> {
    const tasks = await this.options.runtime.tasks({ namespace: '' }, true);
    const results: TaskStats[] = [];
    let next = 0;
    const worker = async () => {
      while (next < tasks.length) {
        const task = tasks[next++]!;
        try {
          results.push({ id: task.id, namespace: task.namespace, runtime: task.runtime, stats: await this.read({ namespace: task.namespace }, task) });
        } catch (err) {
          if (!isNotFound(err)) this.options.log.warn('cgroup statistics of a task', { id: task.id, namespace: task.namespace, err });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.options.concurrency, tasks.length) }, worker));
    // Stable output whatever order the reads finished in.
    results.sort((a, b) => (a.namespace === b.namespace ? cmp(a.id, b.id) : cmp(a.namespace, b.namespace)));
    // Thousands of samples: built a slice of tasks at a time, giving the event loop a turn between slices.
    const builder = new FamilyBuilder();
    for (let i = 0; i < results.length; i++) {
      builder.add(results[i]!);
      if (i % FAMILY_SLICE === FAMILY_SLICE - 1) await nextTurn();
    }
    return builder.families();
  }

  private async locate(ctx: OpContext, task: Task): Promise<TaskCgroup> {
    const known = this.cgroups.get(task);
    if (known) return known;
    const found = (await this.fromSpec(task)) ?? (await this.fromPid(ctx, task));
    if (!found) throw new NotFoundError(`cgroup of task ${task.id} in namespace ${task.namespace}: not found`);
    this.cgroups.set(task, found);
    return found;
  }

  private async fromSpec(task: Task): Promise<TaskCgroup | undefined> {
    if (!this.options.containers) return undefined;
    let cgroupsPath: unknown;
    try {
      const container = await this.options.containers.get({ namespace: task.namespace }, task.id);
      if (!container.spec) return undefined;
      const spec = JSON.parse(Buffer.from(container.spec.value).toString('utf8')) as { linux?: { cgroupsPath?: unknown } } | null;
      cgroupsPath = spec?.linux?.cgroupsPath;
    } catch (err) {
      if (!isNotFound(err) && !(err instanceof SyntaxError)) throw err;
      return undefined;
    }
    const cgroup = cgroupOfSpecPath(this.options.hierarchy, typeof cgroupsPath === 'string' ? cgroupsPath : undefined);
    if (!cgroup) return undefined;
    // runc put it there only if the directory exists (a relative or systemd path lands elsewhere).
    const probe = cgroup.version === 2 ? cgroup.dir : (cgroup.dirs.get('memory') ?? cgroup.dirs.get('cpuacct'));
    if (!probe) return undefined;
    try {
      return (await stat(probe)).isDirectory() ? cgroup : undefined;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  private async fromPid(ctx: OpContext, task: Task): Promise<TaskCgroup | undefined> {
    const pid = await task.pid(ctx);
    if (!(pid > 0)) return undefined;
    let text: string;
    try {
      text = await readFile(join(this.procRoot, String(pid), 'cgroup'), 'utf8');
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    return cgroupOfProcess(this.options.hierarchy, text);
  }
}

/** Tasks whose series are built between two turns of the event loop. */
const FAMILY_SLICE = 16;

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
