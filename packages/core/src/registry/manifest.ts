import type { Deps, Provided, ProvidesSpec, TokenRecord } from './token.js';

/**
 * The plugin API version: the manifest shape, the init context, token semantics and errdefs. Minor = additive,
 * major = breaking. Plugins declare a semver range (`pluginApi: '^1.0.0'`) that the host checks at load time.
 */
export const PLUGIN_API_VERSION = '2.0.0';
export const MANIFEST_TYPE = '@berth/PluginManifest';
export const MANIFEST_VERSION = 1;

export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
}

/** Node's process.arch as Go's GOARCH, the names containerd's platforms use. */
const GOARCH: Readonly<Record<string, string>> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** This host's platform as containerd names it (what a plugin that runs natively lists in introspection). */
export function hostPlatform(): Platform {
  return { os: 'linux', architecture: GOARCH[process.arch] ?? process.arch };
}

/** What a plugin tells introspection about itself, filled during init (containerd's InitContext.Meta). */
export interface PluginMeta {
  readonly exports: Record<string, string>;
  readonly platforms: Platform[];
  readonly capabilities: string[];
}

/** Facts about the composition a plugin runs in (`coreTokens.server`). */
export interface ServerInfo {
  readonly root: string;
  readonly state: string;
  readonly grpcAddress: string;
  readonly ttrpcAddress: string;
  readonly version: string;
  readonly revision: string;
}

/** A plugin's own directories (`coreTokens.dirs`): `<root>/<uri>` and `<state>/<uri>`, created before its init. */
export interface PluginDirs {
  readonly root: string;
  readonly state: string;
}

/**
 * The per-plugin context handed to init: the plugin's identity and its introspection record. Never a container,
 * never another plugin; every service (logger, dirs, server facts, metrics) is a token in `requires`.
 */
export interface PluginContext {
  readonly uri: string;
  readonly type: string;
  readonly id: string;
  /** What introspection shows about this plugin; init may add exports and capabilities. */
  readonly meta: PluginMeta;
}

/** A JSON Schema for a plugin's config section (ajv; `JSONSchemaType<C>` from `@berth/core` checks it against C). */
export type ConfigSchema = Readonly<Record<string, unknown>>;

export interface PluginConfigSpec<C> {
  readonly schema: ConfigSchema;
  readonly defaults: C;
}

export interface PluginDefinition<R extends TokenRecord, C, P extends ProvidesSpec | undefined, I extends Provided<P>> {
  /** A versioned kind string: containerd's (`io.containerd.content.v1`), berth's (`io.berth.<kind>.v<N>`) or a vendor's (`io.<vendor>.<kind>.v<N>`). */
  readonly type: string;
  /** Short kebab-case id; the URI is `${type}.${id}`. */
  readonly id: string;
  /** The package's own semver (reported, never gating). */
  readonly version: string;
  /** Semver range of PLUGIN_API_VERSION this plugin works with. */
  readonly pluginApi: string;
  readonly description?: string;
  /**
   * What init's result provides: one token or contribution point (init returns its value), or a record of them
   * (init returns an object with one property per key).
   */
  readonly provides?: P;
  readonly requires?: R;
  readonly config?: PluginConfigSpec<C>;
  /** Platforms reported by introspection (containerd's Meta.Platforms). */
  readonly platforms?: readonly Platform[];
  init(deps: Deps<R>, config: C, ctx: PluginContext): I | Promise<I>;
  /** Teardown, called in reverse init order with what init returned. Defaults to its own close(), if any. */
  close?(instance: I): void | Promise<void>;
}

export interface PluginManifest<
  R extends TokenRecord = TokenRecord,
  C = unknown,
  P extends ProvidesSpec | undefined = ProvidesSpec | undefined,
  I extends Provided<P> = Provided<P>,
> extends PluginDefinition<R, C, P, I> {
  readonly $$type: typeof MANIFEST_TYPE;
  readonly manifestVersion: typeof MANIFEST_VERSION;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyPluginManifest = PluginManifest<any, any, any, any>;

export function definePlugin<
  const R extends TokenRecord = {},
  C = Record<string, never>,
  const P extends ProvidesSpec | undefined = undefined,
  I extends Provided<P> = Provided<P>,
>(definition: PluginDefinition<R, C, P, I>): PluginManifest<R, C, P, I> {
  return Object.freeze({ ...definition, $$type: MANIFEST_TYPE, manifestVersion: MANIFEST_VERSION });
}

export function pluginUri(manifest: { type: string; id: string }): string {
  return `${manifest.type}.${manifest.id}`;
}

/** Structural check of the envelope (never instanceof: the manifest may come from another copy of core). */
export function isPluginManifest(value: unknown): value is AnyPluginManifest {
  if (value === null || typeof value !== 'object') return false;
  const v = value as Record<string, unknown>;
  return v.$$type === MANIFEST_TYPE && typeof v.type === 'string' && typeof v.id === 'string' && typeof v.init === 'function';
}

/** Thrown from init when the plugin cannot run on this host; it and its dependents are reported as `skip`. */
export class SkipPluginError extends Error {
  readonly skip = true;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SkipPluginError';
  }
}

export function isSkipPlugin(err: unknown): boolean {
  return err !== null && typeof err === 'object' && (err as { skip?: unknown }).skip === true;
}
