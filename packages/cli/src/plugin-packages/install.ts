// `berth plugin install|ls|rm|upgrade`: the CLI writes the installed tree, beside berthd and as the same user (root),
// after fetching the artifact into berthd's content store under a lease. berthd verifies everything again at start
// (core's loadInstalledPlugins), so what the CLI checks here is the early, friendly refusal; the daemon's check is
// the one that counts. See docs/plugins.md, "Who writes the tree".
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  DataLossError,
  digestTree,
  FailedPreconditionError,
  hostPlatform,
  InvalidArgumentError,
  isNotFound,
  packageDir,
  parsePackageFacts,
  parseSignature,
  pluginApiProblems,
  PLUGIN_ARTIFACT_TYPE,
  PLUGIN_CONFIG_MEDIA_TYPE,
  PLUGIN_LAYER_MEDIA_TYPE,
  PLUGIN_SIGNATURE_ARTIFACT_TYPE,
  PLUGIN_SIGNATURE_MEDIA_TYPE,
  pluginsDir,
  readInstalledRecord,
  RECORD_FILE,
  sha256Digest,
  supportsPlatform,
  treeDigest,
  treeDir,
  verifyInstalledPackage,
  verifyPluginSignatures,
  writeFileAtomic,
  type ContentStore,
  type Descriptor,
  type InstalledPluginRecord,
  type OpContext,
  type PluginPackageFacts,
  type PluginSignature,
  type PluginTrust,
} from '@berth/core';
import { parseRemoteRef, type HttpResolver } from '@berth/registry';
import { readTarGz, treeFilesOf } from './tar.js';

/** The most a config blob or signature layer may be (they are small JSON documents). */
const MAX_SMALL_BLOB = 4 * 1024 * 1024;

/** What a registry holds for a plugin reference, read without writing anything. */
export interface RemotePlugin {
  readonly ref: string;
  readonly manifestDigest: string;
  readonly manifestBytes: Buffer;
  readonly layer: Descriptor;
  readonly facts: PluginPackageFacts;
  readonly configBytes: Buffer;
  /** Signature layers of the referrers of type PLUGIN_SIGNATURE_ARTIFACT_TYPE, each as its text. */
  readonly signatures: readonly string[];
}

/** The artifacts library, as install uses it (injected so the flow can be tested without a registry). */
export interface ArtifactAccess {
  resolveArtifact(ref: string): Promise<{ descriptor: Descriptor; manifest: { artifactType?: string; config: Descriptor; layers: readonly Descriptor[] }; bytes: Buffer }>;
  listReferrers(ref: string, filter: { artifactType?: string }): Promise<readonly Descriptor[]>;
  fetchBlob(ref: string, desc: Descriptor, max: number): Promise<Buffer>;
  fetchArtifact(ref: string, store: ContentStore, ctx: OpContext & { lease: string }): Promise<Descriptor>;
}

/** A blob of a repository, whole (at most `max` bytes) and digest-checked. */
export async function fetchBlobWith(resolver: HttpResolver, ref: string, desc: Descriptor, max: number): Promise<Buffer> {
  if (desc.size > max) throw new InvalidArgumentError(`${desc.digest}: ${desc.size} bytes is more than the ${max} a plugin's ${desc.mediaType} may have`);
  const remote = parseRemoteRef(ref);
  const body = await resolver.fetcher(`${remote.host}/${remote.repository}`).fetch(desc, {});
  const parts: Buffer[] = [];
  let length = 0;
  for await (const chunk of body.chunks) {
    length += chunk.length;
    if (length > max) throw new DataLossError(`${desc.digest}: the registry sent more than ${max} bytes`);
    parts.push(Buffer.from(chunk));
  }
  const data = Buffer.concat(parts, length);
  if (sha256Digest(data) !== desc.digest) throw new DataLossError(`${desc.digest}: the registry sent content with digest ${sha256Digest(data)}`);
  return data;
}

/** The repository part of a reference, and the reference pinned to a digest. */
export function pinned(ref: string, digest: string): string {
  const remote = parseRemoteRef(ref);
  return `${remote.host}/${remote.repository}@${digest}`;
}

