// `berth run` and `berth tasks ls|start|attach|kill|exec|pause|resume|ps|rm|wait`, with ctr's flags and output
// (cmd/ctr/commands/run, cmd/ctr/commands/tasks). The work is in run-ops.ts; the exit status of a process that
// berth waited for becomes berth's exit code.
import { constants as osConstants } from 'node:os';
import { Option, type Command } from 'commander';
import { TasksProxy } from '@berth/client';
import { InvalidArgumentError } from '@berth/core';
import { parseLabels } from '../args.js';
import type { CliContext } from '../context.js';
import { containerServicesOf } from './containers.js';
import { DEFAULT_RUNTIME } from './containers-ops.js';
import { attachTask, deleteTask, execProcess, runContainer, runTask, type RunServices, type TerminalIo } from './run-ops.js';
import { DEFAULT_SNAPSHOTTER } from './snapshots.js';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

async function runServicesOf(ctx: CliContext): Promise<RunServices> {
  const sys = await import('@berth/sys');
  return {
    ...(await containerServicesOf(ctx)),
    tasks: new TasksProxy(ctx.berth()),
    mounter: { mountAll: (mounts, target) => sys.mountAll(mounts, target), unmountAll: (target) => sys.unmountAll(target) },
  };
}

/** This process's terminal side: stdin, stdout, stderr, and stdout as the TTY that sizes a pty. */
function terminalIo(ctx: CliContext): TerminalIo {
  const stdout = ctx.io.stdout as NodeJS.WriteStream;
  return {
    stdin: ctx.io.stdin as NodeJS.ReadStream,
    stdout: ctx.io.stdout,
    stderr: ctx.io.stderr,
    ...(stdout.isTTY ? { tty: stdout } : {}),
  };
}

/**
 * ctr's SkipArgReorder for `run IMAGE ID CMD...`, `tasks exec ID CMD...` and `containers create IMAGE ID CMD...`: everything after the last positional
 * before the command is the command's own (`berth run img c1 sh -c 'exit 3'`). Inserts `--` there, skipping the
 * options (of the command and the global ones) and their values; a line that already has `--` is left alone.
 */
export function separateCommandArgs(program: Command, args: readonly string[]): string[] {
  const out = [...args];
  const paths: { path: readonly string[]; positionals: number }[] = [
    { path: ['run'], positionals: 2 },
    { path: ['tasks', 'exec'], positionals: 1 },
    { path: ['containers', 'create'], positionals: 2 },
  ];
  const takesValue = (cmds: readonly Command[], token: string): boolean | undefined => {
    const name = token.includes('=') ? token.slice(0, token.indexOf('=')) : token;
    for (const c of cmds) {
      const o = c.options.find((x) => x.long === name || x.short === name);
      if (o) return !token.includes('=') && (o.required || o.optional);
    }
    return undefined;
  };
  // Find the command path, skipping global options (and their values) before it.
  let i = 0;
  const names: string[] = [];
  let cmd: Command = program;
  const chain: Command[] = [program];
  while (i < out.length) {
    const t = out[i] as string;
    if (t === '--') return out;
    if (t.startsWith('-')) {
      i += takesValue(chain, t) ? 2 : 1;
      continue;
    }
    const sub = cmd.commands.find((c) => c.name() === t || c.aliases().includes(t));
    if (!sub) break;
    names.push(sub.name());
    cmd = sub;
    chain.unshift(sub);
    i++;
    const target = paths.find((p) => p.path.length === names.length && p.path.every((n, k) => n === names[k]));
    if (target) {
      let seen = 0;
      while (i < out.length) {
        const a = out[i] as string;
        if (a === '--') return out;
        if (a.startsWith('-') && a !== '-') {
          i += takesValue(chain, a) ? 2 : 1;
          continue;
        }
        if (seen === target.positionals) {
          out.splice(i, 0, '--');
          return out;
        }
        seen++;
        i++;
      }
      return out;
    }
  }
  return out;
}

