// tsyringe needs the Reflect metadata polyfill loaded before it; loading it here frees every importer of core from it.
import 'reflect-metadata';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import semver from 'semver';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import { compileSchema, deepFreeze, describeAjvErrors } from '../config/ajv.js';
import {
  ConfigInvalidError,
  PluginApiMismatchError,
  PluginDependencyMissingError,
  PluginManifestError,
} from '../config/errors.js';
import { nullLogger, type Logger } from '../log/logger.js';
import { topologicalOrder } from './graph.js';
import {
  isPluginManifest,
  isSkipPlugin,
  MANIFEST_VERSION,
  PLUGIN_API_VERSION,
  pluginUri,
  type AnyPluginManifest,
  type PluginContext,
  type PluginMeta,
  type ServerInfo,
} from './manifest.js';
import type { PluginRecord, PluginRegistryView, PluginStatus } from './records.js';
import { createToken, describeRequirement, type AnyToken, type MultiToken, type Token, type TokenRecord } from './token.js';

/** Provided by the host itself to every composition. */
export const coreTokens = {
  /** A live view of the composition's plugins (introspection). */
  plugins: createToken<PluginRegistryView>('core.plugins'),
  /** The server facts (root, state, addresses, version). */
  server: createToken<ServerInfo>('core.server'),
  logger: createToken<Logger>('core.logger'),
} as const;

export interface HostOptions {
  /** The composition, in order (order breaks ties between providers of one token). */
  readonly plugins: readonly AnyPluginManifest[];
  readonly server: ServerInfo;
  /** Raw config sections keyed by plugin URI. */
  readonly pluginConfig?: Readonly<Record<string, unknown>>;
  readonly disabled?: readonly string[];
  readonly required?: readonly string[];
  readonly log?: Logger;
  /** Instances to provide directly (tests; host services). */
  readonly provided?: ReadonlyArray<readonly [AnyToken, unknown]>;
  /** Where each third-party plugin came from, by URI. */
  readonly sources?: Readonly<Record<string, string>>;
  /** The config file the sections came from, named in config errors. */
  readonly configSource?: string;
  /** Create `<root>/<uri>` and `<state>/<uri>` before each init (default true); a CLI whose plugins keep nothing on disk turns it off. */
  readonly pluginDirs?: boolean;
  /** The plugin API version to check ranges against (tests). */
  readonly pluginApiVersion?: string;
}

interface Entry {
  readonly manifest: AnyPluginManifest;
  readonly uri: string;
  status: PluginStatus;
  error?: Error;
  config?: unknown;
  instance?: unknown;
  init?: Promise<void>;
  readonly meta: PluginMeta;
  /** URIs of the plugins this one depends on. */
  deps: string[];
}

/** Thrown by initAll/resolve when a plugin named in required_plugins failed or was skipped. */
export class RequiredPluginError extends Error {
  readonly code = 'BERTH_ERR_PLUGIN_REQUIRED';
  constructor(uri: string, cause?: Error) {
    super(`required plugin ${uri} did not load: ${cause?.message ?? 'unknown reason'}`, { cause });
  }
}

/**
 * The plugin registry of one composition. `create` checks everything that can be checked before running code
 * (envelopes, the plugin API gate, every config section, the graph and its cycles) and reports config errors all at
 * once. `initAll` then initialises eagerly, in parallel topological order (the daemon); `resolve` initialises only a
 * token's dependency closure (the CLI). Instances live in a tsyringe child container of this composition.
 */
export class PluginHost implements PluginRegistryView {
  readonly container: DependencyContainer;
  private readonly entries = new Map<string, Entry>();
  private readonly providers = new Map<symbol, Entry[]>();
  private readonly provided = new Map<symbol, unknown>();
  private readonly closeOrder: Entry[] = [];
  private readonly log: Logger;

  private constructor(private readonly options: HostOptions) {
    this.log = options.log ?? nullLogger;
    this.container = rootContainer.createChildContainer();
  }

  static create(options: HostOptions): PluginHost {
    const host = new PluginHost(options);
    host.prepare();
    return host;
  }

