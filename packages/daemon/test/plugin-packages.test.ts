// Plugin packages as OCI artifacts, end to end (docs/plugins.md, "Publishing and installing"): a third-party plugin
// written in a temp dir outside the workspace, with an npm dependency of its own (made here, nothing from the
// network) and a gRPC service of its own proto, is packed, pushed to a loopback docker-registry, signed, installed
// into a running berthd's root by reference, and loaded at the next start; then the refusals (unsigned, another
// plugin API, a tampered tree) and rm.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { credentials, makeGenericClientConstructor, type Client, type ServiceError } from '@grpc/grpc-js';
import { definitionOf, loadProtoSource } from '@berth/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_MAIN, DAEMON_MAIN, hasCtr, run, startBerthd, type Berthd, type RunResult } from './harness.js';
import { hasRegistry, startRegistry, type Registry } from './registry.js';

const core = fileURLToPath(new URL('../../core', import.meta.url));
const T = { timeoutMs: 120_000 };

const write = (dir: string, files: Record<string, string>) => {
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
};

const ok = (r: RunResult, what: string): RunResult => {
  expect(r.code, `${what}:\n${r.stdout}\n${r.stderr}`).toBe(0);
  return r;
};

const PROTO = `syntax = "proto3";
package io.example.loud.v1;
service Loud { rpc Say (SayRequest) returns (SayResponse); }
message SayRequest { string name = 1; }
message SayResponse { string message = 1; }
`;

/** A plugin package in `dir`: its own proto, its own npm dependency `shout`, @berth/core from the workspace. */
function writePlugin(dir: string, options: { name: string; version: string; id: string; pluginApi?: string }): void {
  mkdirSync(join(dir, 'node_modules/@berth'), { recursive: true });
  symlinkSync(core, join(dir, 'node_modules/@berth/core'));
  write(dir, {
    // The dependency, as npm would install it: CommonJS, required through the bundle's interop.
    'node_modules/shout/package.json': JSON.stringify({ name: 'shout', version: '3.1.4', main: 'index.js' }),
    'node_modules/shout/index.js': "'use strict';\nmodule.exports = function shout(text) { return String(text).toUpperCase() + '!'; };\n",
    'package.json': JSON.stringify({ name: options.name, version: options.version, type: 'module', exports: './dist/index.js', files: ['dist', 'proto'], dependencies: { shout: '3.1.4' } }),
    'proto/example/loud/v1/loud.proto': PROTO,
    'dist/index.js': `import { fileURLToPath } from 'node:url';
import { definePlugin, InvalidArgumentError, rpcServicesPoint } from '@berth/core';
import shout from 'shout';
const PROTO_FILE = fileURLToPath(new URL('../proto/example/loud/v1/loud.proto', import.meta.url));
export default definePlugin({
  type: 'io.example.loud.v1', id: ${JSON.stringify(options.id)}, version: ${JSON.stringify(options.version)}, pluginApi: ${JSON.stringify(options.pluginApi ?? '^2.0.0')},
  provides: rpcServicesPoint,
  config: {
    schema: { $id: 'io.example.loud.v1.${options.id}', type: 'object', additionalProperties: false, properties: { greeting: { type: 'string' } } },
    defaults: { greeting: 'hello' },
  },
  init: (_deps, config) => ({
    services: [{
      service: 'io.example.loud.v1.Loud',
      proto: { files: [PROTO_FILE] },
      handlers: {
        Say: async (req) => {
          if (!req.name) throw new InvalidArgumentError('name is required');
          return { message: shout(config.greeting + ', ' + req.name) };
        },
      },
    }],
  }),
});
`,
  });
}