/** A signal by name (`SIGKILL`, `KILL`) or number, as ctr's ParseSignal. */
export function parseSignal(text: string): number {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n < 1 || n > 64) throw new InvalidArgumentError(`invalid signal ${JSON.stringify(text)}`);
    return n;
  }
  const name = (text.toUpperCase().startsWith('SIG') ? text.toUpperCase() : `SIG${text.toUpperCase()}`) as NodeJS.Signals;
  const n = osConstants.signals[name];
  if (n === undefined) throw new InvalidArgumentError(`invalid signal ${JSON.stringify(text)}`);
  return n;
}

/** `--memory` as a byte count with an optional k/m/g suffix (powers of 1024). */
export function parseMemory(text: string): number {
  const m = /^(\d+)([kmg]?)b?$/i.exec(text.trim());
  if (!m) throw new InvalidArgumentError(`invalid memory limit ${JSON.stringify(text)} (bytes, or with k, m or g)`);
  const n = Number(m[1]) * 1024 ** ['', 'k', 'm', 'g'].indexOf((m[2] ?? '').toLowerCase());
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`invalid memory limit ${JSON.stringify(text)}`);
  return n;
}

function parseCpus(text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`invalid --cpus ${JSON.stringify(text)}: a positive number`);
  return n;
}

interface RunFlags {
  rm?: boolean;
  tty?: boolean;
  detach?: boolean;
  env: string[];
  mount: string[];
  label: string[];
  memory?: string;
  memoryLimit?: string;
  cpus?: string;
  user?: string;
  cwd?: string;
  readOnly?: boolean;
  hostname?: string;
  seccompProfile?: string;
  runtime: string;
  runcBinary?: string;
  runcRoot?: string;
  runcSystemdCgroup?: boolean;
  snapshotter: string;
  platform?: string;
  fifoDir?: string;
}

export function registerRun(program: Command, ctx: CliContext): void {
  program
    .command('run')
    .description('run a container from an image: create it, start its task, copy its stdio and exit with its status')
    .argument('<image>', 'the image')
    .argument('<id>', 'the container id')
    .argument('[command...]', 'command and arguments (default: the image entrypoint and cmd)')
    .option('--rm', 'remove the container (and its snapshot) after it exits')
    .option('-t, --tty', 'allocate a terminal (raw mode here, resized with the window)')
    .option('-d, --detach', 'return once the task has started')
    .option('--env <K=V>', 'environment variable (repeatable; a bare K removes it)', collect, [])
    .option('--mount <spec>', 'mount, as ctr: type=bind,src=/host,dst=/ctr,options=rbind:ro (repeatable)', collect, [])
    .option('--label <k=v>', 'label of the container (repeatable)', collect, [])
    .option('--memory <bytes>', 'memory limit (bytes, or with k, m or g)')
    .addOption(new Option('--memory-limit <bytes>', 'memory limit in bytes (ctr\'s name)').hideHelp())
    .option('--cpus <n>', 'CPU limit as a CFS quota (n × 100000 per 100000 µs)')
    .option('-u, --user <user>', 'user[:group] or uid[:gid], names looked up in the image')
    .option('--cwd <dir>', 'working directory of the process')
    .option('--read-only', 'mount the root filesystem read-only')
    .option('--hostname <name>', 'hostname (default: the container id)')
    .option('--seccomp-profile <file>', 'seccomp profile (runtime-spec JSON)')
    .option('--runtime <name>', 'runtime name', DEFAULT_RUNTIME)
    .option('--runc-binary <path>', 'runc-compatible binary (e.g. crun)')
    .option('--runc-root <dir>', 'runc state root')
    .option('--runc-systemd-cgroup', 'runc with the systemd cgroup manager')
    .addOption(new Option('--snapshotter <name>', `snapshotter name (default ${DEFAULT_SNAPSHOTTER})`).env('BERTH_SNAPSHOTTER').default(DEFAULT_SNAPSHOTTER))
    .option('--platform <platform>', 'platform of the image to use (default: this host)')
    .option('--fifo-dir <dir>', 'directory for the stdio FIFOs (default /run/berth/fifo)')
    .action(async (image: string, id: string, command: string[], opts: RunFlags) => {
      const memory = opts.memory ?? opts.memoryLimit;
      ctx.exitCode = await runContainer(
        await runServicesOf(ctx),
        ctx.op,
        {
          image,
          id,
          args: command,
          rm: opts.rm === true,
          tty: opts.tty === true,
          detach: opts.detach === true,
          env: opts.env,
          mounts: opts.mount,
          labels: parseLabels(opts.label),
          ...(memory !== undefined ? { memoryLimit: parseMemory(memory) } : {}),
          ...(opts.cpus !== undefined ? { cpus: parseCpus(opts.cpus) } : {}),
          ...(opts.user ? { user: opts.user } : {}),
          ...(opts.cwd ? { cwd: opts.cwd } : {}),
          ...(opts.readOnly ? { readOnly: true } : {}),
          ...(opts.hostname !== undefined ? { hostname: opts.hostname } : {}),
          ...(opts.seccompProfile ? { seccompProfile: opts.seccompProfile } : {}),
          runtime: opts.runtime,
          ...(opts.runcBinary ? { runcBinary: opts.runcBinary } : {}),
          ...(opts.runcRoot ? { runcRoot: opts.runcRoot } : {}),
          ...(opts.runcSystemdCgroup ? { runcSystemdCgroup: true } : {}),
          snapshotter: opts.snapshotter,
          ...(opts.platform ? { platform: opts.platform } : {}),
          ...(opts.fifoDir ? { fifoDir: opts.fifoDir } : {}),
        },
        terminalIo(ctx),
      );
    });
}

