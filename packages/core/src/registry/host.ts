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
import { PluginKind } from '../kinds/plugin-kind.js';
import { nullLogger, type Logger } from '../log/logger.js';
import { MetricsRegistry } from '../metrics/metrics.js';
import { topologicalOrder } from './graph.js';
import {
  isPluginManifest,
  isSkipPlugin,
  MANIFEST_VERSION,
  PLUGIN_API_VERSION,
  pluginUri,
  type AnyPluginManifest,
  type PluginContext,
  type PluginDirs,
  type PluginMeta,
  type ServerInfo,
} from './manifest.js';
import type { PluginRecord, PluginRegistryView, PluginStatus } from './records.js';
import {
  createToken,
  describeProvides,
  describeRequirement,
  withRoles,
  type AnyToken,
  type ContributionPoint,
  type Override,
  type Providable,
  type ProvidesSpec,
  type Token,
  type TokenRecord,
} from './token.js';

/** Provided by the host itself. `logger`, `dirs` and `metrics` are plugin-scoped: each plugin gets its own. */
export const coreTokens = {
  /** A live view of the composition's plugins (introspection). */
  plugins: createToken<PluginRegistryView>('core.plugins'),
  /** The server facts (root, state, addresses, version). */
  server: createToken<ServerInfo>('core.server'),
  /** The plugin's own logger: every line carries `plugin=<uri>`. */
  logger: createToken<Logger>('core.logger'),
  /** The composition's logger, without a plugin field. */
  rootLogger: createToken<Logger>('core.root-logger'),
  /** The plugin's `<root>/<uri>` and `<state>/<uri>`, created (0700) when the plugin requires them. */
  dirs: createToken<PluginDirs>('core.dirs'),
  /** The plugin's metrics registry, rendered on `/v1/metrics` by the daemon. */
  metrics: createToken<MetricsRegistry>('core.metrics'),
} as const;

const PLUGIN_SCOPED = new Set<symbol>([coreTokens.logger.key, coreTokens.dirs.key, coreTokens.metrics.key]);

/** Checks a value a plugin provides for one token or point (the daemon checks gRPC services against their protos). */
export interface ProvidedValidator {
  readonly target: Providable;
  validate(value: unknown, plugin: { readonly uri: string; readonly id: string; readonly source?: string }): void | Promise<void>;
}

export interface HostOptions {
  /** The composition, in order (order breaks ties between providers of one token). */
  readonly plugins: readonly AnyPluginManifest[];
  readonly server: ServerInfo;
  /** Raw config sections keyed by plugin URI. */
  readonly pluginConfig?: Readonly<Record<string, unknown>>;
  readonly disabled?: readonly string[];
  readonly required?: readonly string[];
  readonly log?: Logger;
  /** Instances standing in for tokens (tests; host services); they take precedence over plugins. */
  readonly overrides?: readonly Override[];
  /** Where each third-party plugin came from, by URI. */
  readonly sources?: Readonly<Record<string, string>>;
  /** The config file the sections came from, named in config errors. */
  readonly configSource?: string;
  /** The plugin API version to check ranges against (tests). */
  readonly pluginApiVersion?: string;
  /** Checks run on what a plugin provides, right after its init; a failure marks that plugin `error`. */
  readonly validators?: readonly ProvidedValidator[];
  /** How long one plugin's init may take before it is marked `error` (default 60 s). */
  readonly initTimeoutMs?: number;
}

interface ProvidedSlot {
  /** The property of init's result holding the value; absent when `provides` names one token or point. */
  readonly key?: string;
  readonly target: Providable;
  /** The target and every role it satisfies: the keys the value is registered under. */
  readonly targets: readonly Providable[];
}

interface Entry {
  readonly manifest: AnyPluginManifest;
  readonly uri: string;
  readonly slots: readonly ProvidedSlot[];
  status: PluginStatus;
  error?: Error;
  config?: unknown;
  /** What init returned. */
  instance?: unknown;
  init?: Promise<void>;
  readonly meta: PluginMeta;
  /** URIs of the plugins this one depends on (for contribution points: its contributors). */
  deps: string[];
  /** The plugin's child container: its scoped services, falling back to the composition's. */
  scope?: DependencyContainer;
  metrics?: MetricsRegistry;
}

