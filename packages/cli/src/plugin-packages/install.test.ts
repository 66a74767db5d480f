import { generateSigningKey, hostPlatform, parsePrivateKey, parsePublicKey, signManifestDigest, sha256Digest, type PluginPackageFacts } from '@berth/core';
import { describe, expect, it } from 'vitest';
import { checkInstallable, leaseIdOf, type RemotePlugin } from './install.js';

const digest = sha256Digest('manifest');
function remote(facts: Partial<PluginPackageFacts> = {}, signatures: string[] = []): RemotePlugin {
  return {
    ref: 'localhost:5000/acme/x:1',
    manifestDigest: digest,
    manifestBytes: Buffer.from('manifest'),
    layer: { mediaType: 'x', digest: sha256Digest('layer'), size: 5 },
    configBytes: Buffer.from('{}'),
    signatures,
    facts: {
      schemaVersion: 1, name: '@acme/x', version: '1.0.0', entry: 'dist/index.js', platforms: [], capabilities: [],
      tree: { digest: sha256Digest('tree'), files: 1, size: 1 },
      plugins: [{ type: 'io.acme.x.v1', id: 'x', uri: 'io.acme.x.v1.x', version: '1.0.0', pluginApi: '^2.0.0', provides: [], contributes: [], requires: [], config: null, platforms: [] }],
      ...facts,
    },
  };
}
const daemon = { pluginApi: '2.0.0', root: '/nonexistent' };
const open = { requireSigned: false, trustedKeys: [] };

describe('checkInstallable (before anything is written)', () => {
  it('refuses another plugin API, naming both versions', () => {
    expect(() => checkInstallable(remote(), { ...daemon, pluginApi: '3.0.0' }, open)).toThrow(/requires plugin API \^2\.0\.0, but berthd runs plugin API 3\.0\.0/);
    expect(checkInstallable(remote(), daemon, open)).toEqual({ signatures: [] });
  });

  it('refuses another platform', () => {
    const here = hostPlatform();
    expect(() => checkInstallable(remote({ platforms: [{ os: 'windows', architecture: 'arm64' }] }), daemon, open)).toThrow(/runs on windows\/arm64, not linux\//);
    expect(() => checkInstallable(remote({ platforms: [here] }), daemon, open)).not.toThrow();
  });

  it('requires a valid signature by a trusted key only when the policy says so, and reports the signer', () => {
    const key = generateSigningKey();
    const sig = JSON.stringify(signManifestDigest(digest, parsePrivateKey(key.privateKey, 'k')));
    const trusted = [parsePublicKey(key.publicKey, 'k.pub')];
    expect(() => checkInstallable(remote(), daemon, { requireSigned: true, trustedKeys: trusted })).toThrow(/is not signed, and require_signed_plugins is set/);
    expect(() => checkInstallable(remote({}, ['not json']), daemon, { requireSigned: true, trustedKeys: trusted })).toThrow(/is not signed/);
    expect(checkInstallable(remote({}, [sig]), daemon, { requireSigned: true, trustedKeys: trusted }).signer).toBe(key.keyId);
    expect(checkInstallable(remote({}, [sig]), daemon, { requireSigned: false, trustedKeys: trusted }).signer).toBe(key.keyId);
    expect(checkInstallable(remote({}, [sig]), daemon, open).signer).toBeUndefined();
  });

  it('names leases by package and version, as containerd identifiers allow', () => {
    expect(leaseIdOf('@acme/x', '1.0.0')).toMatch(/^berth-plugin-[0-9a-f]{16}$/);
    expect(leaseIdOf('@acme/x', '1.0.0')).not.toBe(leaseIdOf('@acme/x', '1.0.1'));
  });
});