  private prepare(): void {
    const { options } = this;
    const disabled = new Set(options.disabled ?? []);
    const apiVersion = options.pluginApiVersion ?? PLUGIN_API_VERSION;
    for (const [token, value] of [
      [coreTokens.plugins, this],
      [coreTokens.server, options.server],
      [coreTokens.logger, this.log],
      ...(options.provided ?? []),
    ] as const) {
      this.provided.set(token.key, value);
      this.container.register(token.key, { useValue: value });
    }

    // 1. Envelopes and identity.
    for (const manifest of options.plugins) {
      if (!isPluginManifest(manifest)) throw new PluginManifestError(`not a plugin manifest: ${describe(manifest)}`);
      const uri = pluginUri(manifest);
      if (manifest.manifestVersion !== MANIFEST_VERSION) {
        throw new PluginManifestError(`plugin ${uri}: manifest version ${String(manifest.manifestVersion)} is not supported`);
      }
      if (this.entries.has(uri)) throw new PluginManifestError(`plugin ${uri} is registered twice`);
      const entry: Entry = {
        manifest,
        uri,
        status: disabled.has(uri) ? 'disabled' : 'pending',
        meta: { exports: {}, platforms: [...(manifest.platforms ?? [])], capabilities: [] },
        deps: [],
      };
      this.entries.set(uri, entry);
      if (entry.status === 'disabled') continue;
      // 2. The API gate: the host decides compatibility.
      const range = semver.validRange(manifest.pluginApi);
      if (!range || !semver.satisfies(apiVersion, range, { includePrerelease: semver.prerelease(apiVersion) !== null })) {
        this.fail(entry, new PluginApiMismatchError(uri, manifest.version, manifest.pluginApi, apiVersion));
      }
      // A refused plugin still counts as a provider, so its dependents name it when they fail.
      if (manifest.provides) {
        const list = this.providers.get(manifest.provides.key) ?? [];
        list.push(entry);
        this.providers.set(manifest.provides.key, list);
      }
    }
    for (const uri of options.required ?? []) {
      if (!this.entries.has(uri)) throw new ConfigInvalidError([`required_plugins: no plugin ${uri} in this composition`], options.configSource);
    }

    // 3. Every config section, before any plugin runs.
    const problems: string[] = [];
    const sections = options.pluginConfig ?? {};
    for (const uri of Object.keys(sections)) {
      if (!this.entries.has(uri)) {
        this.log.warn('config section for an unknown plugin is ignored', { section: uri, known: [...this.entries.keys()].join(',') });
      }
    }
    for (const entry of this.entries.values()) {
      if (entry.status === 'disabled') continue;
      const spec = entry.manifest.config;
      const raw = sections[entry.uri];
      if (!spec) {
        if (raw !== undefined && Object.keys(raw as object).length > 0) {
          problems.push(`plugins."${entry.uri}": this plugin takes no configuration (${Object.keys(raw as object).join(', ')})`);
        }
        entry.config = deepFreeze({});
        continue;
      }
      const value = structuredClone({ ...(spec.defaults as object), ...((raw as object | undefined) ?? {}) });
      const validate = compileSchema(spec.schema);
      if (!validate(value)) problems.push(...describeAjvErrors(`plugins."${entry.uri}"`, validate.errors));
      else entry.config = deepFreeze(value);
    }
    if (problems.length > 0) throw new ConfigInvalidError(problems, options.configSource);

    // 4. The graph: unsatisfied dependencies and cycles.
    const edges = new Map<string, string[]>();
    for (const entry of this.entries.values()) {
      if (entry.status !== 'pending') continue;
      for (const requirement of Object.values((entry.manifest.requires ?? {}) as TokenRecord)) {
        const { token } = describeRequirement(requirement);
        if (this.provided.has(token.key)) continue;
        for (const provider of this.providers.get(token.key) ?? []) entry.deps.push(provider.uri);
      }
      edges.set(entry.uri, entry.deps);
    }
    topologicalOrder([...edges.keys()], edges);
  }

  /** Initialises every plugin, in parallel where the graph allows. Throws only for a failed required plugin. */
  async initAll(): Promise<void> {
    await Promise.all([...this.entries.values()].map((entry) => this.start(entry)));
    this.checkRequired([...this.entries.values()]);
  }

  /** The instance for a token, initialising only what it needs (lazy compositions). */
  async resolve<T>(token: Token<T>): Promise<T> {
    const candidates = this.providers.get(token.key) ?? [];
    for (const entry of candidates) {
      await this.start(entry);
      this.checkRequired([entry]);
      if (entry.status === 'ok') return entry.instance as T;
    }
    return this.get(token);
  }

  /** The instance for a token after init (the first provider, in composition order, that loaded). */
  get<T>(token: Token<T>): T {
    if (this.provided.has(token.key)) return this.provided.get(token.key) as T;
    const entry = (this.providers.get(token.key) ?? []).find((e) => e.status === 'ok');
    if (!entry) throw new PluginDependencyMissingError('(host)', token.id);
    return entry.instance as T;
  }

  /** Every loaded instance of a multi-provider token, in composition order. */
  getAll<T>(token: MultiToken<T>): T[] {
    return (this.providers.get(token.key) ?? []).filter((e) => e.status === 'ok').map((e) => e.instance as T);
  }

  list(): readonly PluginRecord[] {
    return [...this.entries.values()].map((entry) => this.record(entry));
  }

  /** Closes loaded plugins in reverse init order; errors are logged, never thrown. */
  async close(): Promise<void> {
    for (const entry of this.closeOrder.splice(0).reverse()) {
      try {
        const { manifest, instance } = entry;
        if (manifest.close) await manifest.close(instance);
        else await closeInstance(instance);
      } catch (err) {
        this.log.warn('plugin close failed', { plugin: entry.uri, error: err });
      }
    }
    this.container.clearInstances();
  }