/** Thrown by initAll/resolve when a plugin named in required_plugins failed or was skipped. */
export class RequiredPluginError extends Error {
  readonly code = 'BERTH_ERR_PLUGIN_REQUIRED';
  constructor(uri: string, cause?: Error) {
    super(`required plugin ${uri} did not load: ${cause?.message ?? 'unknown reason'}`, { cause });
  }
}

/** `io.<vendor>.<kind>.v<N>`; ids are short lower-case words joined by `-` or `_`. */
const KIND_PATTERN = /^io\.[a-z0-9]+(?:-[a-z0-9]+)*(?:\.[a-z0-9]+(?:[-_][a-z0-9]+)*)+\.v[0-9]+$/;
const ID_PATTERN = /^[a-z0-9]+(?:[-_][a-z0-9]+)*$/;
const RESERVED_VENDORS = new Set(['containerd', 'berth']);
const KNOWN_KINDS = new Set<string>(Object.values(PluginKind));

/** Where one provider's value for one token or point lives in the composition container. */
const providerKey = (target: Providable, uri: string) => Symbol.for(`@berth/provider:${target.id}#${uri}`);

/**
 * The plugin registry of one composition, on a tsyringe container. `create` checks everything that can be checked
 * before running code (envelopes, kind names, the plugin API gate, every config section, the graph and its cycles)
 * and reports config errors all at once. `initAll` then initialises eagerly, in parallel topological order (the
 * daemon); `resolve` initialises only a token's dependency closure (the CLI).
 *
 * The container is the registry: every value a plugin provides is registered in the composition's child container
 * under one key per (token, provider), each token's own key resolves to its first loaded provider, and each
 * plugin's dependencies are resolved from a child container of its own that holds its scoped services (logger,
 * dirs, metrics). Plugins never see a container.
 */
export class PluginHost implements PluginRegistryView {
  readonly container: DependencyContainer;
  private readonly entries = new Map<string, Entry>();
  /** Providers of each token or point key, in composition order. */
  private readonly providers = new Map<symbol, Entry[]>();
  /** Keys the host or an override answers itself. */
  private readonly hostKeys = new Set<symbol>();
  private readonly validators = new Map<symbol, ProvidedValidator[]>();
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
    const hostValues: Override[] = [
      { token: coreTokens.plugins, value: this },
      { token: coreTokens.server, value: options.server },
      { token: coreTokens.rootLogger, value: this.log },
      ...(options.overrides ?? []),
    ];
    for (const { token, value } of hostValues) {
      this.hostKeys.add(token.key);
      this.container.register(token.key, { useValue: value });
    }
    for (const v of options.validators ?? []) this.validators.set(v.target.key, [...(this.validators.get(v.target.key) ?? []), v]);

    // 1. Envelopes and identity.
    for (const manifest of options.plugins) {
      if (!isPluginManifest(manifest)) throw new PluginManifestError(`not a plugin manifest: ${describe(manifest)}`);
      const uri = pluginUri(manifest);
      if (manifest.manifestVersion !== MANIFEST_VERSION) {
        throw new PluginManifestError(`plugin ${uri}: manifest version ${String(manifest.manifestVersion)} is not supported`);
      }
      if (this.entries.has(uri)) throw new PluginManifestError(`plugin ${uri} is registered twice`);
      const slots = describeProvides(manifest.provides as ProvidesSpec | undefined).map(({ key, target }) => ({
        key,
        target,
        targets: target.kind === 'token' ? withRoles(target) : [target],
      }));
      const entry: Entry = {
        manifest,
        uri,
        slots,
        status: disabled.has(uri) ? 'disabled' : 'pending',
        meta: { exports: {}, platforms: [...(manifest.platforms ?? [])], capabilities: [] },
        deps: [],
      };
      this.entries.set(uri, entry);
      if (entry.status === 'disabled') continue;
      // 2. Names, then the API gate: the host decides compatibility.
      const refusal = this.identityProblem(manifest, uri) ?? this.providesProblem(entry);
      if (refusal) this.fail(entry, new PluginManifestError(refusal));
      const range = semver.validRange(manifest.pluginApi);
      if (entry.status === 'pending' && (!range || !semver.satisfies(apiVersion, range, { includePrerelease: semver.prerelease(apiVersion) !== null }))) {
        this.fail(entry, new PluginApiMismatchError(uri, manifest.version, manifest.pluginApi, apiVersion));
      }
      // A refused plugin still counts as a provider, so its dependents name it when they fail.
      for (const slot of slots) for (const target of slot.targets) this.addProvider(target, entry);
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

    // 4. The graph: unsatisfied dependencies and cycles. A consumer of a contribution point depends on every
    //    contributor, so contributions are in place before the owner's init.
    const edges = new Map<string, string[]>();
    for (const entry of this.entries.values()) {
      if (entry.status !== 'pending') continue;
      for (const requirement of Object.values((entry.manifest.requires ?? {}) as TokenRecord)) {
        const { target } = describeRequirement(requirement);
        if (this.hostKeys.has(target.key) || PLUGIN_SCOPED.has(target.key)) continue;
        for (const provider of this.providers.get(target.key) ?? []) if (provider !== entry) entry.deps.push(provider.uri);
      }
      edges.set(entry.uri, entry.deps);
    }
    topologicalOrder([...edges.keys()], edges);
  }