/** Reads a plugin artifact (manifest, config blob, signatures) from the registry and checks its shape. */
export async function readRemotePlugin(ref: string, access: ArtifactAccess): Promise<RemotePlugin> {
  const resolved = await access.resolveArtifact(ref);
  const { manifest } = resolved;
  if (manifest.artifactType !== PLUGIN_ARTIFACT_TYPE) {
    throw new InvalidArgumentError(`${ref} is not a berth plugin (artifact type ${manifest.artifactType ?? 'none'}, expected ${PLUGIN_ARTIFACT_TYPE})`);
  }
  if (manifest.config.mediaType !== PLUGIN_CONFIG_MEDIA_TYPE) throw new InvalidArgumentError(`${ref}: config media type ${manifest.config.mediaType} is not ${PLUGIN_CONFIG_MEDIA_TYPE}`);
  if (manifest.layers.length !== 1 || manifest.layers[0]!.mediaType !== PLUGIN_LAYER_MEDIA_TYPE) throw new InvalidArgumentError(`${ref}: a plugin artifact has one ${PLUGIN_LAYER_MEDIA_TYPE} layer`);
  const configBytes = await access.fetchBlob(ref, manifest.config, MAX_SMALL_BLOB);
  const facts = parsePackageFacts(configBytes.toString('utf8'));
  const digest = resolved.descriptor.digest;
  const signatures: string[] = [];
  for (const referrer of await access.listReferrers(pinned(ref, digest), { artifactType: PLUGIN_SIGNATURE_ARTIFACT_TYPE })) {
    try {
      const sig = await access.resolveArtifact(pinned(ref, referrer.digest));
      for (const layer of sig.manifest.layers) {
        if (layer.mediaType === PLUGIN_SIGNATURE_MEDIA_TYPE) signatures.push((await access.fetchBlob(ref, layer, MAX_SMALL_BLOB)).toString('utf8'));
      }
    } catch {
      // An unreadable referrer is not a signature; when signatures are required, the others must do.
    }
  }
  return { ref, manifestDigest: digest, manifestBytes: resolved.bytes, layer: manifest.layers[0]!, facts, configBytes, signatures };
}

/** What berthd runs, as its introspection plugin exports it. */
export interface DaemonFacts {
  readonly pluginApi: string;
  readonly root: string;
}

/**
 * The refusals that need no download: another plugin API, another platform, no valid signature when one is
 * required. Returns the trusted signer, if any signature verified.
 */
export function checkInstallable(remote: RemotePlugin, daemon: DaemonFacts, trust: PluginTrust): { signer?: string; signatures: PluginSignature[] } {
  const api = pluginApiProblems(remote.facts, daemon.pluginApi);
  if (api.length > 0) throw new FailedPreconditionError(`cannot install ${remote.ref}: ${api.join('; ')}`);
  const platform = hostPlatform();
  if (!supportsPlatform(remote.facts, platform)) {
    throw new FailedPreconditionError(`cannot install ${remote.ref}: it runs on ${remote.facts.platforms.map((p) => `${p.os}/${p.architecture}`).join(', ')}, not ${platform.os}/${platform.architecture}`);
  }
  const signatures: PluginSignature[] = [];
  for (const text of remote.signatures) {
    try {
      signatures.push(parseSignature(text));
    } catch {
      // not one of ours
    }
  }
  if (trust.requireSigned) {
    try {
      return { signer: verifyPluginSignatures(remote.manifestDigest, signatures, trust.trustedKeys).keyId, signatures };
    } catch (err) {
      throw new FailedPreconditionError(`cannot install ${remote.ref}: ${(err as Error).message}`, { cause: err });
    }
  }
  if (trust.trustedKeys.length > 0 && signatures.length > 0) {
    try {
      return { signer: verifyPluginSignatures(remote.manifestDigest, signatures, trust.trustedKeys).keyId, signatures };
    } catch {
      return { signatures };
    }
  }
  return { signatures };
}

/** The lease that holds one installed package's blobs in berthd's content store. */
export function leaseIdOf(name: string, version: string): string {
  return `berth-plugin-${sha256Digest(`${name}@${version}`).slice(7, 23)}`;
}

export interface InstallDeps {
  readonly access: ArtifactAccess;
  readonly content: ContentStore;
  readonly namespace: string;
  readonly leases: {
    create(id: string, labels: Record<string, string>): Promise<void>;
    remove(id: string): Promise<void>;
  };
}

export type InstallOutcome = { readonly state: 'installed' | 'unchanged' | 'upgraded'; readonly record: InstalledPluginRecord; readonly replaced?: InstalledPluginRecord };

/**
 * Installs (or, when `upgrade`, replaces) a plugin package: checks, fetch into the content store under the
 * package's lease, the layer read back from the store and checked against the published tree digest, the tree
 * written to a staging dir and renamed into `<root>/plugins/<name>/<version>`, then the record. The same digest
 * installed and intact is left as it is.
 */