/** Every file under a directory (relative paths), empty when it does not exist. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => !d.isDirectory()).map((d) => join(d.parentPath, d.name).slice(dir.length + 1));
}

const ready = hasCtr() && hasRegistry();

describe.skipIf(!ready)('plugin packages: pack, push, sign, install, load, rm', () => {
  let work: string;
  let registry: Registry | undefined;
  let daemon: Berthd | undefined;
  let config: string;
  let ref: string;
  const berth = (args: string[]) => daemon!.berth(args, T);
  const installArgs = (r: string) => ['plugin', 'install', '--plain-http', '--berthd-config', daemon!.configFile, r];

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'berth-plugin-packages-'));
    registry = await startRegistry();
    ref = `${registry.host}/example/loud:1.0.0`;
    writePlugin(join(work, 'loud'), { name: '@example/berth-plugin-loud', version: '1.0.0', id: 'loud' });
    config = [`require_signed_plugins = true`, `trusted_plugin_keys = ["${join(work, 'acme.pub')}"]`].join('\n');
    // Keys need no daemon.
    ok(await run(process.execPath, [CLI_MAIN, 'plugin', 'keygen', join(work, 'acme')]), 'keygen');
    ok(await run(process.execPath, [CLI_MAIN, 'plugin', 'keygen', '--algorithm', 'ecdsa-p256-sha256', join(work, 'stranger')]), 'keygen p256');
    daemon = await startBerthd({ config: config + '\n' });
  }, 180_000);

  afterAll(async () => {
    await daemon?.stop();
    await registry?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('packs deterministically: the same tree gives the same tarball digest', async () => {
    const a = ok(await berth(['--format', 'json', 'plugin', 'pack', join(work, 'loud'), '-o', join(work, 'a.tgz')]), 'pack a');
    const b = ok(await berth(['--format', 'json', 'plugin', 'pack', join(work, 'loud'), '-o', join(work, 'b.tgz')]), 'pack b');
    const [da, db] = [JSON.parse(a.stdout) as { digest: string }, JSON.parse(b.stdout) as { digest: string }];
    expect(da.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(db.digest).toBe(da.digest);
    expect(readFileSync(join(work, 'a.tgz')).equals(readFileSync(join(work, 'b.tgz')))).toBe(true);
  });

  it('pushes the tarball as a plugin artifact and signs it; install by reference writes the tree and is idempotent', async () => {
    const pushed = ok(await berth(['plugin', 'push', '--plain-http', join(work, 'a.tgz'), ref]), 'push');
    expect(pushed.stdout).toContain('@example/berth-plugin-loud@1.0.0');
    // The artifact as the registry serves it: our artifact type, config and layer media types.
    const manifest = (await (await registry!.fetch(`${registry!.url}/v2/example/loud/manifests/1.0.0`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).json()) as {
      artifactType: string; config: { mediaType: string }; layers: { mediaType: string }[];
    };
    expect(manifest.artifactType).toBe('application/vnd.berth.plugin.v1');
    expect(manifest.config.mediaType).toBe('application/vnd.berth.plugin.config.v1+json');
    expect(manifest.layers.map((l) => l.mediaType)).toEqual(['application/vnd.berth.plugin.layer.v1.tar+gzip']);

    // Signatures are required: unsigned, it is refused and nothing is written.
    const unsigned = await berth(installArgs(ref));
    expect(unsigned.code).toBe(1);
    expect(unsigned.stderr).toMatch(/is not signed, and require_signed_plugins is set/);
    expect(filesUnder(join(daemon!.root, 'plugins'))).toEqual([]);
    // Signed by a key berthd does not trust: refused too.
    ok(await berth(['plugin', 'sign', '--plain-http', ref, '--key', join(work, 'stranger.key')]), 'sign (untrusted)');
    expect((await berth(installArgs(ref))).stderr).toMatch(/untrusted key sha256:/);

    ok(await berth(['plugin', 'sign', '--plain-http', ref, '--key', join(work, 'acme.key')]), 'sign');
    const first = ok(await berth(['--format', 'json', ...installArgs(ref)]), 'install');
    expect(JSON.parse(first.stdout)).toMatchObject({ state: 'installed', name: '@example/berth-plugin-loud', version: '1.0.0', signer: expect.stringMatching(/^sha256:/) });
    const tree = join(daemon!.root, 'plugins/@example/berth-plugin-loud/1.0.0');
    expect(filesUnder(tree).sort()).toEqual(['dist/index.js', 'package.json', 'proto/example/loud/v1/loud.proto']);
    const before = filesUnder(join(daemon!.root, 'plugins'));
    const second = ok(await berth(['--format', 'json', ...installArgs(ref)]), 'install again');
    expect(JSON.parse(second.stdout)).toMatchObject({ state: 'unchanged', digest: JSON.parse(first.stdout).digest });
    expect(filesUnder(join(daemon!.root, 'plugins'))).toEqual(before);
    // The blobs are held by the install's lease.
    expect((await daemon!.ctr(['leases', 'ls', '-q'])).stdout).toMatch(/berth-plugin-[0-9a-f]{16}/);
    const ls = ok(await berth(['plugin', 'ls', '--berthd-config', daemon!.configFile]), 'plugin ls');
    expect(ls.stdout).toMatch(/@example\/berth-plugin-loud\s+1\.0\.0\s+sha256:[0-9a-f]{64}\s+sha256:[0-9a-f]{64}\s+ok/);
  });

  it('refuses an incompatible pluginApi at install, naming both versions, before writing anything', async () => {
    writePlugin(join(work, 'future'), { name: 'berth-plugin-future', version: '0.1.0', id: 'future', pluginApi: '^9.1.0' });
    const futureRef = `${registry!.host}/example/future:0.1.0`;
    ok(await berth(['plugin', 'push', '--plain-http', join(work, 'future'), futureRef]), 'push future');
    ok(await berth(['plugin', 'sign', '--plain-http', futureRef, '--key', join(work, 'acme.key')]), 'sign future');
    const refused = await berth(installArgs(futureRef));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/requires plugin API \^9\.1\.0, but berthd runs plugin API 2\.\d+\.\d+/);
    expect(existsSync(join(daemon!.root, 'plugins/berth-plugin-future'))).toBe(false);
  });

  it('after a restart: ok in ctr plugins ls, answers its own service, config from the manifest', async () => {
    const dir = daemon!.dir;
    await daemon!.stop({ keepDir: true });
    daemon = await startBerthd({ dir, config: `${config}\n[plugins."io.example.loud.v1.loud"]\ngreeting = "ahoy"\n` });
    const ls = ok(await daemon.ctr(['plugins', 'ls']), 'ctr plugins ls');
    expect(ls.stdout).toMatch(/io\.example\.loud\.v1\s+loud\s+-\s+ok/);
    const root = loadProtoSource({ files: [join(work, 'loud/proto/example/loud/v1/loud.proto')] });
    const Ctor = makeGenericClientConstructor(definitionOf(root.lookupService('io.example.loud.v1.Loud')) as never, 'Loud');
    const client = new Ctor(`unix://${daemon.address}`, credentials.createInsecure()) as Client & Record<string, Function>;
    const call = (name: string) =>
      new Promise<{ message?: string; error?: ServiceError }>((resolve) =>
        client.Say!.call(client, { name }, (error: ServiceError | null, res: { message: string }) => resolve(error ? { error } : res)),
      );
    try {
      expect(await call('berth')).toEqual({ message: 'AHOY, BERTH!' });
      expect((await call('')).error?.code).toBe(3);
    } finally {
      client.close();
    }
    // Its schema is in `berthd config default`, and validated like a built-in's.
    const def = await run(process.execPath, [DAEMON_MAIN, '--config', daemon.configFile, 'config', 'default']);
    expect(def.code, def.stderr).toBe(0);
    expect(def.stdout).toMatch(/\[plugins\."io\.example\.loud\.v1\.loud"\]\ngreeting = "hello"/);
    writeFileSync(join(work, 'typo.toml'), `root = "${daemon.root}"\n${config}\n[plugins."io.example.loud.v1.loud"]\ngretting = "x"\n`);
    const typo = await run(process.execPath, [DAEMON_MAIN, 'config', 'validate', join(work, 'typo.toml')]);
    expect(typo.code).toBe(1);
    expect(typo.stderr).toMatch(/io\.example\.loud\.v1\.loud.*gretting/);
  });

  it('refuses a tampered tree at load: error in ctr plugins ls, the rest serving', async () => {
    const file = join(daemon!.root, 'plugins/@example/berth-plugin-loud/1.0.0/dist/index.js');
    writeFileSync(file, `${readFileSync(file, 'utf8')}\n// changed\n`);
    const dir = daemon!.dir;
    await daemon!.stop({ keepDir: true });
    daemon = await startBerthd({ dir, config: config + '\n' });
    const ls = ok(await daemon.ctr(['plugins', 'ls']), 'ctr plugins ls');
    expect(ls.stdout).toMatch(/io\.example\.loud\.v1\s+loud\s+-\s+error/);
    const detail = await daemon.ctr(['plugins', 'ls', '-d', 'id==loud']);
    expect(detail.stdout).toMatch(/was modified \(digest sha256:[0-9a-f]+, published sha256:/);
    ok(await daemon.ctr(['version']), 'ctr version');
    ok(await daemon.ctr(['namespaces', 'create', 'after-tamper']), 'ctr namespaces create');
    const mine = await berth(['plugin', 'ls', '--berthd-config', daemon.configFile]);
    expect(mine.stdout).toMatch(/berth-plugin-loud.*error: .*was modified/);
  });

  it('upgrade replaces an installed version (install refuses to), its old tree and lease go', async () => {
    writePlugin(join(work, 'loud-next'), { name: '@example/berth-plugin-loud', version: '1.1.0', id: 'loud' });
    const next = `${registry!.host}/example/loud:1.1.0`;
    ok(await berth(['plugin', 'push', '--plain-http', join(work, 'loud-next'), next]), 'push 1.1.0');
    ok(await berth(['plugin', 'sign', '--plain-http', next, '--key', join(work, 'acme.key')]), 'sign 1.1.0');
    const leasesBefore = (await daemon!.ctr(['leases', 'ls', '-q'])).stdout.trim().split('\n').filter((l) => l.startsWith('berth-plugin-'));
    expect(leasesBefore).toHaveLength(1);
    const refused = await berth(installArgs(next));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/@example\/berth-plugin-loud 1\.0\.0 .* is installed; use berth plugin upgrade/);
    const up = ok(await berth(['--format', 'json', 'plugin', 'upgrade', '--plain-http', '--berthd-config', daemon!.configFile, next]), 'upgrade');
    expect(JSON.parse(up.stdout)).toMatchObject({ state: 'upgraded', version: '1.1.0', replaced: '1.0.0' });
    const pkg = join(daemon!.root, 'plugins/@example/berth-plugin-loud');
    expect(readdirSync(pkg).sort()).toEqual(['1.1.0', 'installed.json']);
    const leasesAfter = (await daemon!.ctr(['leases', 'ls', '-q'])).stdout.trim().split('\n').filter((l) => l.startsWith('berth-plugin-'));
    expect(leasesAfter).toHaveLength(1);
    expect(leasesAfter[0]).not.toBe(leasesBefore[0]);
    const dir = daemon!.dir;
    await daemon!.stop({ keepDir: true });
    daemon = await startBerthd({ dir, config: config + '\n' });
    expect(ok(await daemon.ctr(['plugins', 'ls', '-d', 'id==loud']), 'ctr plugins ls').stdout).toMatch(/berth\.version\s+1\.1\.0/);
    expect((await daemon.ctr(['plugins', 'ls'])).stdout).toMatch(/io\.example\.loud\.v1\s+loud\s+-\s+ok/);
  });

  it('rm leaves no files and releases the lease: the blobs are collected', async () => {
    const layer = JSON.parse(readFileSync(join(daemon!.root, 'plugins/@example/berth-plugin-loud/installed.json'), 'utf8')) as { manifestDigest: string };
    expect(ok(await daemon!.ctr(['content', 'ls', '-q']), 'ctr content ls').stdout).toContain(layer.manifestDigest);
    ok(await berth(['plugin', 'rm', '--berthd-config', daemon!.configFile, '@example/berth-plugin-loud']), 'rm');
    expect(filesUnder(join(daemon!.root, 'plugins'))).toEqual([]);
    expect(existsSync(join(daemon!.root, 'plugins/@example'))).toBe(false);
    expect((await daemon!.ctr(['leases', 'ls', '-q'])).stdout).not.toMatch(/berth-plugin-/);
    const content = ok(await daemon!.ctr(['content', 'ls', '-q']), 'ctr content ls');
    expect(content.stdout).not.toContain(layer.manifestDigest);
    expect((await berth(['plugin', 'rm', '--berthd-config', daemon!.configFile, '@example/berth-plugin-loud'])).stderr).toMatch(/no plugin package @example\/berth-plugin-loud is installed/);
  });
});