  private identityProblem(manifest: AnyPluginManifest, uri: string): string | undefined {
    if (!KIND_PATTERN.test(manifest.type)) {
      return `plugin ${uri}: type ${JSON.stringify(manifest.type)} is not a kind name (io.<vendor>.<kind>.v<N>, e.g. io.example.greeter.v1)`;
    }
    if (!ID_PATTERN.test(manifest.id)) return `plugin ${uri}: id ${JSON.stringify(manifest.id)} must be lower-case words joined by - or _`;
    const vendor = manifest.type.split('.')[1]!;
    if (this.options.sources?.[uri] && RESERVED_VENDORS.has(vendor) && !KNOWN_KINDS.has(manifest.type)) {
      return `plugin ${uri}: io.${vendor}.* kinds are reserved to the ones berth defines; a third-party kind is io.<vendor>.<kind>.v<N>`;
    }
    return undefined;
  }

  /** Two providers of one token under one id could not be told apart by name; the later one is refused. */
  private providesProblem(entry: Entry): string | undefined {
    const seen = new Set<symbol>();
    for (const slot of entry.slots) {
      if (seen.has(slot.target.key)) return `plugin ${entry.uri}: provides "${slot.target.id}" twice`;
      seen.add(slot.target.key);
      for (const target of slot.targets) {
        const twin = (this.providers.get(target.key) ?? []).find((e) => e.manifest.id === entry.manifest.id && e.status !== 'disabled');
        if (twin) return `plugin ${entry.uri}: ${twin.uri} already provides "${target.id}" under the id "${entry.manifest.id}"`;
      }
    }
    return undefined;
  }

  private addProvider(target: Providable, entry: Entry): void {
    const list = this.providers.get(target.key);
    if (list) {
      if (!list.includes(entry)) list.push(entry);
      return;
    }
    this.providers.set(target.key, [entry]);
    // The token's own key answers its first loaded provider, in composition order.
    if (!this.hostKeys.has(target.key) && target.kind === 'token') {
      this.container.register(target.key, { useFactory: () => this.first(target) });
    }
  }

  /** Initialises every plugin, in parallel where the graph allows. Throws only for a failed required plugin. */
  async initAll(): Promise<void> {
    await Promise.all([...this.entries.values()].map((entry) => this.start(entry)));
    this.checkRequired([...this.entries.values()]);
  }

  /** The instance for a token, initialising only what it needs (lazy compositions). */
  async resolve<T>(token: Token<T>): Promise<T> {
    if (!this.hostKeys.has(token.key)) {
      for (const entry of this.providers.get(token.key) ?? []) {
        await this.start(entry);
        this.checkRequired([entry]);
        if (entry.status === 'ok') break;
      }
    }
    return this.get(token);
  }

  /** The instance for a token after init: an override, else the first provider, in composition order, that loaded. */
  get<T>(token: Token<T>): T {
    if (!this.hostKeys.has(token.key) && !this.providers.get(token.key)?.some((e) => e.status === 'ok')) {
      throw new PluginDependencyMissingError('(host)', token.id);
    }
    return this.container.resolve<T>(token.key);
  }

