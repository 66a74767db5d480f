import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nullLogger, type Logger } from '../log/logger.js';
import { PluginHost } from '../registry/host.js';
import type { AnyPluginManifest, ServerInfo } from '../registry/manifest.js';
import type { AnyToken } from '../registry/token.js';

export interface TestHostOptions {
  readonly plugins: readonly AnyPluginManifest[];
  /** Instances standing in for tokens no plugin of the list provides. */
  readonly overrides?: ReadonlyArray<readonly [AnyToken, unknown]>;
  readonly pluginConfig?: Readonly<Record<string, unknown>>;
  readonly disabled?: readonly string[];
  readonly required?: readonly string[];
  readonly log?: Logger;
  /** Reuse a root/state directory (to test reopening); otherwise a fresh temp dir removed by close(). */
  readonly dir?: string;
  /** Initialise everything at once (default) or leave it to `host.resolve`. */
  readonly lazy?: boolean;
  readonly pluginApiVersion?: string;
  readonly pluginDirs?: boolean;
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
      provided: options.overrides,
      log: options.log ?? nullLogger,
      pluginApiVersion: options.pluginApiVersion,
      pluginDirs: options.pluginDirs,
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