  private start(entry: Entry): Promise<void> {
    entry.init ??= this.initEntry(entry);
    return entry.init;
  }

  private async initEntry(entry: Entry): Promise<void> {
    if (entry.status !== 'pending') return;
    const { manifest, uri } = entry;
    const deps: Record<string, unknown> = {};
    for (const [name, requirement] of Object.entries((manifest.requires ?? {}) as TokenRecord)) {
      const { token, optional } = describeRequirement(requirement);
      if (this.provided.has(token.key)) {
        deps[name] = this.provided.get(token.key);
        continue;
      }
      const candidates = this.providers.get(token.key) ?? [];
      if (token.multiple) {
        await Promise.all(candidates.map((c) => this.start(c)));
        deps[name] = candidates.filter((c) => c.status === 'ok').map((c) => c.instance);
        continue;
      }
      let chosen: Entry | undefined;
      for (const candidate of candidates) {
        await this.start(candidate);
        if (candidate.status === 'ok') {
          chosen = candidate;
          break;
        }
      }
      if (chosen) deps[name] = chosen.instance;
      else if (optional) deps[name] = undefined;
      else if (candidates.length === 0) return this.fail(entry, new PluginDependencyMissingError(uri, token.id));
      else if (candidates.every((c) => c.status === 'skip' || c.status === 'disabled')) {
        return this.skip(entry, `dependency ${candidates.map((c) => c.uri).join(', ')} was skipped`);
      } else {
        const failed = candidates.find((c) => c.status === 'error');
        return this.fail(entry, new Error(`dependency ${failed?.uri ?? token.id} failed to load: ${failed?.error?.message ?? 'unknown error'}`, { cause: failed?.error }));
      }
    }
    const ctx: PluginContext = {
      uri,
      type: manifest.type,
      id: manifest.id,
      root: join(this.options.server.root, uri),
      state: join(this.options.server.state, uri),
      log: this.log.child({ plugin: uri }),
      meta: entry.meta,
      server: this.options.server,
    };
    try {
      if (this.options.pluginDirs ?? true) {
        await mkdir(ctx.root, { recursive: true, mode: 0o700 });
        await mkdir(ctx.state, { recursive: true, mode: 0o700 });
      }
      entry.instance = await manifest.init(deps as never, entry.config, ctx);
      entry.status = 'ok';
      this.closeOrder.push(entry);
      if (manifest.provides) this.container.register(manifest.provides.key, { useValue: entry.instance });
      this.log.debug('loaded plugin', { plugin: uri, version: manifest.version });
    } catch (err) {
      if (isSkipPlugin(err)) this.skip(entry, (err as Error).message);
      else this.fail(entry, err as Error);
    }
  }

  private skip(entry: Entry, reason: string): void {
    entry.status = 'skip';
    entry.error = new Error(`${reason}: skip plugin`);
    this.log.info('skip loading plugin', { plugin: entry.uri, reason });
  }

  private fail(entry: Entry, err: Error): void {
    entry.status = 'error';
    entry.error = err;
    this.log.warn('failed to load plugin', { plugin: entry.uri, error: err.message });
  }

  private checkRequired(entries: readonly Entry[]): void {
    const required = new Set(this.options.required ?? []);
    for (const entry of entries) {
      if (required.has(entry.uri) && entry.status !== 'ok') throw new RequiredPluginError(entry.uri, entry.error);
    }
  }

  private record(entry: Entry): PluginRecord {
    const { manifest } = entry;
    const requires = [...new Set(entry.deps.map((uri) => this.entries.get(uri)!.manifest.type))];
    const code = (entry.error as { code?: unknown } | undefined)?.code;
    return {
      uri: entry.uri,
      type: manifest.type,
      id: manifest.id,
      version: manifest.version,
      status: entry.status,
      requires,
      platforms: entry.meta.platforms,
      exports: entry.meta.exports,
      capabilities: entry.meta.capabilities,
      ...(entry.error ? { error: { message: entry.error.message, ...(typeof code === 'string' ? { code } : {}) } } : {}),
      ...(this.options.sources?.[entry.uri] ? { source: this.options.sources[entry.uri] } : {}),
    };
  }
}

async function closeInstance(instance: unknown): Promise<void> {
  if (instance === null || typeof instance !== 'object') return;
  const i = instance as { close?: () => unknown };
  if (typeof i.close === 'function') await i.close();
}

function describe(value: unknown): string {
  if (value === null || typeof value !== 'object') return String(value);
  const v = value as Record<string, unknown>;
  return typeof v.type === 'string' && typeof v.id === 'string' ? `${v.type}.${v.id}` : Object.keys(v).join(',') || '{}';
}
