// The distribution manifest (TOML): what `berth-build` reads. Parsed and checked whole before anything is resolved,
// so every mistake in it is reported at once, each line naming the file and the key.
import { readFile } from 'node:fs/promises';
import { parse as parseToml } from 'smol-toml';
import semver from 'semver';
import { ConfigInvalidError, validateServerConfig, type ServerConfig } from '@berth/core';

/** One plugin of the selection: a package (built-in, or installed beside the manifest) or a local path. */
export type PluginSpec =
  | { readonly package: string; readonly version?: string; readonly export?: string }
  | { readonly path: string; readonly export?: string };

export interface DistributionManifest {
  readonly name: string;
  readonly version: string;
  readonly description?: string;
  readonly plugins: readonly PluginSpec[];
  /** The distribution's default config (berthd's config format), written as its config.toml. */
  readonly config: ServerConfig;
  /** What the user wrote under [config], written out as given (defaults are not spelled out). */
  readonly rawConfig: Record<string, unknown>;
}

/** Program names: what `bin/<name>` and the log lines use. */
const NAME = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;
const PACKAGE_NAME = /^(?:@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$/;
const EXPORT_NAME = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

type Raw = Record<string, unknown>;
const isTable = (v: unknown): v is Raw => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date);

export async function readDistributionManifest(file: string): Promise<DistributionManifest> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigInvalidError([`cannot read the manifest: ${(err as Error).message}`], file);
  }
  return parseDistributionManifest(text, file);
}

export function parseDistributionManifest(text: string, source: string): DistributionManifest {
  let raw: Raw;
  try {
    raw = parseToml(text) as Raw;
  } catch (err) {
    throw new ConfigInvalidError([(err as Error).message.split('\n')[0] ?? String(err)], source);
  }
  const problems: string[] = [];
  for (const key of Object.keys(raw)) {
    if (!['distribution', 'plugins', 'config'].includes(key)) problems.push(`${key}: unknown key (expected [distribution], [[plugins]] and [config])`);
  }

  const dist = raw.distribution;
  let name = '';
  let version = '';
  let description: string | undefined;
  if (!isTable(dist)) problems.push('[distribution]: missing (name and version of the distribution)');
  else {
    for (const key of Object.keys(dist)) if (!['name', 'version', 'description'].includes(key)) problems.push(`distribution.${key}: unknown key`);
    if (typeof dist.name !== 'string' || !NAME.test(dist.name)) problems.push('distribution.name: must be lower-case words joined by - (it names bin/<name>)');
    else name = dist.name;
    if (typeof dist.version !== 'string' || semver.valid(dist.version) === null) problems.push('distribution.version: must be a semver version (1.2.3)');
    else version = dist.version;
    if (dist.description !== undefined && typeof dist.description !== 'string') problems.push('distribution.description: must be a string');
    else description = dist.description as string | undefined;
  }

  const plugins: PluginSpec[] = [];
  if (!Array.isArray(raw.plugins) || raw.plugins.length === 0) problems.push('[[plugins]]: the distribution names no plugins');
  else {
    raw.plugins.forEach((entry: unknown, i: number) => {
      const at = `plugins[${i}]`;
      if (!isTable(entry)) return problems.push(`${at}: must be a table`);
      for (const key of Object.keys(entry)) if (!['package', 'version', 'path', 'export'].includes(key)) problems.push(`${at}.${key}: unknown key`);
      if (entry.export !== undefined && (typeof entry.export !== 'string' || !EXPORT_NAME.test(entry.export))) problems.push(`${at}.export: must be an export name`);
      const exportName = entry.export as string | undefined;
      if ((entry.package === undefined) === (entry.path === undefined)) return problems.push(`${at}: give exactly one of package or path`);
      if (entry.path !== undefined) {
        if (typeof entry.path !== 'string' || entry.path === '') return problems.push(`${at}.path: must be a path`);
        if (entry.version !== undefined) return problems.push(`${at}.version: only for a package (a path is taken as it is)`);
        return plugins.push({ path: entry.path, ...(exportName ? { export: exportName } : {}) });
      }
      if (typeof entry.package !== 'string' || !PACKAGE_NAME.test(entry.package)) return problems.push(`${at}.package: must be a package name`);
      if (entry.version !== undefined && (typeof entry.version !== 'string' || semver.validRange(entry.version) === null)) {
        return problems.push(`${at}.version: must be a semver version or range`);
      }
      return plugins.push({ package: entry.package, ...(entry.version ? { version: entry.version as string } : {}), ...(exportName ? { export: exportName } : {}) });
    });
  }

  const rawConfig = raw.config === undefined ? {} : raw.config;
  let config: ServerConfig | undefined;
  if (!isTable(rawConfig)) problems.push('config: must be a table (the default config.toml)');
  else {
    try {
      config = validateServerConfig(rawConfig);
    } catch (err) {
      if (err instanceof ConfigInvalidError) problems.push(...err.problems.map((p) => `config: ${p}`));
      else throw err;
    }
  }
  if (problems.length > 0) throw new ConfigInvalidError(problems, source);
  return { name, version, ...(description ? { description } : {}), plugins, config: config!, rawConfig: rawConfig as Raw };
}
