import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sha256Digest } from '../digest/index.js';
import { PluginHost } from '../registry/host.js';
import {
  digestTree,
  generateSigningKey,
  loadInstalledPlugins,
  parsePrivateKey,
  parsePublicKey,
  pluginApiProblems,
  PLUGIN_ARTIFACT_TYPE,
  PLUGIN_CONFIG_MEDIA_TYPE,
  PLUGIN_LAYER_MEDIA_TYPE,
  signManifestDigest,
  treeDigest,
  treePathProblem,
  verifyPluginSignatures,
  type InstalledPluginRecord,
  type PluginPackageFacts,
  type PluginTrust,
} from './index.js';

let work: string;
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'berth-plugin-packages-'));
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

const write = (dir: string, files: Record<string, string>) => {
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
};

describe('tree digest', () => {
  it('changes when a file changes, appears, disappears or becomes executable, and not for order', async () => {
    write(work, { 'a.js': 'a', 'sub/b.txt': 'b' });
    const base = await digestTree(work);
    expect(base).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await digestTree(work)).toBe(base);
    writeFileSync(join(work, 'sub/b.txt'), 'B');
    expect(await digestTree(work)).not.toBe(base);
    writeFileSync(join(work, 'sub/b.txt'), 'b');
    expect(await digestTree(work)).toBe(base);
    chmodSync(join(work, 'a.js'), 0o755);
    expect(await digestTree(work)).not.toBe(base);
    chmodSync(join(work, 'a.js'), 0o644);
    writeFileSync(join(work, 'extra'), '');
    expect(await digestTree(work)).not.toBe(base);
    rmSync(join(work, 'extra'));
    expect(await digestTree(work)).toBe(base);
    const files = [
      { path: 'b', executable: false, size: 1, sha256: 'x' },
      { path: 'a', executable: false, size: 1, sha256: 'y' },
    ];
    expect(treeDigest(files)).toBe(treeDigest([...files].reverse()));
  });

  it('refuses links, unsafe paths and duplicates', async () => {
    write(work, { 'a.js': 'a' });
    symlinkSync('/etc/passwd', join(work, 'link'));
    await expect(digestTree(work)).rejects.toThrow(/link is not a regular file/);
    for (const bad of ['../x', '/abs', 'a//b', 'a/./b', '', 'a\\b']) expect(treePathProblem(bad), bad).toBeDefined();
    expect(treePathProblem('dist/index.js')).toBeUndefined();
    const f = { path: 'a', executable: false, size: 0, sha256: 'x' };
    expect(() => treeDigest([f, f])).toThrow(/twice/);
  });
});

describe('signatures', () => {
  for (const algorithm of ['ed25519', 'ecdsa-p256-sha256'] as const) {
    it(`${algorithm}: a trusted key verifies; another digest, a forged signature or an untrusted key does not`, () => {
      const key = generateSigningKey(algorithm);
      const other = generateSigningKey(algorithm);
      const digest = sha256Digest('manifest');
      const sig = signManifestDigest(digest, parsePrivateKey(key.privateKey, 'k'));
      expect(sig).toMatchObject({ schemaVersion: 1, subject: digest, algorithm, keyId: key.keyId });
      const trusted = [parsePublicKey(key.publicKey, 'key.pub')];
      expect(verifyPluginSignatures(digest, [sig], trusted).keyId).toBe(key.keyId);
      expect(() => verifyPluginSignatures(sha256Digest('other'), [sig], trusted)).toThrow(/is for/);
      const forged = { ...sig, subject: sha256Digest('other') };
      expect(() => verifyPluginSignatures(sha256Digest('other'), [forged], trusted)).toThrow(/bad signature by trusted key/);
      expect(() => verifyPluginSignatures(digest, [sig], [parsePublicKey(other.publicKey, 'other.pub')])).toThrow(/untrusted key/);
      expect(() => verifyPluginSignatures(digest, [], trusted)).toThrow(/is not signed/);
    });
  }

  it('refuses keys of other kinds with a clear message', () => {
    expect(() => parsePublicKey('not pem', 'x.pem')).toThrow(/x\.pem: not a PEM public key/);
  });
});

