// Plugins written outside this repository, as docs/plugins.md tells a third party to write them: packages in a temp
// dir, built against the packed @berth/core tarball (`pnpm pack`, installed with npm), loaded through
// `plugin_packages` by a real berthd and checked with Debian's ctr and with a client built from the plugin's own
// proto. One is made by the scaffold (`tools/new-package.mjs --outside`); the others are plain ESM files.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { credentials, makeGenericClientConstructor, type Client, type ServiceError } from '@grpc/grpc-js';
import { definitionOf, loadProtoSource } from '@berth/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasCtr, startBerthd, type Berthd } from './harness.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const tsc = join(repo, 'node_modules/typescript/bin/tsc');
const PNPM = ['-y', 'pnpm@12.4.2'];

/** Whether npm can reach its registry (core's own dependencies come from it, as for any third party). */
function registryReachable(): boolean {
  try {
    execFileSync('npm', ['view', 'semver', 'version'], { stdio: 'ignore', timeout: 30_000 });
    return true;
  } catch {
    return false;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
    server.once('error', reject);
  });
}

const write = (dir: string, files: Record<string, string>) => {
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
};

const ready = hasCtr() && existsSync(tsc) && registryReachable();

describe.skipIf(!ready)('third-party plugins, built outside the repository against the packed @berth/core', () => {
  let work: string;
  let daemon: Berthd | undefined;
  let metricsPort: number;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'berth-third-party-'));
    // 1. The packed core, installed the way a third party installs it (npm, from the registry for its own deps).
    execFileSync('npx', [...PNPM, 'pack', '--pack-destination', work], { cwd: join(repo, 'packages/core'), stdio: 'ignore' });
    const tarball = join(work, readdirSync(work).find((f) => f.endsWith('.tgz'))!);
    writeFileSync(join(work, 'package.json'), JSON.stringify({ name: 'third-party-workspace', private: true }));
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', tarball, '@types/node@20.19.43'], { cwd: work, stdio: 'ignore', timeout: 180_000 });

    // 2. A plugin with its own gRPC service and proto, from the scaffold, built to JS with tsc.
    execFileSync('node', [join(repo, 'tools/new-package.mjs'), '--outside', join(work, 'hello'), '--type', 'io.example.hello.v1', '--id', 'hello', '--core', tarball]);
    execFileSync('node', ['scripts/gen-version.mjs'], { cwd: join(work, 'hello') });
    execFileSync('node', [tsc, '-p', 'tsconfig.json'], { cwd: join(work, 'hello') });

    // 3. A contribution point owned by one package and contributed to by another: neither imports the other, they
    //    only agree on the point's id. The owner contributes a collector to the daemon's /v1/metrics in turn.
    write(join(work, 'greeters'), {
      'package.json': JSON.stringify({ name: '@example/berth-plugin-greeters', version: '1.2.3', type: 'module', exports: './index.js' }),
      'index.js': `import { createContributionPoint, definePlugin, metricsCollectorsPoint } from '@berth/core';
const greetersPoint = createContributionPoint('io.example.greeters');
export default definePlugin({
  type: 'io.example.greeters.v1', id: 'registry', version: '1.2.3', pluginApi: '^2.0.0',
  requires: { greeters: greetersPoint },
  provides: metricsCollectorsPoint,
  init: ({ greeters }) => ({
    collect: () => [{ name: 'example_greeters', help: 'Greeters contributed to the registry.', type: 'gauge',
      samples: [...greeters].map(([id, g]) => ({ labels: { greeter: id, says: g.greet('berth') }, value: 1 })) }],
  }),
});
`,
    });
    write(join(work, 'greeter-a'), {
      'package.json': JSON.stringify({ name: '@example/berth-plugin-greeter-a', version: '0.0.1', type: 'module', exports: './index.js' }),
      'index.js': `import { createContributionPoint, definePlugin } from '@berth/core';
export default definePlugin({
  type: 'io.example.greeter.v1', id: 'greeter-a', version: '0.0.1', pluginApi: '^2.0.0',
  provides: createContributionPoint('io.example.greeters'),
  init: () => ({ greet: (name) => 'ahoy ' + name }),
});
`,
    });

    // 4. A plugin naming a service its proto does not have: it alone is marked error.
    write(join(work, 'broken'), {
      'package.json': JSON.stringify({ name: '@example/berth-plugin-broken', version: '0.0.1', type: 'module', exports: './index.js' }),
      'index.js': `import { definePlugin, rpcServicesPoint } from '@berth/core';
import { PROTO_FILE } from '../hello/dist/index.js';
export default definePlugin({
  type: 'io.example.broken.v1', id: 'broken', version: '0.0.1', pluginApi: '^2.0.0',
  provides: rpcServicesPoint,
  init: () => ({ services: [{ service: 'io.example.hello.v1.Nope', proto: { files: [PROTO_FILE] }, handlers: { Say: async () => ({}) } }] }),
});
`,
    });

    metricsPort = await freePort();
    daemon = await startBerthd({
      config: [
        `plugin_packages = ["${join(work, 'hello')}", "${join(work, 'greeters')}", "${join(work, 'greeter-a')}", "${join(work, 'broken')}"]`,
        '[metrics]',
        `address = "127.0.0.1:${metricsPort}"`,
        '[plugins."io.example.hello.v1.hello"]',
        'greeting = "hi"',
      ].join('\n'),
    });
  }, 300_000);

  afterAll(async () => {
    await daemon?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('lists them in ctr plugins ls: the good ones ok, the broken one error with its reason', async () => {
    const ls = await daemon!.ctr(['plugins', 'ls']);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/io\.example\.hello\.v1\s+hello\s+-\s+ok/);
    expect(ls.stdout).toMatch(/io\.example\.greeters\.v1\s+registry\s+-\s+ok/);
    expect(ls.stdout).toMatch(/io\.example\.greeter\.v1\s+greeter-a\s+-\s+ok/);
    expect(ls.stdout).toMatch(/io\.example\.broken\.v1\s+broken\s+-\s+error/);
    const detail = await daemon!.ctr(['plugins', 'ls', '-d', 'id==broken']);
    expect(detail.stdout).toContain('service io.example.hello.v1.Nope is not defined in');
    const hello = await daemon!.ctr(['plugins', 'ls', '-d', 'id==hello']);
    expect(hello.stdout).toContain('berth.contributes');
  });

  it('answers a call to its own service from a client built from its proto, with its config', async () => {
    const root = loadProtoSource({ files: [join(work, 'hello/proto/example/hello/v1/hello.proto')] });
    const service = root.lookupService('io.example.hello.v1.Hello');
    const Ctor = makeGenericClientConstructor(definitionOf(service) as never, 'Hello');
    const client = new Ctor(`unix://${daemon!.address}`, credentials.createInsecure()) as Client & Record<string, Function>;
    const call = (name: string) =>
      new Promise<{ message?: string; error?: ServiceError }>((resolve) =>
        client.Say!.call(client, { name }, (error: ServiceError | null, res: { message: string }) => resolve(error ? { error } : res)),
      );
    try {
      expect(await call('berth')).toEqual({ message: 'hi, berth' });
      const refused = await call('');
      expect(refused.error?.code).toBe(3);
      expect(refused.error?.details).toBe('name is required: invalid argument');
    } finally {
      client.close();
    }
  });

  it('delivers the contribution of one package to another, and the collector to /v1/metrics', async () => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/v1/metrics`)).text();
    expect(text).toContain('# TYPE example_greeters gauge');
    expect(text).toMatch(/example_greeters\{greeter="greeter-a",says="ahoy berth"\} 1/);
  });

  it('keeps serving every other plugin', async () => {
    expect((await daemon!.ctr(['version'])).code).toBe(0);
    expect((await daemon!.ctr(['namespaces', 'create', 'after-third-party'])).code).toBe(0);
    expect((await daemon!.ctr(['namespaces', 'ls', '-q'])).stdout).toContain('after-third-party');
  });
});
