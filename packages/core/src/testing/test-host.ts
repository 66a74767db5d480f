import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nullLogger, type Logger } from '../log/logger.js';
import { PluginHost, type HostOptions } from '../registry/host.js';
import type { AnyPluginManifest, ServerInfo } from '../registry/manifest.js';
import type { Override } from '../registry/token.js';

export interface TestHostOptions {
  readonly plugins: readonly AnyPluginManifest[];
  /** Instances standing in for tokens (`override(token, instance)`, type-checked); they win over plugins. */
  readonly overrides?: readonly Override[];
  readonly pluginConfig?: Readonly<Record<string, unknown>>;
  readonly disabled?: readonly string[];
  readonly required?: readonly string[];
  readonly log?: Logger;
  /** Reuse a root/state directory (to test reopening); otherwise a fresh temp dir removed by close(). */
  readonly dir?: string;
  /** Initialise everything at once (default) or leave it to `host.resolve`. */
  readonly lazy?: boolean;
  readonly pluginApiVersion?: string;
  readonly validators?: HostOptions['validators'];
  readonly initTimeoutMs?: number;
  /** Third-party sources by URI (as plugin_packages records them). */
  readonly sources?: Readonly<Record<string, string>>;
}

export interface TestHost {
  readonly host: PluginHost;
  readonly dir: string;
  readonly server: ServerInfo;
  /** Closes the plugins, then removes the temp dir (unless `dir` was given). */
  close(): Promise<void>;
}

/** Boots plugin manifests the way the daemon does, on temp dirs. */
export async function createTestHost(options: TestHostOptions): Promise<TestHost> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'berth-test-')));
  const server: ServerInfo = {
    root: join(dir, 'root'),
    state: join(dir, 'state'),
    grpcAddress: join(dir, 'berth.sock'),
    ttrpcAddress: join(dir, 'berth.sock.ttrpc'),
    version: '0.0.0-test',
    revision: 'test',
  };
  const removeDir = async () => {
    if (!options.dir) await rm(dir, { recursive: true, force: true });
  };
  let host: PluginHost;
  try {
    host = PluginHost.create({
      plugins: options.plugins,
      server,
      pluginConfig: options.pluginConfig,
      disabled: options.disabled,
      required: options.required,
      overrides: options.overrides,
      log: options.log ?? nullLogger,
      pluginApiVersion: options.pluginApiVersion,
      validators: options.validators,
      initTimeoutMs: options.initTimeoutMs,
      sources: options.sources,
    });
  } catch (err) {
    await removeDir();
    throw err;
  }
  const close = async () => {
    await host.close();
    await removeDir();
  };
  if (!options.lazy) {
    try {
      await host.initAll();
    } catch (err) {
      await close();
      throw err;
    }
  }
  return { host, dir, server, close };
}
