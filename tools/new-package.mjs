#!/usr/bin/env node
// Scaffolds a package.
//
//   node tools/new-package.mjs plugins/<kind>-<impl> [--type io.containerd.<kind>.v1] [--id <id>]
//       a plugin of this workspace (packages/plugins/<kind>-<impl>): plugin.ts (wiring only), config.ts, the class,
//       version.ts, a README stating its contract, and a plugin test booting it in createTestHost;
//   node tools/new-package.mjs <lib>
//       a library package of this workspace (packages/<lib>);
//   node tools/new-package.mjs --outside <dir> --name @acme/berth-plugin-hello --type io.acme.hello.v1 --id hello
//       [--core <version or path to a packed @berth/core tarball>]
//       a third party's plugin package anywhere outside this repository: built JS (ESM), @berth/core as a peer
//       dependency, its own gRPC service described by its own .proto (io.acme.hello.v1.Hello), a build that writes
//       the version file, ready for `plugin_packages` in a berthd config (docs/plugins.md).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';

const repo = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const flag = (name) => {
  const at = args.indexOf(`--${name}`);
  if (at < 0) return undefined;
  const value = args[at + 1];
  if (value === undefined || value.startsWith('--')) throw new Error(`--${name} needs a value`);
  args.splice(at, 2);
  return value;
};
const outside = flag('outside');
const typeFlag = flag('type');
const idFlag = flag('id');
const nameFlag = flag('name');
const coreSpec = flag('core');
const rel = args[0];

const coreVersion = JSON.parse(readFileSync(join(repo, 'packages/core/package.json'), 'utf8')).version;
const PLUGIN_API_VERSION = /PLUGIN_API_VERSION = '([^']+)'/.exec(readFileSync(join(repo, 'packages/core/src/registry/manifest.ts'), 'utf8'))[1];
const apiRange = `^${PLUGIN_API_VERSION.split('.')[0]}.0.0`;

const pascal = (s) => s.replace(/[-_](.)/g, (_, c) => c.toUpperCase()).replace(/^./, (c) => c.toUpperCase());
const camel = (s) => pascal(s).replace(/^./, (c) => c.toLowerCase());
const json = (v) => `${JSON.stringify(v, null, 2)}\n`;

function writeAll(dir, files) {
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(join(dir, file, '..'), { recursive: true });
    writeFileSync(join(dir, file), text);
  }
}

/** The config schema file every plugin has: a typed, strict schema with the URI as its $id. */
function configFile(uri, Name) {
  return `import type { JSONSchemaType } from '@berth/core';

export interface ${Name}Config {
  /** What the greeting starts with. */
  readonly greeting: string;
}

export const ${camel(Name)}ConfigDefaults: ${Name}Config = { greeting: 'hello' };

export const ${camel(Name)}ConfigSchema: JSONSchemaType<${Name}Config> = {
  $id: '${uri}',
  type: 'object',
  additionalProperties: false,
  properties: { greeting: { type: 'string', minLength: 1 } },
  required: ['greeting'],
};
`;
}

