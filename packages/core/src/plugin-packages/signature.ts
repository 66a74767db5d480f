import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { InvalidArgumentError, PermissionDeniedError } from '../errdefs/index.js';
import { validateDigest } from '../digest/index.js';

/**
 * A plugin signature (docs/plugins.md, "Signatures"): the JSON layer of a signature artifact whose `subject` is the
 * plugin's manifest. The signed bytes are `berth-plugin-signature-v1:<manifest digest>` (UTF-8): the manifest
 * digest covers the config blob (with the tree digest) and the layer, so the signature covers everything installed.
 */
export interface PluginSignature {
  readonly schemaVersion: 1;
  /** The manifest digest signed. */
  readonly subject: string;
  readonly algorithm: SignatureAlgorithm;
  /** `sha256:<hex>` of the public key's SPKI DER encoding. */
  readonly keyId: string;
  /** Base64; Ed25519's 64 bytes, or ECDSA P-256's r‖s (IEEE P1363, 64 bytes) over SHA-256. */
  readonly signature: string;
}

export type SignatureAlgorithm = 'ed25519' | 'ecdsa-p256-sha256';

const PAYLOAD_PREFIX = 'berth-plugin-signature-v1:';

/** A public key berthd trusts, with the id signatures name it by. */
export interface TrustedKey {
  readonly keyId: string;
  readonly key: KeyObject;
  /** Where it came from (a file), for messages. */
  readonly source: string;
}

function payload(manifestDigest: string): Buffer {
  return Buffer.from(`${PAYLOAD_PREFIX}${manifestDigest}`, 'utf8');
}

function algorithmOf(key: KeyObject): SignatureAlgorithm {
  if (key.asymmetricKeyType === 'ed25519') return 'ed25519';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ecdsa-p256-sha256';
  throw new InvalidArgumentError(`unsupported signing key (${key.asymmetricKeyType ?? 'unknown'}${key.asymmetricKeyDetails?.namedCurve ? ` ${key.asymmetricKeyDetails.namedCurve}` : ''}): use Ed25519 or ECDSA P-256`);
}

/** `sha256:<hex>` of a public key's SPKI DER. */
export function publicKeyId(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return `sha256:${createHash('sha256').update(pub.export({ type: 'spki', format: 'der' })).digest('hex')}`;
}

/** Reads a PEM public key (SPKI) or certificate-less key; `source` names it in errors. */
export function parsePublicKey(pem: string, source: string): TrustedKey {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new InvalidArgumentError(`trusted plugin key ${source}: not a PEM public key: ${(err as Error).message}`);
  }
  algorithmOf(key);
  return { keyId: publicKeyId(key), key, source };
}

export function parsePrivateKey(pem: string, source: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (err) {
    throw new InvalidArgumentError(`signing key ${source}: not a PEM private key: ${(err as Error).message}`);
  }
  algorithmOf(key);
  return key;
}

/** A new key pair as PEM: PKCS#8 private, SPKI public. */
export function generateSigningKey(algorithm: SignatureAlgorithm = 'ed25519'): { privateKey: string; publicKey: string; keyId: string } {
  const pair = algorithm === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return {
    privateKey: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId: publicKeyId(pair.publicKey),
  };
}

export function signManifestDigest(manifestDigest: string, privateKey: KeyObject): PluginSignature {
  validateDigest(manifestDigest, 'manifest digest');
  const algorithm = algorithmOf(privateKey);
  const bytes = algorithm === 'ed25519' ? sign(null, payload(manifestDigest), privateKey) : sign('sha256', payload(manifestDigest), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return { schemaVersion: 1, subject: manifestDigest, algorithm, keyId: publicKeyId(privateKey), signature: bytes.toString('base64') };
}

/** Parses a signature layer; anything malformed is an InvalidArgumentError naming what. */
export function parseSignature(text: string): PluginSignature {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InvalidArgumentError('plugin signature is not JSON');
  }
  const v = value as Record<string, unknown> | null;
  if (
    !v || typeof v !== 'object' || v.schemaVersion !== 1 || typeof v.subject !== 'string' || typeof v.keyId !== 'string' ||
    typeof v.signature !== 'string' || (v.algorithm !== 'ed25519' && v.algorithm !== 'ecdsa-p256-sha256')
  ) {
    throw new InvalidArgumentError('plugin signature: expected { schemaVersion: 1, subject, algorithm: ed25519 | ecdsa-p256-sha256, keyId, signature }');
  }
  return v as unknown as PluginSignature;
}

/**
 * The trusted key that signed `manifestDigest` among `signatures`, or a PermissionDeniedError saying why none did
 * (none at all, none by a trusted key, or a bad signature by a trusted key).
 */
export function verifyPluginSignatures(manifestDigest: string, signatures: readonly PluginSignature[], trusted: readonly TrustedKey[]): TrustedKey {
  if (signatures.length === 0) throw new PermissionDeniedError(`plugin ${manifestDigest} is not signed, and require_signed_plugins is set`);
  const reasons: string[] = [];
  for (const sig of signatures) {
    const key = trusted.find((k) => k.keyId === sig.keyId);
    if (!key) {
      reasons.push(`signed by untrusted key ${sig.keyId}`);
      continue;
    }
    if (sig.subject !== manifestDigest) {
      reasons.push(`signature by ${sig.keyId} is for ${sig.subject}`);
      continue;
    }
    const bytes = Buffer.from(sig.signature, 'base64');
    let ok = false;
    try {
      ok = algorithmOf(key.key) === sig.algorithm && (sig.algorithm === 'ed25519' ? verify(null, payload(manifestDigest), key.key, bytes) : verify('sha256', payload(manifestDigest), { key: key.key, dsaEncoding: 'ieee-p1363' }, bytes));
    } catch {
      ok = false;
    }
    if (ok) return key;
    reasons.push(`bad signature by trusted key ${sig.keyId} (${key.source})`);
  }
  throw new PermissionDeniedError(`plugin ${manifestDigest} has no valid signature by a trusted key: ${reasons.join('; ')}`);
}