export function registerTasks(program: Command, ctx: CliContext): void {
  const group = program.command('tasks').aliases(['task', 't']).description('manage tasks: the running processes of containers');
  const tasks = () => new TasksProxy(ctx.berth());

  group
    .command('ls')
    .alias('list')
    .description('list tasks (TASK, PID, STATUS)')
    .option('-q, --quiet', 'print only the task ids')
    .action(async (opts: { quiet?: boolean }) => {
      const list = await tasks().list(ctx.op);
      if (ctx.json) return ctx.printJson(list.map((t) => ({ ...t, exitedAt: t.exitedAt?.toISOString() ?? null })));
      if (opts.quiet) {
        for (const t of list) ctx.line(t.id);
        return;
      }
      ctx.table([['TASK', 'PID', 'STATUS'], ...list.map((t) => [t.id, String(t.pid), t.status.toUpperCase()])], { padding: 4 });
    });

  group
    .command('start')
    .description('start a task of a container (stdio copied, exit with its status unless --detach)')
    .argument('<id>', 'the container id')
    .option('-t, --tty', 'allocate a terminal')
    .option('-d, --detach', 'return once the task has started')
    .option('--null-io', 'send the stdio of the task to /dev/null')
    .option('--fifo-dir <dir>', 'directory for the stdio FIFOs (default /run/berth/fifo)')
    .action(async (id: string, opts: { tty?: boolean; detach?: boolean; nullIo?: boolean; fifoDir?: string }) => {
      const svc = await runServicesOf(ctx);
      const container = await svc.containers.get(ctx.op, id);
      ctx.exitCode = await runTask(svc, ctx.op, container, { tty: opts.tty === true, detach: opts.detach === true, nullIo: opts.nullIo === true, ...(opts.fifoDir ? { fifoDir: opts.fifoDir } : {}) }, terminalIo(ctx));
    });

  group
    .command('attach')
    .description("attach to a task's stdio (exit with its status)")
    .argument('<id>', 'the container id')
    .action(async (id: string) => {
      ctx.exitCode = await attachTask(await runServicesOf(ctx), ctx.op, id, terminalIo(ctx));
    });

  group
    .command('kill')
    .description('signal a task (default SIGTERM)')
    .argument('<ids...>', 'container ids')
    .option('-s, --signal <signal>', 'signal name or number', 'SIGTERM')
    .option('-a, --all', 'send the signal to all processes of the task')
    .option('--exec-id <id>', 'signal this exec process instead')
    .action(async (ids: string[], opts: { signal: string; all?: boolean; execId?: string }) => {
      const signal = parseSignal(opts.signal);
      if (opts.all && opts.execId) throw new InvalidArgumentError('specify an exec id or all; not both');
      for (const id of ids) await tasks().kill(ctx.op, id, signal, { ...(opts.execId ? { execId: opts.execId } : {}), all: opts.all === true });
    });

  group
    .command('exec')
    .description('run another process in a running task (exit with its status unless --detach)')
    .argument('<id>', 'the container id')
    .argument('<command...>', 'command and arguments')
    .requiredOption('--exec-id <id>', 'id of the exec process')
    .option('-t, --tty', 'allocate a terminal')
    .option('-d, --detach', 'return once the process has started')
    .option('--cwd <dir>', 'working directory of the process')
    .option('-u, --user <user>', 'user[:group] or uid[:gid], names looked up in the image')
    .option('--env <K=V>', 'environment variable (repeatable)', collect, [])
    .option('--fifo-dir <dir>', 'directory for the stdio FIFOs (default /run/berth/fifo)')
    .action(async (id: string, command: string[], opts: { execId: string; tty?: boolean; detach?: boolean; cwd?: string; user?: string; env: string[]; fifoDir?: string }) => {
      ctx.exitCode = await execProcess(
        await runServicesOf(ctx),
        ctx.op,
        id,
        {
          execId: opts.execId,
          args: command,
          tty: opts.tty === true,
          detach: opts.detach === true,
          env: opts.env,
          ...(opts.cwd ? { cwd: opts.cwd } : {}),
          ...(opts.user ? { user: opts.user } : {}),
          ...(opts.fifoDir ? { fifoDir: opts.fifoDir } : {}),
        },
        terminalIo(ctx),
      );
    });

  group
    .command('pause')
    .description('pause a task (freeze its processes)')
    .argument('<ids...>')
    .action(async (ids: string[]) => {
      for (const id of ids) await tasks().pause(ctx.op, id);
    });

  group
    .command('resume')
    .description('resume a paused task')
    .argument('<ids...>')
    .action(async (ids: string[]) => {
      for (const id of ids) await tasks().resume(ctx.op, id);
    });

  group
    .command('ps')
    .description("list a task's processes (PID, INFO: the exec id of exec processes)")
    .argument('<id>')
    .action(async (id: string) => {
      const pids = await tasks().pids(ctx.op, id);
      const info = (p: (typeof pids)[number]) => {
        if (!p.info || p.info.value.length < 2) return '-';
        // containerd.runc.v1.ProcessDetails{exec_id = 1}: one length-delimited string.
        const v = p.info.value;
        return v[0] === 0x0a ? Buffer.from(v.subarray(2, 2 + (v[1] as number))).toString('utf8') : '-';
      };
      if (ctx.json) return ctx.printJson(pids.map((p) => ({ pid: p.pid, execId: info(p) === '-' ? null : info(p) })));
      ctx.table([['PID', 'INFO'], ...pids.map((p) => [String(p.pid), info(p)])], { padding: 4 });
    });

  group
    .command('rm')
    .aliases(['delete', 'del', 'remove'])
    .description('delete tasks (a running one only with --force: killed, then deleted)')
    .argument('<ids...>')
    .option('-f, --force', 'kill a task that is not stopped, then delete it')
    .option('--exec-id <id>', 'delete this exec process instead')
    .action(async (ids: string[], opts: { force?: boolean; execId?: string }) => {
      const svc = await runServicesOf(ctx);
      let failed = false;
      for (const id of ids) {
        try {
          const exit = await deleteTask(svc, ctx.op, id, { force: opts.force === true, ...(opts.execId ? { execId: opts.execId } : {}) });
          if (ctx.json) ctx.printJson({ id, exitStatus: exit.status, exitedAt: exit.exitedAt.toISOString() });
        } catch (err) {
          ctx.error(`failed to delete task ${JSON.stringify(id)}: ${ctx.describeError(err)}`);
          failed = true;
        }
      }
      if (failed) ctx.exitCode = 1;
    });

  group
    .command('wait')
    .description('wait for a task (or an exec process) to exit and print its exit status')
    .argument('<id>')
    .option('--exec-id <id>', 'wait for this exec process')
    .action(async (id: string, opts: { execId?: string }) => {
      const exit = await tasks().wait(ctx.op, id, opts.execId ?? '');
      if (ctx.json) ctx.printJson({ id, exitStatus: exit.status, exitedAt: exit.exitedAt.toISOString() });
      else ctx.line(String(exit.status));
    });
}