describe('pluginApi check against the running core', () => {
  it('names both versions', () => {
    const facts = { name: 'p', version: '1.0.0', plugins: [{ uri: 'io.acme.x.v1.x', version: '1.0.0', pluginApi: '^9.0.0' }] } as unknown as PluginPackageFacts;
    expect(pluginApiProblems(facts, '2.0.0')).toEqual([expect.stringMatching(/requires plugin API \^9\.0\.0, but berthd runs plugin API 2\.0\.0/)]);
    expect(pluginApiProblems(facts, '9.1.0')).toEqual([]);
  });
});

/** Installs a package the way `berth plugin install` leaves it: the tree and its record. */
async function install(root: string, options: { sign?: string; tamper?: boolean } = {}): Promise<InstalledPluginRecord> {
  const dir = join(root, 'plugins', '@acme', 'berth-plugin-hi', '1.0.0');
  write(dir, {
    'package.json': JSON.stringify({ name: '@acme/berth-plugin-hi', version: '1.0.0', type: 'module' }),
    // A structural manifest: the envelope is checked by brand, never by instanceof.
    'dist/index.js': `export default { $$type: '@berth/PluginManifest', manifestVersion: 1, type: 'io.acme.hi.v1', id: 'hi', version: '1.0.0',
  pluginApi: '^2.0.0', config: { schema: { type: 'object', additionalProperties: false, properties: { word: { type: 'string' } } }, defaults: { word: 'hi' } },
  init: (deps, config) => ({ word: config.word }) };\n`,
  });
  const facts: PluginPackageFacts = {
    schemaVersion: 1, name: '@acme/berth-plugin-hi', version: '1.0.0', entry: 'dist/index.js',
    plugins: [{ type: 'io.acme.hi.v1', id: 'hi', uri: 'io.acme.hi.v1.hi', version: '1.0.0', pluginApi: '^2.0.0', provides: [], contributes: [], requires: [],
      config: { schema: { type: 'object', additionalProperties: false, properties: { word: { type: 'string' } } }, defaults: { word: 'hi' } }, platforms: [] }],
    platforms: [], capabilities: [], tree: { digest: await digestTree(dir), files: 2, size: 0 },
  };
  const config = Buffer.from(JSON.stringify(facts));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: PLUGIN_ARTIFACT_TYPE,
    config: { mediaType: PLUGIN_CONFIG_MEDIA_TYPE, digest: sha256Digest(config), size: config.length },
    layers: [{ mediaType: PLUGIN_LAYER_MEDIA_TYPE, digest: sha256Digest('layer'), size: 5 }],
  }));
  const manifestDigest = sha256Digest(manifest);
  const signatures = options.sign ? [Buffer.from(JSON.stringify(signManifestDigest(manifestDigest, parsePrivateKey(options.sign, 'k')))).toString('base64')] : [];
  const record: InstalledPluginRecord = {
    schemaVersion: 1, name: '@acme/berth-plugin-hi', version: '1.0.0', reference: 'localhost/hi:1', manifestDigest,
    manifest: manifest.toString('base64'), config: config.toString('base64'), signatures, lease: 'berth-plugin:@acme/berth-plugin-hi', installedAt: new Date(0).toISOString(),
  };
  writeFileSync(join(root, 'plugins', '@acme', 'berth-plugin-hi', 'installed.json'), JSON.stringify(record));
  if (options.tamper) writeFileSync(join(dir, 'dist/index.js'), 'export default { evil: true };\n', { flag: 'a' });
  return record;
}

const noTrust: PluginTrust = { requireSigned: false, trustedKeys: [] };

function boot(loaded: Awaited<ReturnType<typeof loadInstalledPlugins>>, pluginConfig: Record<string, unknown> = {}) {
  return PluginHost.create({ plugins: loaded.manifests, sources: loaded.sources, pluginConfig, server: { root: work, state: work, grpcAddress: '', ttrpcAddress: '', version: 't', revision: 't' } });
}

