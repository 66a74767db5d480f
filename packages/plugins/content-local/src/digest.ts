import { createHash, type Hash } from 'node:crypto';
import { InvalidArgumentError } from '@berth/core';

/** The only algorithm this store accepts (containerd's digest.Canonical). */
export const DIGEST_ALGORITHM = 'sha256';

// The OCI grammar of a digest: `algorithm ":" encoded`. Anything that does not match is malformed; an algorithm that
// matches but is not sha256 is well formed yet unsupported.
const DIGEST_GRAMMAR = /^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * Validates a digest and returns its hex part. Only `sha256:<64 lowercase hex>` passes; everything else throws
 * InvalidArgumentError, so a digest can never be turned into a path outside the store.
 */
export function digestHex(digest: string): string {
  if (typeof digest !== 'string' || digest === '') {
    throw new InvalidArgumentError('invalid digest: empty');
  }
  const m = DIGEST_GRAMMAR.exec(digest);
  if (!m) throw new InvalidArgumentError(`invalid digest ${JSON.stringify(digest)}: malformed`);
  const algorithm = m[1];
  const encoded = m[2] ?? '';
  if (algorithm !== DIGEST_ALGORITHM) {
    throw new InvalidArgumentError(`invalid digest ${JSON.stringify(digest)}: unsupported digest algorithm`);
  }
  if (!SHA256_HEX.test(encoded)) {
    throw new InvalidArgumentError(`invalid digest ${JSON.stringify(digest)}: sha256 needs 64 lowercase hex characters`);
  }
  return encoded;
}

/** True when `name` could be the file name of a committed sha256 blob. */
export function isSha256Hex(name: string): boolean {
  return SHA256_HEX.test(name);
}

export function newHash(): Hash {
  return createHash(DIGEST_ALGORITHM);
}

/** The digest so far, without finishing the running hash. */
export function digestOfHash(hash: Hash): string {
  return `${DIGEST_ALGORITHM}:${hash.copy().digest('hex')}`;
}

/** The hex sha256 of a string: the ingest directory name of a ref. */
export function sha256HexOf(text: string): string {
  return createHash(DIGEST_ALGORITHM).update(text, 'utf8').digest('hex');
}
