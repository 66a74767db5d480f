// `berth top` (a live, refreshing table of the namespace's running containers: CPU %, memory and limit, pids, I/O
// rates; sortable; q or Ctrl-C quits and the terminal is given back as it was, also when a sample fails) and
// `berth tasks metrics ID`. Figures come from Tasks.Metrics, i.e. from berthd's cgroups monitor.
import { Option, type Command } from 'commander';
import { TasksProxy } from '@berth/client';
import { InvalidArgumentError, NotFoundError, type OpContext } from '@berth/core';
import type { CliContext } from '../context.js';
import { binarySize, formatTable } from '../format.js';
import { decodeStats, exactJson, exactStats, headerRows, metricRows, omitEmpty } from './metrics.js';
import { rowsOf, sampleOf, sortRows, SORT_KEYS, type SortKey, type TaskSample, type TopRow } from './top-model.js';

/** Keys that change the order while `berth top` runs. */
const SORT_BY_KEY: Readonly<Record<string, SortKey>> = { c: 'cpu', m: 'mem', p: 'pids', i: 'io', n: 'id' };

const ENTER_ALT_SCREEN = '\x1b[?1049h';
const LEAVE_ALT_SCREEN = '\x1b[?1049l';
const HIDE_CURSOR = '\x1b[?25l';
const SHOW_CURSOR = '\x1b[?25h';
const HOME_AND_CLEAR = '\x1b[H\x1b[2J';

function parseInterval(text: string): number {
  const seconds = Number(text);
  if (!Number.isFinite(seconds) || seconds < 0.1 || seconds > 3600) {
    throw new InvalidArgumentError(`--interval ${JSON.stringify(text)}: expected seconds between 0.1 and 3600`);
  }
  return seconds * 1000;
}

/** The running tasks' samples, in one List and one Metrics call; a task whose statistics cannot be read is left out. */
async function sample(tasks: TasksProxy, op: OpContext): Promise<TaskSample[]> {
  const [list, metrics] = await Promise.all([tasks.list(op), tasks.metrics(op)]);
  const running = new Set(list.filter((t) => t.status === 'running').map((t) => t.id));
  const out: TaskSample[] = [];
  for (const m of metrics) {
    if (!running.has(m.id)) continue;
    try {
      out.push(sampleOf(m.id, m.timestamp.getTime(), decodeStats(m.data)));
    } catch {
      // A type berth cannot read (a runtime with other statistics): not shown.
    }
  }
  return out;
}

const percent = (v: number | undefined) => (v === undefined ? '-' : `${v.toFixed(2)}%`);
const rate = (v: number | undefined) => (v === undefined ? '-' : `${binarySize(v)}/s`);

export function topTable(rows: readonly TopRow[]): string {
  return formatTable([
    ['CONTAINER', 'CPU %', 'MEM USAGE / LIMIT', 'MEM %', 'PIDS', 'READ/s', 'WRITE/s'],
    ...rows.map((r) => [
      r.id,
      percent(r.cpuPercent),
      `${binarySize(r.memory)} / ${r.limit === undefined ? 'unlimited' : binarySize(r.limit)}`,
      r.limit === undefined ? '-' : percent((r.memory / r.limit) * 100),
      String(r.pids),
      rate(r.readRate),
      rate(r.writeRate),
    ]),
  ]);
}

function jsonRows(rows: readonly TopRow[]): unknown[] {
  return rows.map((r) => ({
    id: r.id,
    cpuPercent: r.cpuPercent ?? null,
    memoryBytes: r.memory,
    memoryLimitBytes: r.limit ?? null,
    pids: r.pids,
    readBytesPerSecond: r.readRate ?? null,
    writeBytesPerSecond: r.writeRate ?? null,
  }));
}

interface TopFlags {
  once?: boolean;
  interval?: string;
  sort: string;
  reverse?: boolean;
}