if (outside) {
  // ---- A third party's plugin package, outside this repository.
  const dir = resolve(outside);
  if (existsSync(join(dir, 'package.json'))) throw new Error(`${dir} exists`);
  const id = idFlag ?? 'hello';
  const type = typeFlag ?? `io.example.${id}.v1`;
  const [, vendor, kind, version] = /^io\.([a-z0-9-]+)\.([a-z0-9.-]+)\.(v\d+)$/.exec(type) ?? [];
  if (!vendor) throw new Error(`--type ${type}: a kind is io.<vendor>.<kind>.v<N>`);
  const name = nameFlag ?? `@${vendor}/berth-plugin-${id}`;
  const Name = pascal(id);
  const service = `${type}.${Name}`;
  const uri = `${type}.${id}`;
  const core = coreSpec ? (existsSync(coreSpec) ? `file:${resolve(coreSpec)}` : coreSpec) : `^${coreVersion}`;
  writeAll(dir, {
    'package.json': json({
      name,
      version: '0.1.0',
      description: `berth plugin ${uri}: the ${service} gRPC service`,
      type: 'module',
      exports: { '.': { types: './dist/index.d.ts', default: './dist/index.js' } },
      files: ['dist', 'proto', 'README.md'],
      scripts: { build: 'node scripts/gen-version.mjs && tsc -p tsconfig.json' },
      peerDependencies: { '@berth/core': core.startsWith('file:') ? `^${coreVersion}` : core },
      devDependencies: { '@berth/core': core, '@types/node': '20.19.43', typescript: '6.0.3' },
    }),
    'tsconfig.json': json({
      compilerOptions: {
        target: 'ES2023',
        lib: ['ES2023'],
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        declaration: true,
        skipLibCheck: true,
        rootDir: 'src',
        outDir: 'dist',
        types: ['node'],
      },
      include: ['src'],
    }),
    'scripts/gen-version.mjs': `// Writes src/version.ts from package.json, so the manifest reports the package's version without reading files.
import { readFileSync, writeFileSync } from 'node:fs';
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
writeFileSync(new URL('../src/version.ts', import.meta.url), \`export const PACKAGE_VERSION = '\${pkg.version}';\\n\`);
`,
    'src/version.ts': `export const PACKAGE_VERSION = '0.1.0';\n`,
    [`proto/${vendor}/${kind.replace(/\./g, '/')}/${version}/${id}.proto`]: `syntax = "proto3";

package ${type};

service ${Name} {
  rpc Say(SayRequest) returns (SayResponse);
}

message SayRequest {
  string name = 1;
}

message SayResponse {
  string message = 1;
}
`,
    'src/config.ts': configFile(uri, Name),
    [`src/${id}-service.ts`]: `import { fileURLToPath } from 'node:url';
import { InvalidArgumentError, type RpcServices, type RpcServiceImplementation } from '@berth/core';
import type { ${Name}Config } from './config.js';

/** The .proto that describes the service, shipped in the package (\`files\` in package.json). */
export const PROTO_FILE = fileURLToPath(new URL('../proto/${vendor}/${kind.replace(/\./g, '/')}/${version}/${id}.proto', import.meta.url));

/** ${service}: the implementation, free of any transport; berthd binds it to gRPC. */
export class ${Name}Service implements RpcServices {
  readonly services: readonly RpcServiceImplementation[];

  constructor(private readonly config: ${Name}Config) {
    this.services = [
      {
        service: '${service}',
        proto: { files: [PROTO_FILE] },
        handlers: {
          Say: async (req: { name: string }) => {
            if (!req.name) throw new InvalidArgumentError('name is required');
            return { message: \`\${this.config.greeting}, \${req.name}\` };
          },
        },
      },
    ];
  }
}
`,
    'src/plugin.ts': `import { definePlugin, rpcServicesPoint } from '@berth/core';
import { ${camel(Name)}ConfigDefaults, ${camel(Name)}ConfigSchema, type ${Name}Config } from './config.js';
import { ${Name}Service } from './${id}-service.js';
import { PACKAGE_VERSION } from './version.js';

export const ${camel(id)}Plugin = definePlugin({
  type: '${type}',
  id: '${id}',
  version: PACKAGE_VERSION,
  pluginApi: '${apiRange}',
  description: 'the ${service} gRPC service',
  provides: rpcServicesPoint,
  config: { schema: ${camel(Name)}ConfigSchema, defaults: ${camel(Name)}ConfigDefaults },
  init: (_deps, config: ${Name}Config) => new ${Name}Service(config),
});
export default ${camel(id)}Plugin;
`,
    'src/index.ts': `export { default, ${camel(id)}Plugin } from './plugin.js';\nexport { ${Name}Service, PROTO_FILE } from './${id}-service.js';\n`,
    'README.md': `# ${name}

A berth plugin, \`${uri}\`: serves the gRPC service \`${service}\` described by its own
\`proto/\` file. Build it with \`npm run build\` (it needs \`@berth/core\` installed), then name it in a berthd config:

\`\`\`toml
plugin_packages = ["${dir}"]

[plugins."${uri}"]
greeting = "hello"
\`\`\`

\`ctr plugins ls\` then lists \`${type}  ${id}  ok\`.
`,
  });
  console.log(`created ${name} in ${dir}`);
} else {
  // ---- A package of this workspace.
  if (!rel) throw new Error('usage: new-package.mjs plugins/<kind>-<impl> | <lib> | --outside <dir> --type io.<vendor>.<kind>.v1 --id <id>');
  const dir = join(repo, 'packages', rel);
  if (existsSync(join(dir, 'package.json'))) throw new Error(`${dir} exists`);
  const isPlugin = rel.startsWith('plugins/');
  const base = basename(rel);
  const up = relative(dir, repo) || '.';
  const shared = {
    'tsconfig.json': json({ extends: `${up}/tsconfig.base.json`, compilerOptions: { rootDir: 'src', outDir: 'dist', noEmit: true }, include: ['src'] }),
    'tsconfig.build.json': json({ extends: './tsconfig.json', compilerOptions: { noEmit: false }, exclude: ['src/**/*.test.ts', 'src/**/testing-fixtures/**'] }),
    'vitest.config.ts': `export { default } from '${up}/vitest.shared.ts';\n`,
  };
  const scripts = { build: `node ${up}/tools/gen-version.mjs && tsc -p tsconfig.build.json`, typecheck: 'tsc -p tsconfig.json', test: 'vitest run' };
  if (!isPlugin) {
    const name = `@berth/${base}`;
    writeAll(dir, {
      ...shared,
      'package.json': json({ name, version: '0.1.0', description: '', type: 'module', license: 'Apache-2.0', exports: { '.': { types: './dist/index.d.ts', default: './dist/index.js' } }, files: ['dist', 'README.md'], scripts, peerDependencies: { '@berth/core': 'workspace:^' }, devDependencies: { '@berth/core': 'workspace:*' }, nx: { tags: ['type:lib'] } }),
      'src/index.ts': `export { PACKAGE_NAME, PACKAGE_VERSION } from './version.js';\n`,
      'README.md': `# ${name}\n\nWhat this package is for, who uses it, and what it depends on.\n`,
    });
    execFileSync('node', [join(repo, 'tools/gen-version.mjs'), dir]);
    console.log(`created ${name} in packages/${rel}`);
  } else {
    const [kindWord, ...rest] = base.split('-');
    const impl = rest.join('-') || kindWord;
    const id = idFlag ?? impl;
    const type = typeFlag ?? `io.berth.${kindWord}.v1`;
    const uri = `${type}.${id}`;
    const Name = pascal(base);
    const name = `@berth/plugin-${base}`;
    writeAll(dir, {
      ...shared,
      'package.json': json({ name, version: '0.1.0', description: `${uri}`, type: 'module', license: 'Apache-2.0', exports: { '.': { types: './dist/index.d.ts', default: './dist/index.js' } }, files: ['dist', 'README.md'], scripts, berth: { plugin: true }, peerDependencies: { '@berth/core': 'workspace:^' }, devDependencies: { '@berth/core': 'workspace:*' }, nx: { tags: ['type:plugin'] } }),
      'src/config.ts': configFile(uri, Name),
      [`src/${base}.ts`]: `import type { Logger } from '@berth/core';
import type { ${Name}Config } from './config.js';

/** The implementation: a plain class, never the registry (STYLE §1). */
export class ${Name} {
  constructor(private readonly config: ${Name}Config, private readonly log: Logger) {}

  greet(name: string): string {
    this.log.debug('greeting', { name });
    return \`\${this.config.greeting}, \${name}\`;
  }
}
`,
      'src/plugin.ts': `import { coreTokens, createToken, definePlugin } from '@berth/core';
import { ${camel(Name)}ConfigDefaults, ${camel(Name)}ConfigSchema, type ${Name}Config } from './config.js';
import { ${Name} } from './${base}.js';
import { PACKAGE_VERSION } from './version.js';

/** What this plugin provides (a kind shared with other plugins gets its token in @berth/core instead). */
export const ${camel(Name)}Token = createToken<${Name}>('${type.replace(/^io\./, '').replace(/\.v\d+$/, '')}');

export const ${camel(Name)}Plugin = definePlugin({
  type: '${type}',
  id: '${id}',
  version: PACKAGE_VERSION,
  pluginApi: '${apiRange}',
  provides: ${camel(Name)}Token,
  requires: { log: coreTokens.logger },
  config: { schema: ${camel(Name)}ConfigSchema, defaults: ${camel(Name)}ConfigDefaults },
  init: ({ log }, config: ${Name}Config) => new ${Name}(config, log),
});
export default ${camel(Name)}Plugin;
`,
      'src/index.ts': `export { default, ${camel(Name)}Plugin, ${camel(Name)}Token } from './plugin.js';\nexport { ${Name} } from './${base}.js';\n`,
      'src/plugin.test.ts': `import { createTestHost } from '@berth/core/testing';
import { describe, expect, it } from 'vitest';
import { ${camel(Name)}Plugin, ${camel(Name)}Token } from './plugin.js';

describe('${uri}', () => {
  it('boots in a host with its config', async () => {
    const t = await createTestHost({ plugins: [${camel(Name)}Plugin], pluginConfig: { '${uri}': { greeting: 'hi' } } });
    try {
      expect(t.host.get(${camel(Name)}Token).greet('berth')).toBe('hi, berth');
      expect(t.host.list()[0]).toMatchObject({ uri: '${uri}', status: 'ok' });
    } finally {
      await t.close();
    }
  });

  it('refuses an unknown config key, naming the plugin', async () => {
    await expect(createTestHost({ plugins: [${camel(Name)}Plugin], pluginConfig: { '${uri}': { greting: 'x' } } })).rejects.toThrow('${uri}');
  });
});
`,
      'README.md': `# ${name}

\`${uri}\`. Replace this text with the plugin's contract:

- **Provides**: \`${camel(Name)}Token\`.
- **Requires**: \`coreTokens.logger\`.
- **Config** (\`[plugins."${uri}"]\`): \`greeting\` (string, default \`hello\`).
- **On disk**: nothing.
- **Differences from containerd**: none (berth's own kind).
`,
    });
    execFileSync('node', [join(repo, 'tools/gen-version.mjs'), dir]);
    console.log(`created ${name} in packages/${rel}; add it to packages/daemon/src/plugins.ts (and its package.json) to compose it`);
  }
}
