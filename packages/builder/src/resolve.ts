// Finds the module of each plugin a manifest names and loads its manifests (importing a plugin's module runs no
// init), so the selection can be checked before anything is bundled.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import semver from 'semver';
import { isPluginManifest, packageEntry, PluginManifestError, pluginUri, type AnyPluginManifest } from '@berth/core';
import type { PluginSpec } from './manifest.js';

export interface ResolvedPlugin {
  readonly spec: PluginSpec;
  /** How the manifest names it (`@berth/plugin-content-local`, `./greeter`). */
  readonly label: string;
  /** The module file the distribution imports. */
  readonly file: string;
  /** The export the plugins come from (`default` unless the manifest says). */
  readonly exportName: string;
  /** The package the module belongs to, when it has one. */
  readonly packageName?: string;
  readonly packageVersion?: string;
  readonly manifests: readonly AnyPluginManifest[];
}

/**
 * Where package names are looked for: beside the manifest first (a package installed there from the registry),
 * then the packages the builder itself ships with (@berth/core, @berth/daemon and, through @berth/daemon, every
 * built-in plugin).
 */
export function packageSearchDirs(manifestDir: string): string[] {
  return [manifestDir, dirname(fileURLToPath(import.meta.url)), dirname(createRequire(import.meta.url).resolve('@berth/daemon'))];
}

export async function resolvePlugins(specs: readonly PluginSpec[], manifestDir: string, source: string): Promise<ResolvedPlugin[]> {
  const out: ResolvedPlugin[] = [];
  const problems: string[] = [];
  for (const [i, spec] of specs.entries()) {
    const at = `${source}: plugins[${i}]`;
    try {
      out.push(await resolveOne(spec, manifestDir));
    } catch (err) {
      problems.push(`${at}: ${(err as Error).message}`);
    }
  }
  if (problems.length > 0) throw new PluginManifestError(`cannot load the plugins:\n  ${problems.join('\n  ')}`);
  return out;
}

async function resolveOne(spec: PluginSpec, manifestDir: string): Promise<ResolvedPlugin> {
  const exportName = spec.export ?? 'default';
  let file: string;
  let pkg: { name?: string; version?: string } | undefined;
  let label: string;
  if ('path' in spec) {
    label = spec.path;
    const path = isAbsolute(spec.path) ? spec.path : resolve(manifestDir, spec.path);
    if (!existsSync(path)) throw new Error(`${spec.path}: ${path} does not exist`);
    if (statSync(path).isDirectory()) {
      const pkgFile = join(path, 'package.json');
      if (!existsSync(pkgFile)) throw new Error(`${spec.path}: ${path} has no package.json`);
      pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as PackageJson;
      file = entryOf(pkg as PackageJson, path, spec.path);
    } else file = path;
  } else {
    label = spec.package;
    const found = findPackage(spec.package, packageSearchDirs(manifestDir));
    file = found.entry;
    pkg = found.pkg;
    if (spec.version && !semver.satisfies(pkg.version ?? '0.0.0', spec.version, { includePrerelease: true })) {
      throw new Error(`${spec.package}: version ${pkg.version ?? '(none)'} is installed (${found.dir}), the manifest asks for ${spec.version}`);
    }
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${label}: cannot import ${file}: ${(err as Error).message}`);
  }
  if (!(exportName in mod)) throw new Error(`${label}: has no export "${exportName}"`);
  const value = mod[exportName];
  const manifests = (Array.isArray(value) ? value : [value]) as unknown[];
  const bad = manifests.findIndex((m) => !isPluginManifest(m));
  if (manifests.length === 0 || bad >= 0) {
    throw new Error(`${label}: export "${exportName}" is not a plugin manifest (made by definePlugin) or a list of them`);
  }
  return {
    spec,
    label,
    file,
    exportName,
    ...(pkg?.name ? { packageName: pkg.name } : {}),
    ...(pkg?.version ? { packageVersion: pkg.version } : {}),
    manifests: manifests as AnyPluginManifest[],
  };
}

interface PackageJson {
  name?: string;
  version?: string;
  main?: string;
  exports?: string | Record<string, unknown>;
}

/** A package's entry (its exports' `import`/`default`) and package.json, from the first dir that resolves it. */
function findPackage(name: string, dirs: readonly string[]): { entry: string; pkg: PackageJson; dir: string } {
  for (const dir of dirs) {
    let entry: string;
    try {
      entry = createRequire(join(dir, 'noop.js')).resolve(name);
    } catch {
      continue;
    }
    for (let d = dirname(entry); d !== dirname(d); d = dirname(d)) {
      const pkgFile = join(d, 'package.json');
      if (!existsSync(pkgFile)) continue;
      const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as PackageJson;
      if (pkg.name === name) return { entry, pkg, dir: d };
    }
    return { entry, pkg: {}, dir };
  }
  throw new Error(`${name}: not found (not a built-in package, and not installed beside the manifest: npm install ${name})`);
}

function entryOf(pkg: PackageJson, dir: string, label: string): string {
  const { rel, file } = packageEntry(pkg, dir);
  if (!existsSync(file)) throw new Error(`${label}: entry ${rel} does not exist (is it built?)`);
  return file;
}

/** Every manifest of the selection, in order, with where it came from. */
export function selection(plugins: readonly ResolvedPlugin[]): Array<{ manifest: AnyPluginManifest; from: ResolvedPlugin }> {
  return plugins.flatMap((from) => from.manifests.map((manifest) => ({ manifest, from })));
}

export const uriOf = pluginUri;