describe('loadInstalledPlugins', () => {
  it('loads a verified package through the host, with its config validated', async () => {
    await install(work);
    const loaded = await loadInstalledPlugins(work, noTrust);
    expect(loaded.manifests.map((m) => `${m.type}.${m.id}`)).toEqual(['io.acme.hi.v1.hi']);
    const host = boot(loaded, { 'io.acme.hi.v1.hi': { word: 'ahoy' } });
    await host.initAll();
    expect(host.list()[0]).toMatchObject({ status: 'ok', source: expect.stringContaining('localhost/hi:1@sha256:') });
    expect(() => boot(loaded, { 'io.acme.hi.v1.hi': { wrod: 'typo' } })).toThrow(/wrod/);
  });

  it('refuses a tampered tree: shown as error with the reason, config still validated, nothing of it run', async () => {
    await install(work, { tamper: true });
    const loaded = await loadInstalledPlugins(work, noTrust);
    expect(() => boot(loaded, { 'io.acme.hi.v1.hi': { wrod: 'typo' } })).toThrow(/wrod/);
    const host = boot(loaded);
    await host.initAll();
    const [record] = host.list();
    expect(record).toMatchObject({ uri: 'io.acme.hi.v1.hi', status: 'error' });
    expect(record!.error!.message).toMatch(/was modified \(digest sha256:[0-9a-f]+, published sha256:/);
  });

  it('requires a valid signature by a trusted key when signatures are required', async () => {
    const key = generateSigningKey();
    const other = generateSigningKey();
    const trust: PluginTrust = { requireSigned: true, trustedKeys: [parsePublicKey(key.publicKey, 'key.pub')] };
    await install(work);
    const statusOf = async (t: PluginTrust) => {
      const host = boot(await loadInstalledPlugins(work, t));
      await host.initAll();
      return host.list()[0]!;
    };
    expect((await statusOf(trust)).error?.message).toMatch(/is not signed, and require_signed_plugins is set/);
    await install(work, { sign: other.privateKey });
    expect((await statusOf(trust)).error?.message).toMatch(/untrusted key/);
    await install(work, { sign: key.privateKey });
    expect((await statusOf(trust)).status).toBe('ok');
    // A record whose manifest was swapped no longer matches its digest.
    const record = await install(work, { sign: key.privateKey });
    writeFileSync(join(work, 'plugins/@acme/berth-plugin-hi/installed.json'), JSON.stringify({ ...record, manifestDigest: sha256Digest('x') }));
    expect((await statusOf(trust)).error?.message).toMatch(/does not match digest/);
  });

  it('a refused package whose published schema ajv rejects gets a stand-in without config, not a crash', async () => {
    const record = await install(work, { tamper: true });
    const facts = JSON.parse(Buffer.from(record.config, 'base64').toString()) as PluginPackageFacts;
    const bad = { ...facts, plugins: [{ ...facts.plugins[0]!, config: { schema: { type: 'no-such-type' }, defaults: {} } }] };
    writeFileSync(join(work, 'plugins/@acme/berth-plugin-hi/installed.json'), JSON.stringify({ ...record, config: Buffer.from(JSON.stringify(bad)).toString('base64') }));
    const host = boot(await loadInstalledPlugins(work, noTrust));
    await host.initAll();
    expect(host.list()[0]).toMatchObject({ uri: 'io.acme.hi.v1.hi', status: 'error' });
  });

  it('leaves out an unreadable record and a URI already taken, serving the rest', async () => {
    await install(work);
    mkdirSync(join(work, 'plugins/broken'), { recursive: true });
    writeFileSync(join(work, 'plugins/broken/installed.json'), '{ nope');
    const loaded = await loadInstalledPlugins(work, noTrust, { taken: new Set(['io.acme.hi.v1.hi']) });
    expect(loaded.manifests).toEqual([]);
    expect((await loadInstalledPlugins(work, noTrust)).manifests).toHaveLength(1);
  });
});
