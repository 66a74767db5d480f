// berthd's command line: run the daemon, or inspect its configuration. main.ts loads it after tuning the heap.
import 'reflect-metadata';
import { dirname, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { Command, Option } from 'commander';
import {
  createLogger,
  LOG_LEVELS,
  nullLogger,
  loadInstalledPlugins,
  loadPluginPackages,
  loadPluginTrust,
  loadServerConfigFile,
  PluginHost,
  pluginUri,
  renderServerConfig,
  ttrpcAddressOf,
  validateServerConfig,
  type Logger,
  type LogLevel,
  type ServerConfig,
} from '@berth/core';
import { sdNotify } from '@berth/sys';
import { daemonPlugins } from './plugins.js';
import { installProcessGuards } from './process-guards.js';
import { Daemon, DAEMON_REVISION, DAEMON_VERSION } from './server.js';

const DEFAULT_CONFIG_FILE = '/etc/berth/config.toml';

interface Flags {
  config?: string;
  address?: string;
  root?: string;
  state?: string;
  logLevel?: LogLevel;
}

/** The config file (when given, or present at the default path) with command-line flags on top. */
async function resolveConfig(flags: Flags): Promise<{ config: ServerConfig; baseDir: string; file?: string }> {
  const file = flags.config ?? (existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined);
  const config = file ? await loadServerConfigFile(file) : validateServerConfig({});
  if (flags.address) config.grpc.address = resolve(flags.address);
  if (flags.root) config.root = resolve(flags.root);
  if (flags.state) config.state = resolve(flags.state);
  if (flags.logLevel) config.debug.level = flags.logLevel;
  return { config, baseDir: file ? dirname(resolve(file)) : process.cwd(), file };
}

async function composition(config: ServerConfig, baseDir: string, log: Logger = nullLogger) {
  const extra = await loadPluginPackages(config.plugin_packages, baseDir);
  const named = [...daemonPlugins, ...extra.manifests];
  // Packages `berth plugin install` put under <root>/plugins, each verified against its recorded digest first.
  const installed = await loadInstalledPlugins(config.root, await loadPluginTrust(config, baseDir), { taken: new Set(named.map(pluginUri)), log });
  return { plugins: [...named, ...installed.manifests], sources: { ...extra.sources, ...installed.sources } };
}

async function run(flags: Flags): Promise<void> {
  const { config, baseDir, file } = await resolveConfig(flags);
  const log = createLogger({ level: config.debug.level });
  let daemon: Daemon | undefined;
  installProcessGuards({ log, stop: () => daemon?.stop() });
  const { plugins, sources } = await composition(config, baseDir, log);
  log.info('starting berthd', { version: DAEMON_VERSION, revision: DAEMON_REVISION, root: config.root, state: config.state });
  const started = await Daemon.start({ config, plugins, sources, log, configSource: file });
  daemon = started;
  // A `Type=notify` unit (packaging/berthd.service) waits for this: every socket answers by now.
  notifyServiceManager(log, `READY=1\nMAINPID=${process.pid}\nSTATUS=serving`);
  let signals = 0;
  const shutdown = (signal: string) => {
    if (++signals > 1) {
      log.warn('second signal; exiting now', { signal });
      process.exit(1);
    }
    log.info('received signal; shutting down', { signal });
    notifyServiceManager(log, 'STOPPING=1');
    started.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error('shutdown failed', { error: err });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

/** Tells systemd (when it runs berthd as a notify service) how the daemon is; a failure is logged, not fatal. */
function notifyServiceManager(log: Logger, state: string): void {
  try {
    sdNotify(state);
  } catch (err) {
    log.warn('cannot notify the service manager', { error: err, socket: process.env.NOTIFY_SOCKET });
  }
}

const program = new Command('berthd')
  .description('Berth container runtime daemon (containerd v1 API compatible)')
  .version(`berthd ${DAEMON_VERSION} ${DAEMON_REVISION}`, '-v, --version')
  .option('-c, --config <file>', `path to the configuration file (default ${DEFAULT_CONFIG_FILE} when present)`)
  .option('-a, --address <path>', 'address for the gRPC unix socket')
  .option('--root <dir>', 'root directory for persistent data')
  .option('--state <dir>', 'state directory for runtime data')
  .addOption(new Option('-l, --log-level <level>', 'log level').choices([...LOG_LEVELS]))
  .action(async (flags: Flags) => run(flags));

const configCommand = program.command('config').description('information on the configuration');
configCommand
  .command('default')
  .description('print the full default configuration, with every plugin section (installed plugins included)')
  .action(async () => {
    // The root (and trust) of the config file when one is named or present: installed plugins' sections appear too.
    const { config: given, baseDir } = await resolveConfig(program.opts<Flags>());
    const { plugins } = await composition(given, baseDir);
    const config = validateServerConfig({});
    for (const manifest of plugins) {
      if (manifest.config) config.plugins[`${manifest.type}.${manifest.id}`] = structuredClone(manifest.config.defaults) as Record<string, unknown>;
    }
    process.stdout.write(renderServerConfig(config));
  });
configCommand
  .command('validate [file]')
  .description('check a configuration file (and the plugins it names) without starting anything')
  .action(async (file: string | undefined) => {
    const source = file ?? program.opts<Flags>().config ?? DEFAULT_CONFIG_FILE;
    const { config, baseDir } = await resolveConfig({ config: source });
    const { plugins, sources } = await composition(config, baseDir);
    // Warnings (a section for a plugin that is not in the composition, say) are shown, not failed on.
    const log = createLogger({ level: 'warn', write: (line) => process.stderr.write(`${line}\n`) });
    PluginHost.create({
      log,
      configSource: source,
      plugins,
      sources,
      server: { root: config.root, state: config.state, grpcAddress: config.grpc.address, ttrpcAddress: ttrpcAddressOf(config), version: DAEMON_VERSION, revision: DAEMON_REVISION },
      pluginConfig: config.plugins,
      disabled: config.disabled_plugins,
      required: config.required_plugins,
    });
    process.stdout.write(`configuration is valid (${plugins.length} plugins)\n`);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`berthd: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