  /** Every loaded provider of a token, or every contribution to a point, keyed by plugin id in composition order. */
  all<T>(target: Token<T> | ContributionPoint<T>): ReadonlyMap<string, T> {
    const out = new Map<string, T>();
    for (const entry of this.providers.get(target.key) ?? []) {
      if (entry.status === 'ok') out.set(entry.manifest.id, this.container.resolve<T>(providerKey(target, entry.uri)));
    }
    return out;
  }

  /** Each loaded plugin's own metrics registry, by URI (those that asked for one). */
  metricsRegistries(): ReadonlyMap<string, MetricsRegistry> {
    const out = new Map<string, MetricsRegistry>();
    for (const entry of this.entries.values()) if (entry.status === 'ok' && entry.metrics) out.set(entry.uri, entry.metrics);
    return out;
  }

  list(): readonly PluginRecord[] {
    return [...this.entries.values()].map((entry) => this.record(entry));
  }

  /** Closes loaded plugins in reverse init order; errors are logged, never thrown. */
  async close(): Promise<void> {
    for (const entry of this.closeOrder.splice(0).reverse()) await this.closeEntry(entry);
    this.container.clearInstances();
  }

  private first(target: AnyToken): unknown {
    const entry = (this.providers.get(target.key) ?? []).find((e) => e.status === 'ok');
    if (!entry) throw new PluginDependencyMissingError('(host)', target.id);
    return this.container.resolve(providerKey(target, entry.uri));
  }

  private start(entry: Entry): Promise<void> {
    entry.init ??= this.initEntry(entry);
    return entry.init;
  }

