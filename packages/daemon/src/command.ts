// The composition API: `createDaemon({ name, version, plugins })` is a daemon program made of the given plugins,
// checked before anything runs, with berthd's command line (run, `config default`, `config validate`, --version).
// berthd itself (berthd.ts) is one use of it; so is every distribution `berth-build` makes (docs/custom-runtimes.md).
import 'reflect-metadata';
import { dirname, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { Command, Option } from 'commander';
import {
  assertComposition,
  createLogger,
  LOG_LEVELS,
  loadInstalledPlugins,
  loadPluginPackages,
  loadPluginTrust,
  loadServerConfigFile,
  nullLogger,
  PluginHost,
  pluginUri,
  renderServerConfig,
  ttrpcAddressOf,
  validateServerConfig,
  type AnyPluginManifest,
  type LoadedPlugins,
  type Logger,
  type LogLevel,
  type ServerConfig,
} from '@berth/core';
import { sdNotify } from '@berth/sys';
import { installProcessGuards } from './process-guards.js';
import { Daemon } from './server.js';

export const DEFAULT_CONFIG_FILE = '/etc/berth/config.toml';

/** Plugins a daemon finds at start from its config, after its own (berthd's `plugin_packages`, installed plugins). */
export interface PluginSource {
  /** Named when the source fails. */
  readonly name: string;
  load(config: ServerConfig, baseDir: string, context: PluginSourceContext): Promise<LoadedPlugins>;
}

/** What a source is told: the composition's logger, and the URIs taken by the plugins before it. */
export interface PluginSourceContext {
  readonly log: Logger;
  readonly taken: ReadonlySet<string>;
}

/** The `plugin_packages` of the config: paths or package names, resolved from the config file's directory. */
export const pluginPackagesSource: PluginSource = {
  name: 'plugin_packages',
  load: (config, baseDir) => loadPluginPackages(config.plugin_packages, baseDir),
};

/** Packages `berth plugin install` put under `<root>/plugins`, each verified against its recorded digest first. */
export const installedPluginsSource: PluginSource = {
  name: 'installed plugins',
  load: async (config, baseDir, { log, taken }) => loadInstalledPlugins(config.root, await loadPluginTrust(config, baseDir), { taken, log }),
};

export interface CreateDaemonOptions {
  /** The program's name (`berthd`, or the distribution's): the command name, log lines, `--version`. */
  readonly name: string;
  /** Reported by `ctr version` and `--version` (`v1.2.3`). */
  readonly version: string;
  /** Reported by `ctr version` (default `<name>-<version>`). */
  readonly revision?: string;
  readonly description?: string;
  /** The plugins this program is made of, in order (order breaks ties between providers of one token). */
  readonly plugins: readonly AnyPluginManifest[];
  /** Where more plugins come from at start (default: `plugin_packages`, then installed plugin packages). */
  readonly pluginSources?: readonly PluginSource[];
  /** The config file read when `--config` is not given and this one exists (default /etc/berth/config.toml). */
  readonly defaultConfigFile?: string;
}

interface Flags {
  config?: string;
  address?: string;
  root?: string;
  state?: string;
  logLevel?: LogLevel;
}

export interface DaemonProgram {
  readonly name: string;
  readonly version: string;
  readonly revision: string;
  /** The built-in plugins, checked: every required token has a provider, ranges fit this core, no cycles. */
  readonly plugins: readonly AnyPluginManifest[];
  /** The built-in plugins plus what the plugin sources find for this config. */
  compose(config: ServerConfig, baseDir: string, log?: Logger): Promise<{ plugins: AnyPluginManifest[]; sources: Record<string, string> }>;
  /** Starts serving (what the command line's default action does, without signals or systemd). */
  start(options: { config: ServerConfig; log: Logger; baseDir?: string; configSource?: string }): Promise<Daemon>;
  /** `--version`: the program, then one line per built-in plugin with its version. */
  versionText(): string;
  /** Runs the command line; failures are printed and exit 1. */
  main(argv?: readonly string[]): Promise<void>;
}

/**
 * A daemon made of `plugins`. The selection is checked statically here (a missing provider, a `pluginApi` range
 * this core does not satisfy or a cycle throws CompositionInvalidError naming the plugins), so a program that
 * was built at all has a complete composition; plugins from sources are checked by the host at start.
 */
export function createDaemon(options: CreateDaemonOptions): DaemonProgram {
  const { name, version } = options;
  const revision = options.revision ?? `${name}-${version.replace(/^v/, '')}`;
  const plugins = [...options.plugins];
  assertComposition(plugins, { subject: `${name} ${version}` });
  const pluginSources = options.pluginSources ?? [pluginPackagesSource, installedPluginsSource];
  const defaultConfigFile = options.defaultConfigFile ?? DEFAULT_CONFIG_FILE;

  async function compose(config: ServerConfig, baseDir: string, log: Logger = nullLogger) {
    const all = [...plugins];
    const sources: Record<string, string> = {};
    for (const source of pluginSources) {
      const extra = await source.load(config, baseDir, { log, taken: new Set(all.map(pluginUri)) });
      all.push(...extra.manifests);
      Object.assign(sources, extra.sources);
    }
    return { plugins: all, sources };
  }

  /** The config file (when given, or present at the default path) with command-line flags on top. */
  async function resolveConfig(flags: Flags): Promise<{ config: ServerConfig; baseDir: string; file?: string }> {
    const file = flags.config ?? (existsSync(defaultConfigFile) ? defaultConfigFile : undefined);
    const config = file ? await loadServerConfigFile(file) : validateServerConfig({});
    if (flags.address) config.grpc.address = resolve(flags.address);
    if (flags.root) config.root = resolve(flags.root);
    if (flags.state) config.state = resolve(flags.state);
    if (flags.logLevel) config.debug.level = flags.logLevel;
    return { config, baseDir: file ? dirname(resolve(file)) : process.cwd(), file };
  }

  async function start(o: { config: ServerConfig; log: Logger; baseDir?: string; configSource?: string }): Promise<Daemon> {
    const composed = await compose(o.config, o.baseDir ?? process.cwd(), o.log);
    return Daemon.start({ config: o.config, plugins: composed.plugins, sources: composed.sources, log: o.log, configSource: o.configSource, name, version, revision });
  }

  async function run(flags: Flags): Promise<void> {
    const { config, baseDir, file } = await resolveConfig(flags);
    const log = createLogger({ level: config.debug.level });
    let daemon: Daemon | undefined;
    installProcessGuards({ log, stop: () => daemon?.stop() });
    log.info(`starting ${name}`, { version, revision, root: config.root, state: config.state });
    const started = await start({ config, log, baseDir, configSource: file });
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

  const versionText = () =>
    [`${name} ${version} ${revision}`, ...plugins.map((p) => `  ${pluginUri(p)} ${p.version}`)].join('\n') + '\n';

  async function main(argv: readonly string[] = process.argv): Promise<void> {
    const program = new Command(name)
      .description(options.description ?? 'Berth container runtime daemon (containerd v1 API compatible)')
      .option('-v, --version', 'print the version of the daemon and of each of its plugins')
      .option('-c, --config <file>', `path to the configuration file (default ${defaultConfigFile} when present)`)
      .option('-a, --address <path>', 'address for the gRPC unix socket')
      .option('--root <dir>', 'root directory for persistent data')
      .option('--state <dir>', 'state directory for runtime data')
      .addOption(new Option('-l, --log-level <level>', 'log level').choices([...LOG_LEVELS]))
      .action(async (flags: Flags & { version?: boolean }) => {
        if (flags.version) process.stdout.write(versionText());
        else await run(flags);
      });

    const configCommand = program.command('config').description('information on the configuration');
    configCommand
      .command('default')
      .description('print the full default configuration, with every plugin section (installed plugins included)')
      .action(async () => {
        // The root (and trust) of the config file when one is named or present: installed plugins' sections appear too.
        const { config: given, baseDir } = await resolveConfig(program.opts<Flags>());
        const composed = await compose(given, baseDir);
        const config = validateServerConfig({});
        for (const manifest of composed.plugins) {
          if (manifest.config) config.plugins[pluginUri(manifest)] = structuredClone(manifest.config.defaults) as Record<string, unknown>;
        }
        process.stdout.write(renderServerConfig(config));
      });
    configCommand
      .command('validate [file]')
      .description('check a configuration file (and the plugins it names) without starting anything')
      .action(async (file: string | undefined) => {
        const source = file ?? program.opts<Flags>().config ?? defaultConfigFile;
        const { config, baseDir } = await resolveConfig({ config: source });
        const composed = await compose(config, baseDir);
        // Warnings (a section for a plugin that is not in the composition, say) are shown, not failed on.
        const log = createLogger({ level: 'warn', write: (line) => process.stderr.write(`${line}\n`) });
        PluginHost.create({
          log,
          configSource: source,
          plugins: composed.plugins,
          sources: composed.sources,
          server: { root: config.root, state: config.state, grpcAddress: config.grpc.address, ttrpcAddress: ttrpcAddressOf(config), version, revision },
          pluginConfig: config.plugins,
          disabled: config.disabled_plugins,
          required: config.required_plugins,
        });
        process.stdout.write(`configuration is valid (${composed.plugins.length} plugins)\n`);
      });

    try {
      await program.parseAsync([...argv]);
    } catch (err) {
      process.stderr.write(`${name}: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    }
  }

  return { name, version, revision, plugins, compose, start, versionText, main };
}

/** Tells systemd (when it runs the daemon as a notify service) how the daemon is; a failure is logged, not fatal. */
function notifyServiceManager(log: Logger, state: string): void {
  try {
    sdNotify(state);
  } catch (err) {
    log.warn('cannot notify the service manager', { error: err, socket: process.env.NOTIFY_SOCKET });
  }
}
