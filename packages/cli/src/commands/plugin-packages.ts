// `berth plugin ...`: plugin packages as OCI artifacts (docs/plugins.md, "Publishing and installing"): pack, push,
// keygen, sign, install, ls, rm, upgrade. `berth plugins ls` (introspection) is another command: what berthd loaded.
import { existsSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { fetchArtifact, listReferrers, pushArtifact, resolveArtifact } from '@berth/client';
import {
  contentStoreToken,
  generateSigningKey,
  InvalidArgumentError,
  isAlreadyExists,
  listInstalledRecords,
  loadPluginTrust,
  loadServerConfigFile,
  PLUGIN_API_VERSION,
  PLUGIN_ARTIFACT_TYPE,
  PLUGIN_CONFIG_MEDIA_TYPE,
  PLUGIN_LAYER_MEDIA_TYPE,
  PLUGIN_SIGNATURE_ARTIFACT_TYPE,
  PLUGIN_SIGNATURE_MEDIA_TYPE,
  parsePrivateKey,
  signManifestDigest,
  validateServerConfig,
  verifyInstalledPackage,
  type PluginPackageFacts,
  type PluginTrust,
  type ServerConfig,
} from '@berth/core';
import { createResolver, parseRemoteRef, type HttpResolver } from '@berth/registry';
import type { CliContext } from '../context.js';
import { installPlugin, fetchBlobWith, removePlugin, type ArtifactAccess, type DaemonFacts, type InstallDeps } from '../plugin-packages/install.js';
import { factsOfTarball } from '../plugin-packages/facts.js';
import { artifactOptions, registryFlags, type RegistryFlags } from './artifact.js';

const DEFAULT_BERTHD_CONFIG = '/etc/berth/config.toml';

interface DaemonFlags {
  berthdConfig?: string;
}

function resolverOf(opts: RegistryFlags): HttpResolver {
  return createResolver(artifactOptions(opts));
}

function daemonFlags(cmd: Command): Command {
  return cmd.option('--berthd-config <file>', `berthd's config file, for its trust settings (default ${DEFAULT_BERTHD_CONFIG} when present)`);
}

async function packed(source: string): Promise<{ tarball: Buffer; facts: PluginPackageFacts }> {
  if (!existsSync(source)) throw new InvalidArgumentError(`${source} does not exist`);
  if (source.endsWith('.tgz') || source.endsWith('.tar.gz') || source.endsWith('.tar')) {
    const tarball = await readFile(source);
    return { tarball, facts: factsOfTarball(tarball) };
  }
  const { packPlugin } = await import('../plugin-packages/pack.js');
  const result = await packPlugin(source);
  return { tarball: result.tarball, facts: result.facts };
}

function tarballName(facts: Pick<PluginPackageFacts, 'name' | 'version'>): string {
  return `${facts.name.replace(/^@/, '').replace('/', '-')}-${facts.version}.tgz`;
}

async function daemonConfig(opts: DaemonFlags): Promise<{ config: ServerConfig; baseDir: string }> {
  const file = opts.berthdConfig ?? (existsSync(DEFAULT_BERTHD_CONFIG) ? DEFAULT_BERTHD_CONFIG : undefined);
  if (!file) return { config: validateServerConfig({}), baseDir: process.cwd() };
  return { config: await loadServerConfigFile(file), baseDir: dirname(resolve(file)) };
}

/** What the running berthd exports through its introspection plugin (plugin API version, root). */
async function daemonFacts(ctx: CliContext, config: ServerConfig): Promise<DaemonFacts> {
  const { plugins } = await ctx.berth().introspection.Plugins({ filters: ['type==io.containerd.grpc.v1,id==introspection'] });
  const exports = plugins[0]?.exports ?? {};
  const root = exports['berth.root'] ?? config.root;
  if (exports['berth.root'] && config.root !== exports['berth.root']) {
    ctx.warn(`berthd runs with root ${exports['berth.root']}; its config file says ${config.root}: installing under the running daemon's root`);
  }
  const pluginApi = exports['berth.plugin_api'];
  if (!pluginApi) ctx.warn(`berthd does not say which plugin API it runs; checking against this client's (${PLUGIN_API_VERSION})`);
  return { pluginApi: pluginApi ?? PLUGIN_API_VERSION, root };
}

function accessOf(resolver: HttpResolver): ArtifactAccess {
  const options = { resolver };
  return {
    resolveArtifact: (ref) => resolveArtifact(ref, options),
    listReferrers: (ref, filter) => listReferrers(ref, filter, options),
    fetchBlob: (ref, desc, max) => fetchBlobWith(resolver, ref, desc, max),
    fetchArtifact: (ref, store, op) => fetchArtifact(ref, store, op, options),
  };
}

async function installDeps(ctx: CliContext, resolver: HttpResolver): Promise<InstallDeps> {
  const berth = ctx.berth();
  return {
    access: accessOf(resolver),
    content: await ctx.resolve(contentStoreToken),
    namespace: ctx.options.namespace,
    leases: {
      create: async (id, labels) => {
        try {
          await berth.leases.Create({ id, labels });
        } catch (err) {
          if (!isAlreadyExists(err)) throw err;
        }
      },
      remove: async (id) => {
        await berth.leases.Delete({ id, sync: false });
      },
    },
  };
}

async function trustOf(opts: DaemonFlags): Promise<{ trust: PluginTrust; config: ServerConfig }> {
  const { config, baseDir } = await daemonConfig(opts);
  return { trust: await loadPluginTrust(config, baseDir), config };
}

export function registerPluginPackages(program: Command, ctx: CliContext): void {
  const plugin = program.command('plugin').description('plugin packages as OCI artifacts: pack, push, sign, install, ls, rm, upgrade');

  plugin
    .command('pack')
    .description('bundle a built plugin package (ESM, its npm dependencies included) into one deterministic tarball')
    .argument('<dir>', 'the package directory (with package.json)')
    .option('-o, --output <file>', 'the tarball to write (default <name>-<version>.tgz here)')
    .action(async (dir: string, opts: { output?: string }) => {
      const { packPlugin } = await import('../plugin-packages/pack.js');
      const result = await packPlugin(dir);
      const file = resolve(opts.output ?? tarballName(result.facts));
      await writeFile(file, result.tarball);
      if (ctx.json) ctx.printJson({ file, digest: result.digest, size: result.tarball.length, facts: result.facts });
      else ctx.line(`${file} ${result.digest} (${result.facts.plugins.map((p) => p.uri).join(', ')}; tree ${result.facts.tree.digest})`);
    });

  registryFlags(
    plugin
      .command('push')
      .description(`publish a plugin package (a directory, packed first, or a tarball from pack) as an ${PLUGIN_ARTIFACT_TYPE} artifact`)
      .argument('<source>', 'package directory or tarball')
      .argument('<ref>', 'host[:port]/repository[:tag]'),
  ).action(async (source: string, ref: string, opts: RegistryFlags) => {
    parseRemoteRef(ref);
    const { tarball, facts } = await packed(source);
    const resolver = resolverOf(opts);
    try {
      const desc = await pushArtifact(
        ref,
        {
          artifactType: PLUGIN_ARTIFACT_TYPE,
          config: { mediaType: PLUGIN_CONFIG_MEDIA_TYPE, data: `${JSON.stringify(facts)}\n` },
          files: [{ mediaType: PLUGIN_LAYER_MEDIA_TYPE, title: tarballName(facts), data: tarball }],
          annotations: { 'org.opencontainers.image.title': facts.name, 'org.opencontainers.image.version': facts.version },
        },
        { resolver },
      );
      if (ctx.json) ctx.printJson({ ref, digest: desc.digest, size: desc.size, name: facts.name, version: facts.version });
      else ctx.line(`${ref}: ${desc.digest} (${facts.name}@${facts.version})`);
    } finally {
      resolver.close();
    }
  });

  plugin
    .command('keygen')
    .description('make a signing key pair: <prefix>.key (PKCS#8 PEM, mode 0600) and <prefix>.pub (SPKI PEM)')
    .argument('<prefix>', 'path prefix of the two files')
    .option('--algorithm <name>', 'ed25519 or ecdsa-p256-sha256', 'ed25519')
    .action(async (prefix: string, opts: { algorithm: string }) => {
      if (opts.algorithm !== 'ed25519' && opts.algorithm !== 'ecdsa-p256-sha256') throw new InvalidArgumentError('--algorithm must be ed25519 or ecdsa-p256-sha256');
      const key = generateSigningKey(opts.algorithm);
      if (existsSync(`${prefix}.key`)) throw new InvalidArgumentError(`${prefix}.key exists; not overwriting a key`);
      await writeFile(`${prefix}.key`, key.privateKey, { mode: 0o600, flag: 'wx' });
      await chmod(`${prefix}.key`, 0o600);
      await writeFile(`${prefix}.pub`, key.publicKey);
      if (ctx.json) ctx.printJson({ key: `${prefix}.key`, public: `${prefix}.pub`, keyId: key.keyId });
      else ctx.line(`${prefix}.key ${prefix}.pub ${key.keyId}`);
    });

  registryFlags(
    plugin
      .command('sign')
      .description('sign a pushed plugin (its manifest digest) and attach the signature to it as a referrer')
      .argument('<ref>', 'the plugin artifact')
      .requiredOption('--key <file>', 'PEM private key (Ed25519 or ECDSA P-256)'),
  ).action(async (ref: string, opts: RegistryFlags & { key: string }) => {
    const key = parsePrivateKey(await readFile(opts.key, 'utf8'), opts.key);
    const resolver = resolverOf(opts);
    try {
      const target = await resolveArtifact(ref, { resolver });
      if (target.manifest.artifactType !== PLUGIN_ARTIFACT_TYPE) throw new InvalidArgumentError(`${ref} is not a berth plugin (artifact type ${target.manifest.artifactType ?? 'none'})`);
      const signature = signManifestDigest(target.descriptor.digest, key);
      const remote = parseRemoteRef(ref);
      const desc = await pushArtifact(
        `${remote.host}/${remote.repository}`,
        {
          artifactType: PLUGIN_SIGNATURE_ARTIFACT_TYPE,
          files: [{ mediaType: PLUGIN_SIGNATURE_MEDIA_TYPE, title: 'signature.json', data: `${JSON.stringify(signature)}\n` }],
          subject: { mediaType: target.descriptor.mediaType, digest: target.descriptor.digest, size: target.descriptor.size },
        },
        { resolver },
      );
      if (ctx.json) ctx.printJson({ ref, subject: target.descriptor.digest, signature: desc.digest, keyId: signature.keyId });
      else ctx.line(`${ref}: ${target.descriptor.digest} signed by ${signature.keyId} (${desc.digest})`);
    } finally {
      resolver.close();
    }
  });

  const installAction = (upgrade: boolean) => async (ref: string, opts: RegistryFlags & DaemonFlags) => {
    const { trust, config } = await trustOf(opts);
    const daemon = await daemonFacts(ctx, config);
    const resolver = resolverOf(opts);
    try {
      const outcome = await installPlugin(ref, daemon, trust, await installDeps(ctx, resolver), { upgrade });
      const r = outcome.record;
      if (ctx.json) ctx.printJson({ state: outcome.state, name: r.name, version: r.version, digest: r.manifestDigest, signer: r.signer ?? null, ...(outcome.replaced ? { replaced: outcome.replaced.version } : {}) });
      else {
        const was = outcome.replaced ? ` (was ${outcome.replaced.version})` : '';
        ctx.line(`${r.name}@${r.version} ${r.manifestDigest}: ${outcome.state}${was}; berthd loads it at its next start`);
      }
    } finally {
      resolver.close();
    }
  };

  daemonFlags(
    registryFlags(
      plugin
        .command('install')
        .description('install a plugin package from a registry into berthd\'s root (loaded at berthd\'s next start)')
        .argument('<ref>', 'host[:port]/repository[:tag][@digest]'),
    ),
  ).action(installAction(false));

  daemonFlags(
    registryFlags(
      plugin
        .command('upgrade')
        .description('install another version of an installed plugin package in place of the current one')
        .argument('<ref>', 'host[:port]/repository[:tag][@digest]'),
    ),
  ).action(installAction(true));

  daemonFlags(
    plugin
      .command('ls')
      .alias('list')
      .description('list installed plugin packages: version, digest, signer, status (ok, modified, unsigned, ...)')
      .option('-q, --quiet', 'print only the package names'),
  ).action(async (opts: DaemonFlags & { quiet?: boolean }) => {
    const { trust, config } = await trustOf(opts);
    const { root } = await daemonFacts(ctx, config);
    const rows: Array<{ name: string; version: string; digest: string; signer: string; status: string; plugins: string }> = [];
    for (const { name, record, problem } of await listInstalledRecords(root)) {
      if (!record) {
        rows.push({ name, version: '-', digest: '-', signer: '-', status: `error: ${problem}`, plugins: '' });
        continue;
      }
      let status = 'ok';
      let signer = record.signer ?? '-';
      let plugins = '';
      try {
        const verified = await verifyInstalledPackage(root, record, trust);
        signer = verified.signer ?? signer;
        plugins = verified.facts.plugins.map((p) => p.uri).join(',');
      } catch (err) {
        status = `error: ${(err as Error).message}`;
      }
      rows.push({ name, version: record.version, digest: record.manifestDigest, signer, status, plugins });
    }
    if (ctx.json) ctx.printJson(rows);
    else if (opts.quiet) for (const r of rows) ctx.line(r.name);
    else ctx.table([['NAME', 'VERSION', 'DIGEST', 'SIGNER', 'STATUS'], ...rows.map((r) => [r.name, r.version, r.digest, r.signer, r.status])]);
  });

  daemonFlags(
    plugin
      .command('rm')
      .aliases(['remove', 'uninstall'])
      .description('remove installed plugin packages (tree, record, and the lease on their blobs)')
      .argument('<names...>', 'package names'),
  ).action(async (names: string[], opts: DaemonFlags) => {
    const { config } = await trustOf(opts);
    const { root } = await daemonFacts(ctx, config);
    const berth = ctx.berth();
    for (const name of names) {
      const record = await removePlugin(root, name, { create: async () => undefined, remove: async (id) => void (await berth.leases.Delete({ id, sync: true })) });
      if (!ctx.json) ctx.line(`${record.name}@${record.version}`);
    }
    if (ctx.json) ctx.printJson(names);
  });
}