  private async initEntry(entry: Entry): Promise<void> {
    if (entry.status !== 'pending') return;
    const { manifest, uri } = entry;
    const scope = this.scopeOf(entry);
    const deps: Record<string, unknown> = {};
    for (const [name, requirement] of Object.entries((manifest.requires ?? {}) as TokenRecord)) {
      const { target, mode } = describeRequirement(requirement);
      if (target.key === coreTokens.dirs.key) await this.makeDirs(entry);
      if (this.hostKeys.has(target.key) || PLUGIN_SCOPED.has(target.key)) {
        const value = scope.resolve(target.key);
        deps[name] = mode === 'all' ? new Map([['host', value]]) : value;
        continue;
      }
      const candidates = (this.providers.get(target.key) ?? []).filter((c) => c !== entry);
      if (mode === 'all') {
        await Promise.all(candidates.map((c) => this.start(c)));
        deps[name] = new Map(candidates.filter((c) => c.status === 'ok').map((c) => [c.manifest.id, scope.resolve(providerKey(target, c.uri))]));
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
      if (chosen) deps[name] = scope.resolve(target.key);
      else if (mode === 'optional') deps[name] = undefined;
      else if (candidates.length === 0) return this.fail(entry, new PluginDependencyMissingError(uri, target.id));
      else if (candidates.every((c) => c.status === 'skip' || c.status === 'disabled')) {
        return this.skip(entry, `dependency ${candidates.map((c) => c.uri).join(', ')} was skipped`);
      } else {
        const failed = candidates.find((c) => c.status === 'error');
        return this.fail(entry, new Error(`dependency ${failed?.uri ?? target.id} failed to load: ${failed?.error?.message ?? 'unknown error'}`, { cause: failed?.error }));
      }
    }
    const ctx: PluginContext = { uri, type: manifest.type, id: manifest.id, meta: entry.meta };
    let instance: unknown;
    try {
      instance = await this.withTimeout(entry, () => manifest.init(deps as never, entry.config, ctx));
    } catch (err) {
      if (isSkipPlugin(err)) this.skip(entry, (err as Error).message);
      else this.fail(entry, err as Error);
      return;
    }
    entry.instance = instance;
    try {
      for (const slot of entry.slots) await this.check(entry, slot, valueOf(entry, slot));
    } catch (err) {
      await this.closeEntry(entry);
      this.fail(entry, err as Error);
      return;
    }
    for (const slot of entry.slots) {
      const value = valueOf(entry, slot);
      for (const target of slot.targets) this.container.register(providerKey(target, uri), { useValue: value });
    }
    entry.status = 'ok';
    this.closeOrder.push(entry);
    this.log.debug('loaded plugin', { plugin: uri, version: manifest.version });
  }

  private scopeOf(entry: Entry): DependencyContainer {
    if (entry.scope) return entry.scope;
    const scope = this.container.createChildContainer();
    const server = this.options.server;
    scope.register(coreTokens.logger.key, { useFactory: () => this.log.child({ plugin: entry.uri }) });
    scope.register(coreTokens.dirs.key, { useValue: { root: join(server.root, entry.uri), state: join(server.state, entry.uri) } });
    scope.register(coreTokens.metrics.key, { useFactory: () => (entry.metrics ??= new MetricsRegistry()) });
    entry.scope = scope;
    return scope;
  }

  private async makeDirs(entry: Entry): Promise<void> {
    const dirs = this.scopeOf(entry).resolve<PluginDirs>(coreTokens.dirs.key);
    await mkdir(dirs.root, { recursive: true, mode: 0o700 });
    await mkdir(dirs.state, { recursive: true, mode: 0o700 });
  }

  /** Runs init with a deadline; an init that finishes after it is closed again, since nobody will use it. */
  private async withTimeout(entry: Entry, init: () => unknown): Promise<unknown> {
    const ms = this.options.initTimeoutMs ?? 60_000;
    const running = Promise.resolve().then(init);
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        reject(new Error(`init did not finish within ${ms / 1000} s`));
      }, ms);
    });
    try {
      return await Promise.race([running, deadline]);
    } catch (err) {
      if (timedOut) running.then((late) => this.closeInstance(entry, late), () => undefined);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private async check(entry: Entry, slot: ProvidedSlot, value: unknown): Promise<void> {
    if (value === undefined || value === null) {
      throw new PluginManifestError(`plugin ${entry.uri}: init returned no value for ${slot.key ? `provides.${slot.key} ` : ''}"${slot.target.id}"`);
    }
    for (const target of slot.targets) {
      for (const v of this.validators.get(target.key) ?? []) {
        await v.validate(value, { uri: entry.uri, id: entry.manifest.id, source: this.options.sources?.[entry.uri] });
      }
    }
  }

  private async closeEntry(entry: Entry): Promise<void> {
    await this.closeInstance(entry, entry.instance);
  }

  private async closeInstance(entry: Entry, instance: unknown): Promise<void> {
    try {
      if (entry.manifest.close) await entry.manifest.close(instance);
      else await closeOwn(instance);
    } catch (err) {
      this.log.warn('plugin close failed', { plugin: entry.uri, error: err });
    }
  }

  private skip(entry: Entry, reason: string): void {
    entry.status = 'skip';
    entry.error = new Error(`${reason}: skip plugin`);
    this.log.info('skip loading plugin', { plugin: entry.uri, reason });
  }

  private fail(entry: Entry, err: Error): void {
    entry.status = 'error';
    entry.error = err instanceof Error ? err : new Error(String(err));
    this.log.warn('failed to load plugin', { plugin: entry.uri, error: entry.error.message });
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
      provides: entry.slots.filter((s) => s.target.kind === 'token').map((s) => s.target.id),
      contributes: entry.slots.filter((s) => s.target.kind === 'point').map((s) => s.target.id),
      platforms: entry.meta.platforms,
      exports: entry.meta.exports,
      capabilities: entry.meta.capabilities,
      ...(entry.error ? { error: { message: entry.error.message, ...(typeof code === 'string' ? { code } : {}) } } : {}),
      ...(this.options.sources?.[entry.uri] ? { source: this.options.sources[entry.uri] } : {}),
    };
  }
}

/** The value of one provided slot: init's result, or its property for a record `provides`. */
function valueOf(entry: Entry, slot: ProvidedSlot): unknown {
  if (slot.key === undefined) return entry.instance;
  const instance = entry.instance as Record<string, unknown> | null | undefined;
  return instance === null || typeof instance !== 'object' ? undefined : instance[slot.key];
}

async function closeOwn(instance: unknown): Promise<void> {
  if (instance === null || typeof instance !== 'object') return;
  const i = instance as { close?: () => unknown };
  if (typeof i.close === 'function') await i.close();
}

function describe(value: unknown): string {
  if (value === null || typeof value !== 'object') return String(value);
  const v = value as Record<string, unknown>;
  return typeof v.type === 'string' && typeof v.id === 'string' ? `${v.type}.${v.id}` : Object.keys(v).join(',') || '{}';
}
