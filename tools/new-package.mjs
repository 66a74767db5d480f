#!/usr/bin/env node
// Scaffolds a workspace package: `node tools/new-package.mjs plugins/content-local` or `node tools/new-package.mjs cli`.
// A package under plugins/ gets the plugin shape (src/plugin.ts, src/config.ts, README.md) with @berth/core as a peer.
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { execFileSync } from 'node:child_process';

const rel = process.argv[2];
if (!rel) throw new Error('usage: new-package.mjs <path under packages/>');
const root = new URL('..', import.meta.url).pathname;
const dir = join(root, 'packages', rel);
if (existsSync(join(dir, 'package.json'))) throw new Error(`${dir} exists`);
const isPlugin = rel.startsWith('plugins/');
const base = rel.split('/').pop();
const name = isPlugin ? `@berth/plugin-${base}` : `@berth/${base}`;
const up = relative(dir, root) || '.';
mkdirSync(join(dir, 'src'), { recursive: true });

const pkg = {
  name,
  version: '0.1.0',
  description: '',
  type: 'module',
  license: 'Apache-2.0',
  exports: { '.': { types: './dist/index.d.ts', default: './dist/index.js' } },
  files: ['dist', 'README.md'],
  scripts: {
    build: `node ${up}/tools/gen-version.mjs && tsc -p tsconfig.build.json`,
    typecheck: 'tsc -p tsconfig.json',
    test: 'vitest run',
  },
  ...(isPlugin
    ? {
        berth: { plugin: true },
        peerDependencies: { '@berth/core': 'workspace:^' },
        devDependencies: { '@berth/core': 'workspace:*' },
      }
    : { dependencies: {} }),
  nx: { tags: [isPlugin ? 'type:plugin' : 'type:lib'] },
};
const write = (f, t) => writeFileSync(join(dir, f), t);
write('package.json', JSON.stringify(pkg, null, 2) + '\n');
write('tsconfig.json', JSON.stringify({ extends: `${up}/tsconfig.base.json`, compilerOptions: { rootDir: 'src', outDir: 'dist', noEmit: true }, include: ['src'] }, null, 2) + '\n');
write('tsconfig.build.json', JSON.stringify({ extends: './tsconfig.json', compilerOptions: { noEmit: false }, exclude: ['src/**/*.test.ts', 'src/**/testing-fixtures/**'] }, null, 2) + '\n');
write('vitest.config.ts', `export { default } from '${up}/vitest.shared.js';\n`);
write('src/index.ts', isPlugin ? `export * from './plugin.js';\nexport { default } from './plugin.js';\n` : `export {};\n`);
write('README.md', `# ${name}\n`);
execFileSync('node', [join(root, 'tools/gen-version.mjs'), dir]);
console.log(`created ${name} in packages/${rel}`);
