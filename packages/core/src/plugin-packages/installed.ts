import { readdir, readFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { ConfigInvalidError } from '../config/errors.js';
import { sha256Digest } from '../digest/index.js';
import { DataLossError, FailedPreconditionError, InvalidArgumentError } from '../errdefs/index.js';
import { hasErrno } from '../fs/index.js';
import { packageNameProblem, packageVersionProblem, parsePackageFacts, type PluginPackageFacts } from './facts.js';
import { PLUGIN_ARTIFACT_TYPE, PLUGIN_CONFIG_MEDIA_TYPE, PLUGIN_LAYER_MEDIA_TYPE } from './media-types.js';
import { parsePublicKey, parseSignature, verifyPluginSignatures, type TrustedKey } from './signature.js';
import { digestTree, treePathProblem } from './tree.js';

/**
 * What `berth plugin install` records for one installed package, in `<root>/plugins/<name>/installed.json`, beside
 * the tree in `<root>/plugins/<name>/<version>/`. The manifest, config blob and signatures are kept byte for byte
 * (base64), so berthd re-checks the whole chain at every start without a registry: manifest digest → config blob →
 * tree digest → files, and signature → manifest digest.
 */
export interface InstalledPluginRecord {
  readonly schemaVersion: 1;
  readonly name: string;
  readonly version: string;
  /** The reference it was installed from. */
  readonly reference: string;
  readonly manifestDigest: string;
  /** Base64 of the manifest, the config blob and each signature layer. */
  readonly manifest: string;
  readonly config: string;
  readonly signatures: readonly string[];
  /** Key id of the trusted key whose signature was verified at install, if any. */
  readonly signer?: string;
  /** The lease that holds its blobs in berthd's content store (released by `berth plugin rm`). */
  readonly lease: string;
  readonly installedAt: string;
}

export interface PluginTrust {
  readonly requireSigned: boolean;
  readonly trustedKeys: readonly TrustedKey[];
}

export const RECORD_FILE = 'installed.json';

export function pluginsDir(root: string): string {
  return join(root, 'plugins');
}

/** `<root>/plugins/<name>`; the name is checked first (npm's rules keep it inside `plugins/`). */
export function packageDir(root: string, name: string): string {
  const problem = packageNameProblem(name);
  if (problem) throw new InvalidArgumentError(`plugin package name ${problem}`);
  return join(pluginsDir(root), name);
}

export function treeDir(root: string, name: string, version: string): string {
  const problem = packageVersionProblem(version);
  if (problem) throw new InvalidArgumentError(`plugin package version ${problem}`);
  return join(packageDir(root, name), version);
}

/** The trusted keys and policy of a config (`trusted_plugin_keys`: PEM files, relative to the config's directory). */
export async function loadPluginTrust(config: { require_signed_plugins: boolean; trusted_plugin_keys: readonly string[] }, baseDir: string): Promise<PluginTrust> {
  const trustedKeys: TrustedKey[] = [];
  for (const spec of config.trusted_plugin_keys) {
    const file = isAbsolute(spec) ? spec : resolve(baseDir, spec);
    let pem: string;
    try {
      pem = await readFile(file, 'utf8');
    } catch (err) {
      throw new ConfigInvalidError([`trusted_plugin_keys: cannot read ${file}: ${(err as Error).message}`]);
    }
    try {
      trustedKeys.push(parsePublicKey(pem, file));
    } catch (err) {
      throw new ConfigInvalidError([`trusted_plugin_keys: ${(err as Error).message}`]);
    }
  }
  if (config.require_signed_plugins && trustedKeys.length === 0) {
    throw new ConfigInvalidError(['require_signed_plugins is set but trusted_plugin_keys names no key']);
  }
  return { requireSigned: config.require_signed_plugins, trustedKeys };
}

/** The records under `<root>/plugins`, by package name; one that cannot be read is reported with its reason. */
export async function listInstalledRecords(root: string): Promise<Array<{ name: string; record?: InstalledPluginRecord; problem?: string }>> {
  const base = pluginsDir(root);
  const names: string[] = [];
  const dirents = await readdir(base, { withFileTypes: true }).catch((err: unknown) => {
    if (hasErrno(err, 'ENOENT')) return [];
    throw err;
  });
  for (const d of dirents) {
    if (!d.isDirectory() || d.name.startsWith('.')) continue;
    if (!d.name.startsWith('@')) {
      names.push(d.name);
      continue;
    }
    for (const s of await readdir(join(base, d.name), { withFileTypes: true })) if (s.isDirectory()) names.push(`${d.name}/${s.name}`);
  }
  const out: Array<{ name: string; record?: InstalledPluginRecord; problem?: string }> = [];
  for (const name of names.sort()) {
    try {
      const record = await readInstalledRecord(root, name);
      if (record) out.push({ name, record });
    } catch (err) {
      out.push({ name, problem: (err as Error).message });
    }
  }
  return out;
}

/** The record of one package, or undefined when none is installed under that name. */
export async function readInstalledRecord(root: string, name: string): Promise<InstalledPluginRecord | undefined> {
  const file = join(packageDir(root, name), RECORD_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
  let r: Record<string, unknown>;
  try {
    r = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new DataLossError(`${file} is not JSON`);
  }
  if (
    r?.schemaVersion !== 1 || r.name !== name || typeof r.version !== 'string' || typeof r.manifestDigest !== 'string' ||
    typeof r.manifest !== 'string' || typeof r.config !== 'string' || !Array.isArray(r.signatures) || typeof r.lease !== 'string'
  ) {
    throw new DataLossError(`${file} is not an install record of ${name}`);
  }
  return r as unknown as InstalledPluginRecord;
}

/** What the checks of an installed package found. */
export interface VerifiedPackage {
  readonly facts: PluginPackageFacts;
  readonly dir: string;
  /** The trusted key whose signature verified, if any did. */
  readonly signer?: string;
}

/**
 * Checks an installed package without running it: the manifest against its digest, the config blob against the
 * manifest, the facts against the record, the signature when the trust policy requires one, and the tree on disk
 * against the tree digest in the (signed) config blob. Throws with the first reason it is refused.
 */
export async function verifyInstalledPackage(root: string, record: InstalledPluginRecord, trust: PluginTrust): Promise<VerifiedPackage> {
  const manifestBytes = Buffer.from(record.manifest, 'base64');
  const configBytes = Buffer.from(record.config, 'base64');
  const what = `installed plugin ${record.name}@${record.version}`;
  if (sha256Digest(manifestBytes) !== record.manifestDigest) throw new DataLossError(`${what}: the recorded manifest does not match digest ${record.manifestDigest}`);
  const manifest = JSON.parse(manifestBytes.toString('utf8')) as { artifactType?: string; config?: { mediaType?: string; digest?: string }; layers?: Array<{ mediaType?: string }> };
  if (manifest.artifactType !== PLUGIN_ARTIFACT_TYPE) throw new InvalidArgumentError(`${what}: artifact type ${String(manifest.artifactType)} is not ${PLUGIN_ARTIFACT_TYPE}`);
  if (manifest.config?.mediaType !== PLUGIN_CONFIG_MEDIA_TYPE || manifest.config.digest !== sha256Digest(configBytes)) {
    throw new DataLossError(`${what}: the recorded config blob is not the manifest's`);
  }
  if (manifest.layers?.length !== 1 || manifest.layers[0]!.mediaType !== PLUGIN_LAYER_MEDIA_TYPE) throw new InvalidArgumentError(`${what}: the manifest must have one ${PLUGIN_LAYER_MEDIA_TYPE} layer`);
  const facts = parsePackageFacts(configBytes.toString('utf8'));
  if (facts.name !== record.name || facts.version !== record.version) throw new DataLossError(`${what}: the config blob is for ${facts.name}@${facts.version}`);
  const entryProblem = treePathProblem(facts.entry);
  if (entryProblem) throw new InvalidArgumentError(`${what}: entry ${JSON.stringify(facts.entry)} ${entryProblem}`);
  let signer: string | undefined;
  const signatures = () => record.signatures.map((s) => parseSignature(Buffer.from(s, 'base64').toString('utf8')));
  if (trust.requireSigned) signer = verifyPluginSignatures(record.manifestDigest, signatures(), trust.trustedKeys).keyId;
  else if (trust.trustedKeys.length > 0 && record.signatures.length > 0) {
    try {
      signer = verifyPluginSignatures(record.manifestDigest, signatures(), trust.trustedKeys).keyId;
    } catch {
      signer = undefined;
    }
  }
  const dir = treeDir(root, record.name, record.version);
  let digest: string;
  try {
    digest = await digestTree(dir);
  } catch (err) {
    throw new DataLossError(`${what}: cannot read its tree ${dir}: ${(err as Error).message}`, { cause: err });
  }
  if (digest !== facts.tree.digest) {
    throw new FailedPreconditionError(`${what}: the tree ${dir} was modified (digest ${digest}, published ${facts.tree.digest})`);
  }
  return { facts, dir, ...(signer ? { signer } : {}) };
}
