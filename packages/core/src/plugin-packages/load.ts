import { join } from 'node:path';
import { compileSchema } from '../config/ajv.js';
import { nullLogger, type Logger } from '../log/logger.js';
import { loadPluginPackages, type LoadedPlugins } from '../registry/loader.js';
import { definePlugin, pluginUri, type AnyPluginManifest } from '../registry/manifest.js';
import type { PluginFacts } from './facts.js';
import { listInstalledRecords, verifyInstalledPackage, type PluginTrust } from './installed.js';

export interface InstalledPluginsOptions {
  /** URIs already in the composition: an installed plugin may not take one (it is left out, with a warning). */
  readonly taken?: ReadonlySet<string>;
  readonly log?: Logger;
}

/**
 * Loads the packages `berth plugin install` put under `<root>/plugins`: each is verified (verifyInstalledPackage)
 * and then imported, and its manifests go through the host's checks like any other plugin's. A package that fails
 * a check, or does not export what its published facts say, is not run: each plugin its facts name is replaced by a
 * stand-in that fails at init with the reason, so `ctr plugins ls` shows it as `error` (with the published config
 * schema, so its config section is still validated) and the daemon serves the rest.
 */
export async function loadInstalledPlugins(root: string, trust: PluginTrust, options: InstalledPluginsOptions = {}): Promise<LoadedPlugins> {
  const log = options.log ?? nullLogger;
  const taken = new Set(options.taken ?? []);
  const manifests: AnyPluginManifest[] = [];
  const sources: Record<string, string> = {};
  const add = (manifest: AnyPluginManifest, source: string) => {
    const uri = pluginUri(manifest);
    if (taken.has(uri)) {
      log.error('installed plugin left out: its URI is already in the composition', { plugin: uri, source });
      return;
    }
    taken.add(uri);
    manifests.push(manifest);
    sources[uri] = source;
  };
  for (const { name, record, problem } of await listInstalledRecords(root)) {
    if (!record) {
      log.error('installed plugin package left out: its record is unreadable', { package: name, error: problem });
      continue;
    }
    const source = `${record.reference}@${record.manifestDigest}`;
    let facts: readonly PluginFacts[] = [];
    try {
      const verified = await verifyInstalledPackage(root, record, trust);
      facts = verified.facts.plugins;
      const loaded = await loadPluginPackages([join(verified.dir, verified.facts.entry)], verified.dir);
      const exported = loaded.manifests.map(pluginUri).sort();
      const published = facts.map((f) => f.uri).sort();
      if (exported.join(',') !== published.join(',')) {
        throw new Error(`installed plugin ${name}@${record.version} exports ${exported.join(', ')} but was published as ${published.join(', ')}`);
      }
      for (const manifest of loaded.manifests) add(manifest, source);
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      log.error('installed plugin package refused', { package: name, version: record.version, error: error.message });
      if (facts.length === 0) facts = publishedFacts(record.config);
      for (const f of facts) add(standIn(f, error), source);
    }
  }
  return { manifests, sources };
}

/** The facts of a record's config blob, read leniently (for stand-ins when the checks failed). */
function publishedFacts(configBase64: string): PluginFacts[] {
  try {
    const facts = JSON.parse(Buffer.from(configBase64, 'base64').toString('utf8')) as { plugins?: unknown };
    return Array.isArray(facts.plugins) ? (facts.plugins as PluginFacts[]).filter((p) => typeof p?.type === 'string' && typeof p.id === 'string') : [];
  } catch {
    return [];
  }
}

function standIn(facts: PluginFacts, error: Error): AnyPluginManifest {
  // The published schema comes from a record that failed its checks: used only if ajv takes it (else none).
  let config: { schema: Record<string, unknown>; defaults: unknown } | undefined;
  if (facts.config && typeof facts.config.schema === 'object' && facts.config.schema !== null) {
    try {
      compileSchema(facts.config.schema);
      config = { schema: facts.config.schema, defaults: facts.config.defaults ?? {} };
    } catch {
      config = undefined;
    }
  }
  return definePlugin({
    type: facts.type,
    id: facts.id,
    version: typeof facts.version === 'string' ? facts.version : '0.0.0',
    pluginApi: '*',
    ...(config ? { config } : {}),
    init: () => {
      throw error;
    },
  });
}
