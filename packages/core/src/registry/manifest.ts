import type { Logger } from '../log/logger.js';
import type { AnyToken, Deps, TokenRecord } from './token.js';

/**
 * The plugin API version: the manifest shape, the init context, token semantics and errdefs. Minor = additive,
 * major = breaking. Plugins declare a semver range (`pluginApi: '^1.0.0'`) that the host checks at load time.
 */
export const PLUGIN_API_VERSION = '1.0.0';
export const MANIFEST_TYPE = '@berth/PluginManifest';
export const MANIFEST_VERSION = 1;

export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
}

/** What a plugin tells introspection about itself, filled during init (containerd's InitContext.Meta). */
export interface PluginMeta {
  readonly exports: Record<string, string>;
  readonly platforms: Platform[];
  readonly capabilities: string[];
}

/** Facts about the composition a plugin runs in. */
export interface ServerInfo {
  readonly root: string;
  readonly state: string;
  readonly grpcAddress: string;
  readonly ttrpcAddress: string;
  readonly version: string;
  readonly revision: string;
}

/** The per-plugin context handed to init: never a container, never another plugin. */
export interface PluginContext {
  readonly uri: string;
  readonly type: string;
  readonly id: string;
  /** `<root>/<uri>`, created before init. */
  readonly root: string;
  /** `<state>/<uri>`, created before init. */
  readonly state: string;
  readonly log: Logger;
  readonly meta: PluginMeta;
  readonly server: ServerInfo;
}

/** A JSON Schema for a plugin's config section (ajv; `JSONSchemaType<C>` from `@berth/core` checks it against C). */
export type ConfigSchema = Readonly<Record<string, unknown>>;

export interface PluginConfigSpec<C> {
  readonly schema: ConfigSchema;
  readonly defaults: C;
}

export interface PluginDefinition<P, R extends TokenRecord, C> {
  /** A versioned kind string: containerd's (`io.containerd.content.v1`) or `io.berth.<kind>.v<N>`. */
  readonly type: string;
  /** Short kebab-case id; the URI is `${type}.${id}`. */
  readonly id: string;
  /** The package's own semver (reported, never gating). */
  readonly version: string;
  /** Semver range of PLUGIN_API_VERSION this plugin works with. */
  readonly pluginApi: string;
  readonly description?: string;
  readonly provides?: AnyToken & { readonly T?: P };
  readonly requires?: R;
  readonly config?: PluginConfigSpec<C>;
  /** Platforms reported by introspection (containerd's Meta.Platforms). */
  readonly platforms?: readonly Platform[];
  init(deps: Deps<R>, config: C, ctx: PluginContext): P | Promise<P>;
  /** Teardown, called in reverse init order. Defaults to the instance's own close(). */
  close?(instance: P): void | Promise<void>;
}

export interface PluginManifest<P = unknown, R extends TokenRecord = TokenRecord, C = unknown>
  extends PluginDefinition<P, R, C> {
  readonly $$type: typeof MANIFEST_TYPE;
  readonly manifestVersion: typeof MANIFEST_VERSION;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyPluginManifest = PluginManifest<any, any, any>;

export function definePlugin<P, const R extends TokenRecord = {}, C = Record<string, never>>(
  definition: PluginDefinition<P, R, C>,
): PluginManifest<P, R, C> {
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
