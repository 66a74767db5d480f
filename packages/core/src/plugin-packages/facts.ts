import semver from 'semver';
import { InvalidArgumentError } from '../errdefs/index.js';
import { validateDigest } from '../digest/index.js';
import { pluginUri, type AnyPluginManifest, type ConfigSchema, type Platform } from '../registry/manifest.js';
import { describeProvides, describeRequirement, type ProvidesSpec, type TokenRecord } from '../registry/token.js';

/** What one manifest of a package declares, as published in the config blob (no code runs to read it). */
export interface PluginFacts {
  readonly type: string;
  readonly id: string;
  readonly uri: string;
  readonly version: string;
  readonly pluginApi: string;
  /** Ids of the tokens it provides and of the points it contributes to. */
  readonly provides: readonly string[];
  readonly contributes: readonly string[];
  /** Ids of the tokens and points it requires. */
  readonly requires: readonly string[];
  readonly config: { readonly schema: ConfigSchema; readonly defaults: unknown } | null;
  readonly platforms: readonly Platform[];
}

/**
 * The config blob of a plugin artifact (`application/vnd.berth.plugin.config.v1+json`): the package's identity, the
 * module berthd imports, each manifest's facts, the platforms it runs on (empty: any), the capabilities it says it
 * needs (shown, not enforced) and the digest of the package tree (checked at install and at every start).
 */
export interface PluginPackageFacts {
  readonly schemaVersion: 1;
  readonly name: string;
  readonly version: string;
  readonly entry: string;
  readonly plugins: readonly PluginFacts[];
  readonly platforms: readonly Platform[];
  readonly capabilities: readonly string[];
  readonly tree: { readonly digest: string; readonly files: number; readonly size: number };
}

/** npm's package name rules (lower case, optional scope); they also keep the name a safe path under `<root>/plugins`. */
const PACKAGE_NAME = /^(?:@[a-z0-9-~][a-z0-9-._~]*\/)?[a-z0-9-~][a-z0-9-._~]*$/;

export function packageNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string' || name.length > 214 || !PACKAGE_NAME.test(name)) return `${JSON.stringify(name)} is not an npm package name`;
  return undefined;
}

export function packageVersionProblem(version: unknown): string | undefined {
  if (typeof version !== 'string' || semver.valid(version) !== version) return `${JSON.stringify(version)} is not a semver version`;
  return undefined;
}

/** The facts of one manifest, read from the loaded module (pack). */
export function factsOfManifest(manifest: AnyPluginManifest): PluginFacts {
  const provides = describeProvides(manifest.provides as ProvidesSpec | undefined);
  const requires = Object.values((manifest.requires ?? {}) as TokenRecord).map((r) => describeRequirement(r).target.id);
  return {
    type: manifest.type,
    id: manifest.id,
    uri: pluginUri(manifest),
    version: manifest.version,
    pluginApi: manifest.pluginApi,
    provides: provides.filter((p) => p.target.kind === 'token').map((p) => p.target.id),
    contributes: provides.filter((p) => p.target.kind === 'point').map((p) => p.target.id),
    requires: [...new Set(requires)],
    config: manifest.config ? JSON.parse(JSON.stringify({ schema: manifest.config.schema, defaults: manifest.config.defaults })) : null,
    platforms: (manifest.platforms ?? []).map((p) => ({ ...p })),
  };
}

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');
const isPlatforms = (v: unknown): v is Platform[] =>
  Array.isArray(v) && v.every((p) => p && typeof p === 'object' && typeof (p as Platform).os === 'string' && typeof (p as Platform).architecture === 'string');

/** Parses and checks a config blob; what is wrong is named (a registry is not trusted to serve well-formed JSON). */
export function parsePackageFacts(text: string): PluginPackageFacts {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InvalidArgumentError('plugin config blob is not JSON');
  }
  const f = value as Record<string, unknown> | null;
  const bad = (what: string) => new InvalidArgumentError(`plugin config blob: ${what}`);
  if (!f || typeof f !== 'object' || f.schemaVersion !== 1) throw bad('schemaVersion must be 1');
  const nameProblem = packageNameProblem(f.name) ?? packageVersionProblem(f.version);
  if (nameProblem) throw bad(nameProblem);
  if (typeof f.entry !== 'string') throw bad('entry must be a path');
  if (!Array.isArray(f.plugins) || f.plugins.length === 0) throw bad('plugins must list at least one plugin');
  for (const p of f.plugins as Record<string, unknown>[]) {
    if (!p || typeof p !== 'object' || typeof p.type !== 'string' || typeof p.id !== 'string' || typeof p.version !== 'string' || typeof p.pluginApi !== 'string') {
      throw bad('each plugin needs type, id, version and pluginApi');
    }
    if (p.uri !== `${p.type}.${p.id}`) throw bad(`plugin uri ${JSON.stringify(p.uri)} is not type.id`);
    if (!isStrings(p.provides) || !isStrings(p.contributes) || !isStrings(p.requires) || !isPlatforms(p.platforms)) throw bad(`plugin ${p.uri}: provides, contributes, requires and platforms must be lists`);
    const config = p.config as Record<string, unknown> | null;
    if (config !== null && (typeof config !== 'object' || typeof config.schema !== 'object' || config.schema === null)) throw bad(`plugin ${p.uri}: config must be null or { schema, defaults }`);
  }
  if (!isPlatforms(f.platforms) || !isStrings(f.capabilities)) throw bad('platforms and capabilities must be lists');
  const tree = f.tree as Record<string, unknown> | null;
  if (!tree || typeof tree !== 'object' || typeof tree.digest !== 'string' || typeof tree.files !== 'number' || typeof tree.size !== 'number') throw bad('tree must be { digest, files, size }');
  validateDigest(tree.digest, 'plugin tree digest');
  return f as unknown as PluginPackageFacts;
}

/** Whether a package runs on `platform` (no platforms listed: everywhere). */
export function supportsPlatform(facts: Pick<PluginPackageFacts, 'platforms'>, platform: Platform): boolean {
  return facts.platforms.length === 0 || facts.platforms.some((p) => p.os === platform.os && p.architecture === platform.architecture && (!p.variant || p.variant === platform.variant));
}

/** The plugins whose `pluginApi` range `apiVersion` does not satisfy, each as a message naming both. */
export function pluginApiProblems(facts: Pick<PluginPackageFacts, 'plugins' | 'name' | 'version'>, apiVersion: string): string[] {
  const out: string[] = [];
  for (const p of facts.plugins) {
    const range = semver.validRange(p.pluginApi);
    if (!range || !semver.satisfies(apiVersion, range, { includePrerelease: semver.prerelease(apiVersion) !== null })) {
      out.push(`plugin ${p.uri} ${p.version} (package ${facts.name}@${facts.version}) requires plugin API ${p.pluginApi}, but berthd runs plugin API ${apiVersion}`);
    }
  }
  return out;
}