async function top(ctx: CliContext, flags: TopFlags): Promise<void> {
  if (!(SORT_KEYS as readonly string[]).includes(flags.sort)) {
    throw new InvalidArgumentError(`--sort ${JSON.stringify(flags.sort)}: expected one of ${SORT_KEYS.join(', ')}`);
  }
  let sortKey = flags.sort as SortKey;
  let reverse = flags.reverse === true;
  const intervalMs = parseInterval(flags.interval ?? (flags.once ? '1' : '2'));
  const tasks = new TasksProxy(ctx.berth());
  const byId = (samples: readonly TaskSample[]) => new Map(samples.map((s) => [s.id, s]));

  if (flags.once) {
    const first = await sample(tasks, ctx.op);
    await new Promise((r) => setTimeout(r, intervalMs));
    const rows = sortRows(rowsOf(byId(first), await sample(tasks, ctx.op)), sortKey, reverse);
    if (ctx.json) ctx.printJson(jsonRows(rows));
    else ctx.write(topTable(rows));
    return;
  }

  const out = ctx.io.stdout as NodeJS.WriteStream;
  const input = ctx.io.stdin as NodeJS.ReadStream;
  const tty = out.isTTY === true;
  const raw = input.isTTY === true && typeof input.setRawMode === 'function';
  let previous = new Map<string, TaskSample>();
  let rows: TopRow[] = [];
  const draw = () => {
    const sorted = sortRows(rows, sortKey, reverse);
    const title = `berth top - ${new Date().toISOString().slice(11, 19)} - ${rows.length} running in ${ctx.options.namespace} - sort: ${sortKey}${reverse ? ' (reversed)' : ''}`;
    const help = tty ? 'keys: c cpu, m memory, p pids, i io, n name, r reverse, q quit' : '';
    out.write(`${tty ? HOME_AND_CLEAR : ''}${title}\n${help ? `${help}\n` : ''}\n${topTable(sorted)}${tty ? '' : '\n'}`);
  };

  try {
    if (tty) out.write(ENTER_ALT_SCREEN + HIDE_CURSOR);
    if (raw) input.setRawMode(true);
    input.setEncoding('utf8');
    await new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let stopped = false;
      const stop = (err?: unknown) => {
        if (stopped) return;
        stopped = true;
        clearTimeout(timer);
        input.off('data', onKey);
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        if (err) reject(err);
        else resolve();
      };
      const onSignal = () => stop();
      const onKey = (chunk: string) => {
        for (const ch of chunk) {
          if (ch === 'q' || ch === 'Q' || ch === '\x03' || ch === '\x04') return stop();
          const key = SORT_BY_KEY[ch];
          if (key) sortKey = key;
          else if (ch === 'r') reverse = !reverse;
          else continue;
          draw();
        }
      };
      const tick = async () => {
        try {
          const current = await sample(tasks, ctx.op);
          rows = rowsOf(previous, current);
          previous = byId(current);
          if (!stopped) draw();
        } catch (err) {
          return stop(err);
        }
        if (!stopped) timer = setTimeout(() => void tick(), intervalMs);
      };
      input.on('data', onKey);
      input.resume();
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      void tick();
    });
  } finally {
    // Given back even when a sample failed: raw mode off, cursor shown, the alternate screen left.
    if (raw) input.setRawMode(false);
    input.pause();
    if (tty) out.write(SHOW_CURSOR + LEAVE_ALT_SCREEN);
  }
}

export function registerTop(program: Command, ctx: CliContext): void {
  program
    .command('top')
    .description('live table of the running containers of the namespace: CPU %, memory and limit, pids, I/O rates')
    .option('--once', 'print one table (two samples --interval apart) and exit, for scripts')
    .option('--interval <seconds>', 'seconds between refreshes (default 2; with --once, 1)')
    .addOption(new Option('--sort <key>', 'column to sort by').choices([...SORT_KEYS]).default('cpu'))
    .option('--reverse', 'reverse the order')
    .action((flags: TopFlags) => top(ctx, flags));

  const tasksGroup = program.commands.find((c) => c.name() === 'tasks');
  if (!tasksGroup) throw new Error('berth top: the tasks command group must be registered first');
  tasksGroup
    .command('metrics')
    .alias('metric')
    .description("one data point of a task's cgroup statistics (--format json: all of them)")
    .argument('<id>', 'container id')
    .action(async (id: string) => {
      const tasks = new TasksProxy(ctx.berth());
      await tasks.get(ctx.op, id);
      const [metric] = await tasks.metrics(ctx.op, [`id==${id}`]);
      if (!metric) throw new NotFoundError(`task ${id}: no metrics received: not found`);
      const stats = exactStats(metric.data);
      if (ctx.json) return ctx.line(exactJson(omitEmpty(stats.metrics)));
      ctx.table([...headerRows(metric), []], { padding: 4 });
      ctx.table(metricRows(stats), { padding: 4 });
    });
}
