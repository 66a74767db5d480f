// The `berth` program: global options, the command groups, and one error policy (`berth: <message>`, exit 1).
import { Command, CommanderError, Option } from 'commander';
import { registerCompletion } from './commands/completion.js';
import { registerContainers } from './commands/containers.js';
import { registerContent } from './commands/content.js';
import { registerEvents } from './commands/events.js';
import { registerExtensions } from './commands/extensions.js';
import { registerImages } from './commands/images.js';
import { registerLeases } from './commands/leases.js';
import { registerNamespaces } from './commands/namespaces.js';
import { registerPlugins } from './commands/plugins.js';
import { registerPull } from './commands/pull.js';
import { registerPush } from './commands/push.js';
import { registerSnapshots } from './commands/snapshots.js';
import { registerRun, registerTasks, separateCommandArgs } from './commands/tasks.js';
import { registerTop } from './commands/top.js';
import { registerVersion } from './commands/version.js';
import {
  CliContext,
  DEFAULT_ADDRESS,
  DEFAULT_NAMESPACE,
  OUTPUT_FORMATS,
  ReportedFailure,
  resolveGlobalOptions,
  type CliIo,
  type RawGlobalOptions,
} from './context.js';
import { PACKAGE_VERSION } from './version.js';

export function createProgram(ctx: CliContext): Command {
  const program = new Command('berth')
    .description('Berth command-line client: talks to berthd over its containerd-compatible gRPC API')
    .version(PACKAGE_VERSION, '-V, --version', 'print the client version')
    .addOption(new Option('-a, --address <path>', 'address of the berthd socket').env('BERTH_ADDRESS').default(DEFAULT_ADDRESS))
    .addOption(new Option('-n, --namespace <name>', 'namespace of the requests').env('BERTH_NAMESPACE').default(DEFAULT_NAMESPACE))
    .addOption(new Option('--format <format>', 'output format').choices([...OUTPUT_FORMATS]).default('table'))
    .addOption(new Option('--timeout <duration>', 'deadline of each request, e.g. 10s (0: none)').default('0'))
    .addOption(new Option('--lease <id>', 'lease that what the command creates joins (see berth leases)').env('BERTH_LEASE'))
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.io.stdout.write(s),
      writeErr: (s) => ctx.io.stderr.write(s),
      outputError: (s, write) => write(s.replace(/^error: /, 'berth: ')),
    })
    .hook('preAction', (root) => ctx.setGlobals(resolveGlobalOptions(root.opts<RawGlobalOptions>())));
  registerVersion(program, ctx);
  registerPlugins(program, ctx);
  registerNamespaces(program, ctx);
  registerEvents(program, ctx);
  registerContent(program, ctx);
  registerLeases(program, ctx);
  registerSnapshots(program, ctx);
  registerImages(program, ctx);
  registerPull(program, ctx);
  registerPush(program, ctx);
  registerContainers(program, ctx);
  registerExtensions(program, ctx);
  registerRun(program, ctx);
  registerTasks(program, ctx);
  registerTop(program, ctx);
  registerCompletion(program, ctx);
  return program;
}

/** Runs one command line (`argv` without node and the script) and returns the exit code. */
export async function runCli(args: readonly string[], io: CliIo): Promise<number> {
  const ctx = new CliContext(io);
  const program = createProgram(ctx);
  try {
    await program.parseAsync(separateCommandArgs(program, args), { from: 'user' });
    return ctx.exitCode ?? 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (!(err instanceof ReportedFailure)) io.stderr.write(`berth: ${ctx.describeError(err)}\n`);
    return 1;
  } finally {
    await ctx.close();
  }
}
