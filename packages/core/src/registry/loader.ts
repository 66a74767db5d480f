import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PluginManifestError } from '../config/errors.js';
import { isPluginManifest, pluginUri, type AnyPluginManifest } from './manifest.js';

/**
 * Where a program that runs from a V8 code cache (tools/bundle.mjs's launchers) puts its own `import()`: code
 * compiled by vm.Script from cached data has no dynamic-import callback (V8 drops it with the cache), so a plugin
 * package is imported through the launcher, an ordinary module, when the launcher says so.
 */
export const MODULE_IMPORTER = Symbol.for('berth.importModule');

function importModule(href: string): Promise<Record<string, unknown>> {
  const importer = (globalThis as { [MODULE_IMPORTER]?: (href: string) => Promise<Record<string, unknown>> })[MODULE_IMPORTER];
  return importer ? importer(href) : (import(href) as Promise<Record<string, unknown>>);
}

export interface LoadedPlugins {
  readonly manifests: AnyPluginManifest[];
  /** Where each plugin came from, by URI. */
  readonly sources: Record<string, string>;
}

/**
 * Loads third-party plugin packages named in the config: a path (to a package directory or a module file,
 * relative to `baseDir`) or an installed package name resolved from `baseDir`. A module contributes its default
 * export when that is a manifest, else every exported manifest. The envelope is checked structurally here; the
 * API range and config are checked by the host like any other plugin's.
 */
export async function loadPluginPackages(specs: readonly string[], baseDir: string): Promise<LoadedPlugins> {
  const manifests: AnyPluginManifest[] = [];
  const sources: Record<string, string> = {};
  for (const spec of specs) {
    const file = resolveSpec(spec, baseDir);
    let mod: Record<string, unknown>;
    try {
      mod = await importModule(pathToFileURL(file).href);
    } catch (err) {
      throw new PluginManifestError(`plugin package ${spec}: cannot import ${file}: ${(err as Error).message}`);
    }
    const found = isPluginManifest(mod.default) ? [mod.default] : Object.values(mod).filter(isPluginManifest);
    if (found.length === 0) throw new PluginManifestError(`plugin package ${spec}: exports no plugin manifest (made by definePlugin)`);
    for (const manifest of new Set(found)) {
      manifests.push(manifest);
      sources[pluginUri(manifest)] = spec;
    }
  }
  return { manifests, sources };
}

function resolveSpec(spec: string, baseDir: string): string {
  const looksLikePath = spec.startsWith('.') || isAbsolute(spec);
  if (looksLikePath) {
    const path = resolve(baseDir, spec);
    if (!existsSync(path)) throw new PluginManifestError(`plugin package ${spec}: ${path} does not exist`);
    if (!statSync(path).isDirectory()) return path;
    const pkgFile = join(path, 'package.json');
    if (!existsSync(pkgFile)) throw new PluginManifestError(`plugin package ${spec}: ${path} has no package.json`);
    return entryOf(JSON.parse(readFileSync(pkgFile, 'utf8')) as PackageJson, path, spec);
  }
  try {
    return createRequire(join(baseDir, 'noop.js')).resolve(spec);
  } catch (err) {
    throw new PluginManifestError(`plugin package ${spec}: not installed (resolved from ${baseDir}): ${(err as Error).message}`);
  }
}

interface PackageJson {
  main?: string;
  exports?: string | Record<string, unknown>;
}

/**
 * The file a package's `import` resolves to, from its package.json in `dir`: the `.` export (its `import`, `node`
 * or `default` condition, nested ones followed), else `main`, else index.js. `rel` is as the package wrote it.
 */
export function packageEntry(pkg: { readonly main?: string; readonly exports?: unknown }, dir: string): { rel: string; file: string } {
  let target: unknown = pkg.exports;
  if (target && typeof target === 'object' && '.' in target) target = (target as Record<string, unknown>)['.'];
  while (target && typeof target === 'object') {
    const t = target as Record<string, unknown>;
    target = t.import ?? t.node ?? t.default;
  }
  const rel = typeof target === 'string' ? target : pkg.main ?? 'index.js';
  return { rel, file: resolve(dir, rel) };
}

function entryOf(pkg: PackageJson, dir: string, spec: string): string {
  const { rel, file } = packageEntry(pkg, dir);
  if (!existsSync(file)) throw new PluginManifestError(`plugin package ${spec}: entry ${rel} does not exist (is it built?)`);
  return file;
}
