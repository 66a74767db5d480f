import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { containerExtensionsPoint, coreTokens, extensionSchemasToken, isPluginManifest, PluginKind, pluginUri } from '@berth/core';
import { createTestHost, expectFailure } from '@berth/core/testing';
import { describe, expect, it } from 'vitest';
import extensionsJsonDefault, { extensionsJsonPlugin, JsonExtensionPolicy, JsonSchemaRegistry, STATE_FILE } from './index.js';
import { PACKAGE_VERSION } from './version.js';

const URI = 'io.berth.extensions.v1.json';

describe('extensionsJsonPlugin', () => {
  it('is io.berth.extensions.v1.json, providing the schema registry and contributing the extension policy, requiring no store', () => {
    expect(isPluginManifest(extensionsJsonPlugin)).toBe(true);
    expect(extensionsJsonDefault).toBe(extensionsJsonPlugin);
    expect(pluginUri(extensionsJsonPlugin)).toBe(URI);
    expect(extensionsJsonPlugin.type).toBe(PluginKind.Extensions);
    expect(extensionsJsonPlugin.version).toBe(PACKAGE_VERSION);
    expect(extensionsJsonPlugin.provides).toEqual({ policy: containerExtensionsPoint, schemas: extensionSchemasToken });
    expect(extensionsJsonPlugin.requires).toEqual({ dirs: coreTokens.dirs, log: coreTokens.logger });
  });

  it('boots with its config: schema files load, the policy enforces require_registered, API schemas land in its root', async () => {
    const files = await mkdtemp(join(tmpdir(), 'berth-ext-files-'));
    const file = join(files, 'ownership.json');
    await writeFile(file, JSON.stringify({ name: 'acme.io/ownership', schema: { type: 'object', required: ['team'] }, indexed_paths: ['team'] }));
    const host = await createTestHost({ plugins: [extensionsJsonPlugin], required: [URI], pluginConfig: { [URI]: { schemas: [file], require_registered: true } } });
    try {
      const schemas = host.host.get(extensionSchemasToken);
      expect(schemas).toBeInstanceOf(JsonSchemaRegistry);
      expect(schemas.get('acme.io/ownership')).toMatchObject({ version: 1, source: 'config', indexedPaths: ['team'] });
      const [policy, ...others] = [...host.host.all(containerExtensionsPoint).values()];
      expect(others).toEqual([]);
      expect(policy).toBeInstanceOf(JsonExtensionPolicy);
      await expectFailure(
        Promise.resolve().then(() => policy!.validate('default', 'c1', 'other.io/x', { typeUrl: 'other.io/x', value: Buffer.from('{}') })),
        'invalid-argument',
        'require_registered',
      );
      await schemas.register({ name: 'other.io/x', schema: { type: 'object' } });
      policy!.validate('default', 'c1', 'other.io/x', { typeUrl: 'other.io/x', value: Buffer.from('{}') });
      const state = JSON.parse(await readFile(join(host.server.root, URI, STATE_FILE), 'utf8'));
      expect(Object.keys(state.api)).toEqual(['other.io/x']);
    } finally {
      await host.close();
      await rm(files, { recursive: true, force: true });
    }
  });

  it('refuses unknown or mistyped config keys before starting, naming the plugin and the path', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ requireRegistered: true }, `plugins."${URI}"/requireRegistered: unknown key "requireRegistered"`],
      [{ schemas: 'one.json' }, `plugins."${URI}"/schemas: must be array`],
      [{ require_registered: 'yes' }, `plugins."${URI}"/require_registered: must be boolean`],
    ];
    for (const [section, message] of cases) {
      await expect(createTestHost({ plugins: [extensionsJsonPlugin], required: [URI], pluginConfig: { [URI]: section } })).rejects.toThrow(message);
    }
  });

  it('fails to start on a schema file that does not load, naming the file', async () => {
    await expect(
      createTestHost({ plugins: [extensionsJsonPlugin], required: [URI], pluginConfig: { [URI]: { schemas: ['/nonexistent/berth-schema.json'] } } }),
    ).rejects.toThrow('schema file /nonexistent/berth-schema.json: cannot read it');
  });
});
