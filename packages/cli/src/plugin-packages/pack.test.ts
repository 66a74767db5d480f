import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { factsOfTarball } from './facts.js';
import { packPlugin, withTree } from './pack.js';
import { readTarGz } from './tar.js';

const core = fileURLToPath(new URL('../../../core', import.meta.url));

const write = (dir: string, files: Record<string, string>) => {
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
};

let work: string;
beforeEach(() => {
  // Outside the workspace: nothing resolves from the repository's node_modules by accident.
  work = mkdtempSync(join(tmpdir(), 'berth-pack-'));
  mkdirSync(join(work, 'node_modules/@berth'), { recursive: true });
  symlinkSync(core, join(work, 'node_modules/@berth/core'));
  write(work, {
    'node_modules/shout/package.json': JSON.stringify({ name: 'shout', version: '1.0.0', main: 'index.js' }),
    'node_modules/shout/index.js': "module.exports = (s) => String(s).toUpperCase() + '!';\n",
    'package.json': JSON.stringify({ name: '@acme/berth-plugin-loud', version: '1.2.0', type: 'module', exports: './dist/index.js', files: ['dist', 'proto'], berth: { capabilities: ['net'] } }),
    'dist/index.js': `import { fileURLToPath } from 'node:url';
import { definePlugin, rpcServicesPoint } from '@berth/core';
import shout from 'shout';
export const PROTO = fileURLToPath(new URL('../proto/loud.proto', import.meta.url));
export default definePlugin({
  type: 'io.acme.loud.v1', id: 'loud', version: '1.2.0', pluginApi: '^2.0.0', provides: rpcServicesPoint,
  config: { schema: { $id: 'io.acme.loud.v1.loud', type: 'object', additionalProperties: false, properties: { volume: { type: 'integer' } } }, defaults: { volume: 11 } },
  init: () => ({ services: [], shout: shout('hi') }),
});
`,
    'dist/helper.d.ts': 'export {};\n',
    'proto/loud.proto': 'syntax = "proto3";\npackage io.acme.loud.v1;\n',
    'src/ignored.ts': 'not shipped',
  });
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

describe('berth plugin pack', () => {
  it('bundles the entry with its npm dependencies, keeps the assets, and gives the same bytes twice', async () => {
    const first = await packPlugin(work);
    const second = await packPlugin(work);
    expect(second.digest).toBe(first.digest);
    expect(second.tarball.equals(first.tarball)).toBe(true);
    const files = readTarGz(first.tarball);
    expect(files.map((f) => f.path).sort()).toEqual(['dist/index.js', 'package.json', 'proto/loud.proto']);
    const code = files.find((f) => f.path === 'dist/index.js')!.data.toString();
    expect(code).not.toMatch(/from ['"](shout|@berth\/core)['"]/);
    expect(first.facts).toMatchObject({
      name: '@acme/berth-plugin-loud', version: '1.2.0', entry: 'dist/index.js', capabilities: ['net'], platforms: [],
      plugins: [{ uri: 'io.acme.loud.v1.loud', pluginApi: '^2.0.0', contributes: ['rpc.services'], config: { defaults: { volume: 11 } } }],
    });
    // push reads the same facts back from the tarball alone.
    expect(factsOfTarball(first.tarball)).toEqual(first.facts);
    // The bundle runs on its own (no node_modules beside it) and finds its proto next to it.
    const mod = await withTree(files, async (dir) => {
      const m = (await import(join(dir, 'dist/index.js'))) as { PROTO: string; default: { init: () => { shout: string } } };
      return { proto: m.PROTO.slice(dir.length), shout: m.default.init().shout };
    });
    expect(mod).toEqual({ proto: '/proto/loud.proto', shout: 'HI!' });
  });

  it('changes the digest when a shipped file changes', async () => {
    const before = await packPlugin(work);
    writeFileSync(join(work, 'proto/loud.proto'), 'syntax = "proto3";\n');
    expect((await packPlugin(work)).digest).not.toBe(before.digest);
  });

  it('refuses native addons, non-ESM packages and packages without a manifest, saying why', async () => {
    write(work, { 'node_modules/shout/build/Release/shout.node': 'ELF' });
    await expect(packPlugin(work)).rejects.toThrow(/dependency shout ships a native addon \(build\/Release\/shout\.node\)/);
    rmSync(join(work, 'node_modules/shout/build'), { recursive: true });
    write(work, { 'package.json': JSON.stringify({ name: 'x', version: '1.0.0', exports: './dist/index.js' }) });
    await expect(packPlugin(work)).rejects.toThrow(/a plugin package is ESM/);
    write(work, { 'package.json': JSON.stringify({ name: 'x', version: '1.0.0', type: 'module', exports: './dist/none.js' }), 'dist/none.js': 'export const x = 1;\n' });
    await expect(packPlugin(work)).rejects.toThrow(/exports no plugin manifest/);
    write(work, { 'package.json': JSON.stringify({ name: 'Bad Name', version: '1.0.0', type: 'module' }) });
    await expect(packPlugin(work)).rejects.toThrow(/is not an npm package name/);
  });
});
