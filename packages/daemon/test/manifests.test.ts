// tools/check-plugin-manifests as a test: every plugin package of the workspace is loaded against the workspace core
// and checked the way the host will check it, plus the conventions that keep plugins uniform.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import semver from 'semver';
import { compileSchema, isPluginManifest, PLUGIN_API_VERSION, pluginUri, type AnyPluginManifest } from '@berth/core';
import { describe, expect, it } from 'vitest';
import { daemonPlugins } from '../src/plugins.js';

const pluginsDir = fileURLToPath(new URL('../../plugins/', import.meta.url));
const packages = readdirSync(pluginsDir).filter((name) => existsSync(join(pluginsDir, name, 'package.json')));

describe.each(packages)('plugin package %s', (name) => {
  const dir = join(pluginsDir, name);
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
    peerDependencies?: Record<string, string>;
    dependencies?: Record<string, string>;
  };

  it('exports one manifest that passes the host checks', async () => {
    const mod = (await import(`@berth/plugin-${name}`)) as { default: AnyPluginManifest };
    const manifest = mod.default;
    expect(isPluginManifest(manifest)).toBe(true);
    expect(pkg.name).toBe(`@berth/plugin-${name}`);
    expect(manifest.version).toBe(pkg.version);
    expect(semver.satisfies(PLUGIN_API_VERSION, manifest.pluginApi)).toBe(true);
    expect(manifest.id).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*$/);
    expect(manifest.type).toMatch(/^io\.(containerd|berth)\.[a-z0-9]+\.v\d+$/);
    if (manifest.config) {
      const schema = manifest.config.schema as { $id?: string; additionalProperties?: unknown };
      expect(schema.$id).toBe(pluginUri(manifest));
      expect(schema.additionalProperties).toBe(false);
      const validate = compileSchema(manifest.config.schema);
      expect(validate(structuredClone(manifest.config.defaults)), JSON.stringify(validate.errors)).toBe(true);
    }
    expect(daemonPlugins).toContain(manifest);
  });

  it('takes core as a peer, never another plugin, and documents itself', () => {
    expect(pkg.peerDependencies?.['@berth/core']).toBe('workspace:^');
    expect(Object.keys(pkg.dependencies ?? {}).filter((d) => d.startsWith('@berth/plugin-'))).toEqual([]);
    const readme = readFileSync(join(dir, 'README.md'), 'utf8');
    expect(readme.split('\n').length).toBeGreaterThan(5);
    const sources = readdirSync(join(dir, 'src')).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
    for (const file of sources) {
      const text = readFileSync(join(dir, 'src', file), 'utf8');
      expect(text, `${name}/src/${file} imports a transport`).not.toMatch(/from '@grpc\/grpc-js'/);
      expect(text, `${name}/src/${file} imports tsyringe`).not.toMatch(/from 'tsyringe'/);
      expect(text, `${name}/src/${file} imports another plugin`).not.toMatch(/from '@berth\/plugin-/);
    }
    const plugin = readFileSync(join(dir, 'src', 'plugin.ts'), 'utf8');
    expect(plugin.split('\n').length, 'plugin.ts is wiring only').toBeLessThanOrEqual(60);
  });
});