export async function installPlugin(ref: string, daemon: DaemonFacts, trust: PluginTrust, deps: InstallDeps, options: { upgrade?: boolean } = {}): Promise<InstallOutcome> {
  const remote = await readRemotePlugin(ref, deps.access);
  const { facts } = remote;
  const { signer } = checkInstallable(remote, daemon, trust);
  const root = daemon.root;
  const current = await readInstalledRecord(root, facts.name);
  if (current && current.manifestDigest === remote.manifestDigest) {
    try {
      await verifyInstalledPackage(root, current, { requireSigned: false, trustedKeys: [] });
      return { state: 'unchanged', record: current };
    } catch {
      // Damaged: installed again below.
    }
  } else if (current && !options.upgrade) {
    throw new FailedPreconditionError(`${facts.name} ${current.version} (${current.manifestDigest}) is installed; use berth plugin upgrade to replace it with ${facts.version} (${remote.manifestDigest})`);
  }

  const lease = leaseIdOf(facts.name, facts.version);
  const op = { namespace: deps.namespace, lease };
  await deps.leases.create(lease, { 'berth.plugin.name': facts.name, 'berth.plugin.version': facts.version, 'berth.plugin.manifest': remote.manifestDigest });
  await deps.access.fetchArtifact(pinned(ref, remote.manifestDigest), deps.content, op);
  const layer = await readBlob(deps.content, op, remote.layer);
  const files = readTarGz(layer);
  const digest = treeDigest(treeFilesOf(files));
  if (digest !== facts.tree.digest) throw new DataLossError(`${ref}: the layer's tree digest is ${digest}, the published one ${facts.tree.digest}`);

  const target = treeDir(root, facts.name, facts.version);
  const staging = join(pluginsDir(root), `.staging-${randomBytes(6).toString('hex')}`);
  try {
    for (const f of files) {
      await mkdir(dirname(join(staging, f.path)), { recursive: true, mode: 0o755 });
      await writeFile(join(staging, f.path), f.data, { mode: f.executable ? 0o755 : 0o644 });
    }
    if ((await digestTree(staging)) !== facts.tree.digest) throw new DataLossError(`${ref}: the unpacked tree does not match its digest`);
    await mkdir(packageDir(root, facts.name), { recursive: true, mode: 0o755 });
    await rm(target, { recursive: true, force: true });
    await rename(staging, target);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  const record: InstalledPluginRecord = {
    schemaVersion: 1,
    name: facts.name,
    version: facts.version,
    reference: ref,
    manifestDigest: remote.manifestDigest,
    manifest: remote.manifestBytes.toString('base64'),
    config: remote.configBytes.toString('base64'),
    signatures: remote.signatures.map((s) => Buffer.from(s, 'utf8').toString('base64')),
    ...(signer ? { signer } : {}),
    lease,
    installedAt: new Date().toISOString(),
  };
  await writeFileAtomic(join(packageDir(root, facts.name), RECORD_FILE), `${JSON.stringify(record, null, 2)}\n`);
  if (current && (current.version !== record.version || current.lease !== record.lease)) {
    if (current.version !== record.version) await rm(treeDir(root, current.name, current.version), { recursive: true, force: true });
    if (current.lease !== record.lease) await deps.leases.remove(current.lease).catch(() => undefined);
  }
  return { state: current ? 'upgraded' : 'installed', record, ...(current ? { replaced: current } : {}) };
}

/** Removes an installed package: its record, its tree, and the lease that held its blobs. */
export async function removePlugin(root: string, name: string, leases: InstallDeps['leases']): Promise<InstalledPluginRecord> {
  const record = await readInstalledRecord(root, name);
  if (!record) throw new InvalidArgumentError(`no plugin package ${name} is installed under ${pluginsDir(root)}`);
  const dir = packageDir(root, name);
  await rm(join(dir, RECORD_FILE), { force: true });
  await rm(dir, { recursive: true, force: true });
  // An empty scope dir (`@acme`) goes too.
  if (name.startsWith('@')) await rmdir(dirname(dir)).catch(() => undefined);
  await leases.remove(record.lease).catch((err: unknown) => {
    if (!isNotFound(err)) throw err;
  });
  return record;
}

async function readBlob(store: ContentStore, ctx: OpContext, desc: Descriptor): Promise<Buffer> {
  const reader = await store.reader(ctx, desc.digest);
  try {
    const parts: Buffer[] = [];
    for await (const chunk of reader.stream()) parts.push(chunk);
    const data = Buffer.concat(parts);
    if (sha256Digest(data) !== desc.digest) throw new DataLossError(`${desc.digest}: the content store holds other bytes`);
    return data;
  } finally {
    await reader.close();
  }
}
